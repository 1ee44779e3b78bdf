import t from 'tap'
import { resolve } from 'node:path'
import { StorageLayout } from '../../../src/dataserver/storage-layout.js'

t.test('paths are built from numbers and stay under the root', async t => {
  const L = new StorageLayout('/srv/ds')
  t.equal(L.dataPath(258, 7), '/srv/ds/current/02/blk_258_7')
  t.equal(L.metaPath(258, 7), '/srv/ds/current/02/blk_258_7.meta')
  t.equal(L.dataPath(255, 0), '/srv/ds/current/ff/blk_255_0')
  t.equal(L.corruptDataPath(1, 2), '/srv/ds/corrupt/blk_1_2')
  t.match(L.tmpPaths(1, 2, 'ab12').data, /^\/srv\/ds\/tmp\/blk_1_2\.ab12$/)
  for (const p of [L.dataPath(Number.MAX_SAFE_INTEGER, 1), L.tmpPaths(3, 4, 'ff').meta]) {
    t.ok(resolve(p).startsWith('/srv/ds/'), p)
  }
})

t.test('anything but a safe non-negative integer is refused', async t => {
  const L = new StorageLayout('/srv/ds')
  for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 53]) {
    t.throws(() => L.dataPath(bad, 1), { code: 'EINVAL' }, `id ${bad}`)
    t.throws(() => L.dataPath(1, bad), { code: 'EINVAL' }, `gen ${bad}`)
  }
  t.throws(() => L.dataPath('../x' as unknown as number, 1), { code: 'EINVAL' })
  t.throws(() => L.tmpPaths(1, 1, '../../x'))
})

t.test('file names parse back strictly', async t => {
  t.same(StorageLayout.parseName('blk_12_3'), { id: 12, gen: 3, meta: false })
  t.same(StorageLayout.parseName('blk_12_3.meta'), { id: 12, gen: 3, meta: true })
  for (const bad of ['blk_12', 'blk_-1_2', 'blk_1_2.tmp', 'xblk_1_2', 'blk_1_2.meta.x', 'blk_1e3_2', 'blk_1234567890123456_1']) {
    t.equal(StorageLayout.parseName(bad), undefined, bad)
  }
})
