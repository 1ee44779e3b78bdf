// The one "write every byte" loop (DataServer write-behind, mount spool): a short writev
// continues with exactly the bytes left, at the right offset, and one that makes no
// progress fails instead of spinning.
import t from 'tap'
import { open, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { FileHandle } from 'node:fs/promises'
import { afterBytes, writevAll } from '../../../src/common/writev-all.js'

const b = (s: string): Buffer => Buffer.from(s)

t.test('afterBytes drops whole buffers, slices the first one left, keeps the rest as they are', async t => {
  const list = [b('abc'), b('de'), b('fghi')]
  t.same(afterBytes(list, 0).map(String), ['abc', 'de', 'fghi'])
  t.same(afterBytes(list, 2).map(String), ['c', 'de', 'fghi'])
  t.same(afterBytes(list, 3).map(String), ['de', 'fghi'])
  t.same(afterBytes(list, 6).map(String), ['ghi'])
  t.same(afterBytes(list, 9), [])
  t.equal(afterBytes(list, 3)[1], list[2], 'untouched buffers are not copied')
})

/** A FileHandle whose writev takes at most `max` bytes per call (0: none at all). */
function shortWrites (fh: FileHandle, max: number): FileHandle & { calls: number } {
  const h = Object.create(fh) as FileHandle & { calls: number }
  h.calls = 0
  const writev = async (bufs: readonly NodeJS.ArrayBufferView[], position?: number): Promise<{ bytesWritten: number, buffers: readonly NodeJS.ArrayBufferView[] }> => {
    h.calls++
    const all = Buffer.concat(bufs.map(x => Buffer.from(x.buffer, x.byteOffset, x.byteLength)))
    const part = all.subarray(0, Math.min(max, all.length))
    if (part.length === 0) return { bytesWritten: 0, buffers: bufs }
    const r = await fh.write(part, 0, part.length, position ?? null)
    return { bytesWritten: r.bytesWritten, buffers: bufs }
  }
  h.writev = writev as FileHandle['writev']
  return h
}

t.test('short writes continue at the right place, positioned or at the file position', async t => {
  const dir = t.testdir()
  const fh = await open(join(dir, 'f'), 'w+')
  try {
    const h = shortWrites(fh, 5)
    await writevAll(h, [b('hello '), b('world'), b('!')], 12, 3)
    t.ok(h.calls >= 3, `several writev calls (${h.calls})`)
    const got = await readFile(join(dir, 'f'))
    t.same(got.subarray(3).toString(), 'hello world!', 'positioned: every byte once, in order')
    t.same(got.subarray(0, 3), Buffer.alloc(3), 'nothing before the position')
    const g = await open(join(dir, 'g'), 'w')
    try {
      await writevAll(shortWrites(g, 4), [b('abcdef'), b('gh')], 8)
      await writevAll(shortWrites(g, 4), [b('ij')], 2)
    } finally { await g.close() }
    t.equal(await readFile(join(dir, 'g'), 'utf8'), 'abcdefghij', 'at the file position: appended in order')
  } finally { await fh.close() }
})

t.test('a writev that makes no progress fails with EIO', async t => {
  const dir = t.testdir()
  const fh = await open(join(dir, 'f'), 'w')
  try {
    await t.rejects(writevAll(shortWrites(fh, 0), [b('x')], 1, 0), { code: 'EIO' })
    t.equal((await stat(join(dir, 'f'))).size, 0)
  } finally { await fh.close() }
})
