// The client library against a real in-process cluster: namespace calls, put/read round
// trips of several sizes, ranged reads across block boundaries, atomic overwrite,
// appending a block to an existing file, and clear errors.
import t from 'tap'
import { Readable } from 'node:stream'
import { buffer as readAll } from 'node:stream/consumers'
import { startCluster } from '../helpers/inprocess-cluster.js'
import { Rng } from '../helpers/rng.js'
import { sha256 } from '../helpers/cluster-files.js'

const MiB = 1024 * 1024

/** Deterministic pseudo-random bytes (so block boundaries fall inside varied data). */
const bytes = (len: number, seed: number): Buffer => new Rng(seed).bytes(len)

/** A stream of `buf` in uneven chunks, so chunks straddle block boundaries. */
function chunked (buf: Buffer, size = 100_003): Readable {
  return Readable.from((function * () {
    for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size)
  })())
}

const sha = sha256

t.test('client against a real cluster', async t => {
  const c = await startCluster(t, { dataServers: 3, replication: 2, blockSize: MiB })
  const client = c.client

  t.test('ping and namespace calls', async t => {
    const p = await client.ping()
    t.equal(p.ok, true)
    t.equal(p.liveDataServers, 3)
    const d = await client.mkdir('/ns/a/b', { parents: true })
    t.equal(d.type, 'dir')
    await client.create('/ns/a/file')
    t.same((await client.list('/ns/a')).map(e => e.name), ['b', 'file'])
    const moved = await client.rename('/ns/a/file', '/ns/moved')
    t.equal(moved.type, 'file')
    t.equal(await client.exists('/ns/a/file'), false)
    t.equal(await client.exists('/ns/moved'), true)
    await client.symlink('/ns/moved', '/ns/link')
    t.equal(await client.readlink('/ns/link'), '/ns/moved')
    t.equal((await client.stat('/ns/link', { nofollow: true })).type, 'symlink')
    t.equal((await client.stat('/ns/link')).type, 'file')
    await client.delete('/ns', { recursive: true })
    t.equal(await client.exists('/ns'), false)
  })

  t.test('errors keep their code', async t => {
    await t.rejects(client.stat('/no/such/file'), { code: 'ENOENT' })
    await t.rejects(readAll(client.createReadStream('/no/such/file')), { code: 'ENOENT' })
    await t.rejects(client.delete('/no/such/file'), { code: 'ENOENT' })
    await t.rejects(client.list('relative/path'), { code: 'EINVAL' })
  })

  t.test('round trips: empty, one byte, multi-block', async t => {
    await t.rejects(client.put('/rt/empty', chunked(Buffer.alloc(0))), { code: 'ENOENT' }, 'the parent must exist')
    await client.mkdir('/rt')
    for (const [name, len] of [['empty', 0], ['one', 1], ['five-mib', 5 * MiB], ['uneven', 3 * MiB + 12345]] as const) {
      const data = bytes(len, len + 1)
      let last = -1
      const st = await client.put(`/rt/${name}`, chunked(data), { onProgress: n => { last = n } })
      t.equal(st.size, len, `${name}: size`)
      if (len > 0) t.equal(last, len, `${name}: progress reached the end`)
      t.equal((await client.stat(`/rt/${name}`)).size, len)
      const back = await readAll(client.createReadStream(`/rt/${name}`))
      t.equal(back.length, len)
      t.equal(sha(back), sha(data), `${name}: sha256 equal`)
    }
    const plan = await client.getBlocks({ path: '/rt/five-mib' })
    t.equal(plan.blocks.length, 5, 'five blocks of 1 MiB')
    for (const b of plan.blocks) t.ok(b.locations.length >= 1, `block ${b.id} has a location`)
  })

  t.test('ranged reads across block boundaries', async t => {
    const data = bytes(5 * MiB, 99)
    await client.put('/range', chunked(data))
    const cases: Array<[number, number | undefined]> = [
      [0, 10], [MiB - 5, 10], [MiB, MiB], [MiB - 1, 2 * MiB + 2], [3.5 * MiB, 2 * MiB], [5 * MiB - 1, 1], [5 * MiB, 10], [100, undefined], [4 * MiB + 7, 0],
    ]
    for (const [start, length] of cases) {
      const got = await readAll(client.createReadStream('/range', { start, ...(length === undefined ? {} : { length }) }))
      const want = data.subarray(start, length === undefined ? undefined : start + length)
      t.ok(got.equals(want), `range ${start}+${length ?? 'rest'}: ${got.length} bytes match`)
    }
    // readBlock directly: the tail of block 2 and the head of block 3.
    const plan = await client.getBlocks({ path: '/range' })
    const b2 = plan.blocks[2]!
    const tail = await readAll(client.readBlock(b2, b2.length - 1000, 1000, { ino: plan.stat.ino }))
    t.ok(tail.equals(data.subarray(b2.offset + b2.length - 1000, b2.offset + b2.length)))
  })

  t.test('overwrite replaces atomically', async t => {
    const a = bytes(2 * MiB + 10, 1)
    const b = bytes(3 * MiB + 20, 2)
    await client.put('/ow', chunked(a))
    await t.rejects(client.put('/ow', chunked(b)), { code: 'EEXIST' }, 'no overwrite unless asked')
    // Feed the new content slowly: midway the old content is still fully readable.
    const feed = new Readable({ read () {} })
    const putting = client.put('/ow', feed, { overwrite: true })
    feed.push(b.subarray(0, 2 * MiB))
    const mid = await readAll(client.createReadStream('/ow'))
    t.equal(sha(mid), sha(a), 'old content while the overwrite is in progress')
    feed.push(b.subarray(2 * MiB))
    feed.push(null)
    const st = await putting
    t.equal(st.size, b.length)
    t.equal(sha(await readAll(client.createReadStream('/ow'))), sha(b), 'new content after commit')
  })

  t.test('openWrite on an existing file: append a block, reusing the others', async t => {
    const a = bytes(2 * MiB, 5)
    await client.put('/app', chunked(a))
    const before = await client.getBlocks({ path: '/app' })
    const s = await client.openWrite({ path: '/app' })
    t.equal(s.baseSize, 2 * MiB)
    t.equal(s.baseBlocks.length, 2)
    t.equal(s.ino, before.stat.ino)
    const extra = bytes(1000, 6)
    const ref = await s.storeBlock(extra)
    t.equal(ref.length, 1000)
    const st = await s.commit([...s.baseBlocks, ref])
    t.equal(st.size, 2 * MiB + 1000)
    t.equal(st.ino, before.stat.ino, 'same inode')
    const after = await client.getBlocks({ path: '/app' })
    t.same(after.blocks.slice(0, 2).map(x => [x.id, x.gen]), before.blocks.map(x => [x.id, x.gen]), 'first blocks reused')
    t.equal(sha(await readAll(client.createReadStream('/app'))), sha(Buffer.concat([a, extra])))
    t.equal(client.openWrites, 0, 'lease released')
  })

  t.test('an aborted write leaves nothing behind', async t => {
    const s = await client.openWrite({ path: '/aborted' }, { create: true })
    await s.storeBlock(bytes(5000, 3))
    await s.abort()
    t.equal(await client.exists('/aborted'), false)
    const failing = new Readable({ read () {} })
    const p = client.put('/failed-put', failing)
    failing.push(bytes(MiB + 5, 4))
    setTimeout(() => failing.destroy(new Error('source broke')), 100)
    await t.rejects(p)
    t.equal(await client.exists('/failed-put'), false)
    t.equal(client.openWrites, 0)
  })
})
