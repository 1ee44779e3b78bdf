import t from 'tap'
import { readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { ManualClock } from '../../../src/common/clock.js'
import { silentLogger } from '../../../src/common/log.js'
import { BlockStore, FREE_SPACE_MARGIN_BYTES, SMALL_WRITE_BYTES, type FsSpace } from '../../../src/dataserver/block-store.js'
import { bytes } from './helpers.js'
import { flipByte } from '../../helpers/cluster-files.js'

async function * pieces (data: Buffer, size = 700): AsyncGenerator<Buffer> {
  for (let off = 0; off < data.length; off += size) yield data.subarray(off, off + size)
}

async function * failingAfter (data: Buffer, n: number): AsyncGenerator<Buffer> {
  yield data.subarray(0, n)
  throw Object.assign(new Error('aborted'), { code: 'ECONNRESET' })
}

async function readAll (s: BlockStore, id: number, gen: number, offset?: number, length?: number): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const p of s.openRead(id, gen, offset, length).chunks) parts.push(Buffer.from(p))
  return Buffer.concat(parts)
}

async function newStore (root: string, events = {}): Promise<BlockStore> {
  const s = new BlockStore(root, { chunkBytes: 512, log: silentLogger, events })
  await s.open()
  return s
}


t.test('write then read whole and partial ranges', async t => {
  const s = await newStore(t.testdir())
  const data = bytes(5000, 2)
  const r = await s.write(42, 3, pieces(data), { expectedLength: 5000 })
  t.same(r, { length: 5000 })
  t.ok((await readAll(s, 42, 3)).equals(data))
  for (const [off, len] of [[0, 1], [511, 2], [512, 512], [1000, 3000], [4999, 1], [5000, 0], [0, 5000], [4600, 400]] as const) {
    t.ok((await readAll(s, 42, 3, off, len)).equals(data.subarray(off, off + len)), `range ${off}+${len}`)
  }
  t.throws(() => s.openRead(42, 3, 5001), { code: 'ERANGE' })
  t.throws(() => s.openRead(42, 3, 4000, 1001), { code: 'ERANGE' })
  t.throws(() => s.openRead(43, 3), { code: 'ENOENT' })
  t.throws(() => s.openRead(42, 4), { code: 'STALE_REPLICA' }, 'our replica is older than asked')
  t.throws(() => s.openRead(42, 2), { code: 'ENOENT' }, 'an older generation is not served')
  const st = await stat(s.layout.dataPath(42, 3))
  t.equal(st.size, 5000, 'the data file holds exactly the block bytes')
  t.same(s.report(), [[42, 3, 5000]])
  const usage = await s.storage()
  t.equal(usage.used, 5000)
  t.ok(usage.capacity > 0 && usage.remaining > 0)
})

t.test('empty block', async t => {
  const s = await newStore(t.testdir())
  t.same(await s.write(1, 1, pieces(Buffer.alloc(0))), { length: 0 })
  t.equal((await readAll(s, 1, 1)).length, 0)
})

t.test('same id and gen twice is EEXIST; an older gen is STALE; a newer one replaces', async t => {
  const s = await newStore(t.testdir())
  await s.write(5, 2, pieces(bytes(100, 1)))
  await t.rejects(s.write(5, 2, pieces(bytes(100, 9))), { code: 'EEXIST' })
  await t.rejects(s.write(5, 1, pieces(bytes(100, 9))), { code: 'STALE_REPLICA' })
  t.ok((await readAll(s, 5, 2)).equals(bytes(100, 1)), 'original unchanged')
  const r = await s.write(5, 3, pieces(bytes(300, 4)))
  t.same(r, { length: 300, replacedGen: 2 })
  t.same(s.report(), [[5, 3, 300]])
  await t.rejects(stat(s.layout.dataPath(5, 2)), { code: 'ENOENT' }, 'old generation removed from disk')
})

t.test('failed writes leave nothing behind', async t => {
  const s = await newStore(t.testdir())
  await t.rejects(s.write(7, 1, failingAfter(bytes(3000), 1000)), { code: 'EIO' })
  await t.rejects(s.write(7, 1, pieces(bytes(3000)), { expectedLength: 2000 }), { code: 'BAD_REQUEST' })
  await t.rejects(s.write(7, 1, pieces(bytes(3000)), { expectedLength: 4000 }), { code: 'BAD_REQUEST' })
  t.same(await readdir(s.layout.tmpDir), [], 'no temp files')
  t.same(await readdir(s.layout.subdir(7)), [], 'nothing in current/')
  t.same(s.report(), [])
  t.throws(() => s.openRead(7, 1), { code: 'ENOENT' })
  // And the id is free again.
  t.same(await s.write(7, 1, pieces(bytes(10))), { length: 10 })
})

t.test('concurrent writes of one block id: the second is refused while the first runs', async t => {
  const s = await newStore(t.testdir())
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  async function * slow (): AsyncGenerator<Buffer> { yield bytes(10); await gate; yield bytes(10, 2) }
  const first = s.write(9, 1, slow())
  await new Promise(resolve => setImmediate(resolve))
  await t.rejects(s.write(9, 1, pieces(bytes(5))), { code: 'EBUSY' })
  release()
  t.same(await first, { length: 20 })
})

t.test('restart rebuilds the index and cleans up crash leftovers', async t => {
  const root = t.testdir()
  let s = await newStore(root)
  await s.write(1, 1, pieces(bytes(1000, 1)))
  await s.write(258, 4, pieces(bytes(2000, 2)))
  await s.write(3, 1, pieces(bytes(10, 3)))
  // Crash leftovers: a temp file, a lone meta (crash between the renames), an old gen.
  await writeFile(s.layout.tmpPaths(9, 9, 'abc').data, 'partial')
  await writeFile(s.layout.metaPath(77, 1), 'x')
  await writeFile(s.layout.dataPath(3, 0), 'old')
  await writeFile(s.layout.metaPath(3, 0), 'old')
  s = await newStore(root)
  t.same(s.report().sort((a, b) => a[0] - b[0]), [[1, 1, 1000], [3, 1, 10], [258, 4, 2000]])
  t.ok((await readAll(s, 258, 4)).equals(bytes(2000, 2)))
  t.same(await readdir(s.layout.tmpDir), [])
  await t.rejects(stat(s.layout.metaPath(77, 1)), { code: 'ENOENT' })
  await t.rejects(stat(s.layout.dataPath(3, 0)), { code: 'ENOENT' })
})

t.test('a replica whose files disagree is quarantined at start', async t => {
  const root = t.testdir()
  let s = await newStore(root)
  await s.write(11, 1, pieces(bytes(1000)))
  await writeFile(s.layout.dataPath(11, 1), bytes(999)) // truncated behind our back
  s = await newStore(root)
  t.same(s.report(), [])
  t.throws(() => s.openRead(11, 1), { code: 'CHECKSUM_MISMATCH' })
  t.ok((await stat(s.layout.corruptDataPath(11, 1))).isFile())
  t.ok(await s.delete(11, 1), 'the NameServer can delete it')
  await t.rejects(stat(s.layout.corruptDataPath(11, 1)), { code: 'ENOENT' })
})

t.test('replica files a crash left empty or short are quarantined at start, never indexed', async t => {
  // Whatever the order of writes, renames and fsyncs, a power loss can leave a file of a
  // replica empty or short on some file systems (XFS after a crash, a disk that lied about
  // its cache): none of it may be indexed as a good replica, and the store must still open.
  const root = t.testdir()
  let s = await newStore(root)
  for (const id of [31, 32, 33, 34]) await s.write(id, 1, pieces(bytes(5000, id)))
  await s.write(35, 1, pieces(bytes(5000, 35)), { expectedLength: 5000 })
  await writeFile(s.layout.dataPath(31, 1), Buffer.alloc(0)) // data never reached the disk
  await writeFile(s.layout.metaPath(32, 1), Buffer.alloc(0)) // checksums never did
  const meta33 = await readFile(s.layout.metaPath(33, 1))
  await writeFile(s.layout.metaPath(33, 1), meta33.subarray(0, meta33.length - 3)) // part of them
  await writeFile(s.layout.dataPath(34, 1), bytes(4096, 34)) // part of the data
  await s.close()
  s = await newStore(root)
  t.same(s.report(), [[35, 1, 5000]], 'only the intact replica is indexed')
  for (const id of [31, 32, 33, 34]) {
    t.throws(() => s.openRead(id, 1), { code: 'CHECKSUM_MISMATCH' }, `block ${id}: refused as corrupt, never served`)
    t.ok((await stat(s.layout.corruptDataPath(id, 1))).isFile(), `block ${id}: quarantined`)
  }
  t.ok((await readAll(s, 35, 1)).equals(bytes(5000, 35)))
  await s.close()
})

t.test('a flipped byte: verified prefix, then refusal, quarantine and a report', async t => {
  const root = t.testdir()
  const corrupt: Array<[number, number]> = []
  const s = await newStore(root, { onCorrupt: (id: number, gen: number) => corrupt.push([id, gen]) })
  const data = bytes(4000, 5)
  await s.write(20, 1, pieces(data))
  await flipByte(s.layout.dataPath(20, 1), 2100) // chunk 4 = bytes 2048..2559
  const got: Buffer[] = []
  await t.rejects((async () => { for await (const p of s.openRead(20, 1).chunks) got.push(Buffer.from(p)) })(), { code: 'CHECKSUM_MISMATCH' })
  const prefix = Buffer.concat(got)
  t.equal(prefix.length, 2048, 'only the chunks before the bad one')
  t.ok(prefix.equals(data.subarray(0, 2048)))
  t.same(corrupt, [[20, 1]])
  t.throws(() => s.openRead(20, 1), { code: 'CHECKSUM_MISMATCH' }, 'never served again')
  t.same(s.report(), [], 'not in block reports')
  const again = await newStore(root)
  t.throws(() => again.openRead(20, 1), { code: 'CHECKSUM_MISMATCH' }, 'still refused after a restart')
})

t.test('a range that avoids the bad chunk still reads; verify() finds it', async t => {
  const s = await newStore(t.testdir())
  const data = bytes(4000, 6)
  await s.write(21, 1, pieces(data))
  await s.write(22, 1, pieces(data))
  await flipByte(s.layout.metaPath(21, 1), 24 + 4 * 7 + 1) // CRC of the last chunk
  t.ok((await readAll(s, 21, 1, 0, 1000)).equals(data.subarray(0, 1000)))
  t.equal(await s.verify(22, 1), 'ok')
  t.equal(await s.verify(21, 1), 'corrupt')
  t.equal(await s.verify(21, 1), 'gone')
  t.same(s.report(), [[22, 1, 4000]])
})

t.test('delete removes a replica and says whether it existed', async t => {
  const s = await newStore(t.testdir())
  await s.write(30, 2, pieces(bytes(100)))
  t.notOk(await s.delete(30, 1), 'another generation is left alone')
  t.ok(await s.delete(30, 2))
  t.notOk(await s.delete(30, 2))
  t.same(s.report(), [])
  t.same(await readdir(s.layout.subdir(30)), [])
})

t.test('files vanishing from under the index are reported lost', async t => {
  const lost: Array<[number, number]> = []
  const s = await newStore(t.testdir(), { onLost: (id: number, gen: number) => lost.push([id, gen]) })
  await s.write(31, 1, pieces(bytes(100)))
  const { unlink } = await import('node:fs/promises')
  await unlink(s.layout.dataPath(31, 1))
  await t.rejects(readAll(s, 31, 1), { code: 'ENOENT' })
  t.same(lost, [[31, 1]])
  t.same(s.report(), [])
})

/** A disk stand-in for statfs: `free` bytes available of 1 TiB, counting calls. */
function fakeDisk (free: number): { statfs: () => Promise<FsSpace>, calls: number, free: number } {
  const d = {
    calls: 0,
    free,
    statfs: async (): Promise<FsSpace> => { d.calls++; return { blocks: 2 ** 28, bsize: 4096, bavail: Math.floor(d.free / 4096) } },
  }
  return d
}

t.test('writes use the cached free space: no statfs per write; the clock refreshes it', async t => {
  const disk = fakeDisk(2 ** 40)
  const clock = new ManualClock()
  const s = new BlockStore(t.testdir(), { chunkBytes: 512, log: silentLogger, clock, freeSpaceRefreshMs: 1000, statfs: disk.statfs })
  t.teardown(() => s.close())
  await s.open()
  const atOpen = disk.calls
  t.equal(atOpen, 1, 'open takes the first statfs')
  for (let i = 0; i < 20; i++) await s.write(100 + i, 1, pieces(bytes(4096, i)), { expectedLength: 4096 })
  t.equal(disk.calls, atOpen, '20 writes, no statfs')
  clock.advance(1000)
  await new Promise(resolve => setImmediate(resolve))
  t.equal(disk.calls, atOpen + 1, 'the timer refreshed it')
  // The disk filled up meanwhile: once refreshed, an announced block that cannot fit is refused up front.
  disk.free = 1024 * 1024
  clock.advance(1000)
  await new Promise(resolve => setImmediate(resolve))
  await t.rejects(s.write(200, 1, pieces(bytes(2 * 1024 * 1024, 1)), { expectedLength: 2 * 1024 * 1024 }), { code: 'ENOSPC' })
  t.same(await readdir(s.layout.tmpDir), [], 'no temp file')
  // Close to full every write asks the disk.
  const before = disk.calls
  await s.write(201, 1, pieces(bytes(4096, 1)), { expectedLength: 4096 })
  await s.write(202, 1, pieces(bytes(4096, 2)), { expectedLength: 4096 })
  t.equal(disk.calls, before + 2, 'near full: one statfs per write')
  t.same(await s.storage(), { capacity: 2 ** 40, used: 22 * 4096, remaining: 1024 * 1024 })
  await s.close()
  const closedAt = disk.calls
  clock.advance(5000)
  await new Promise(resolve => setImmediate(resolve))
  t.equal(disk.calls, closedAt, 'close stops the refresh')
})

t.test('bytes stored since the last statfs count against the cached free space', async t => {
  // Room for two 8 KiB blocks above the margin (checksums included), not for three.
  const disk = fakeDisk(FREE_SPACE_MARGIN_BYTES + 20 * 1024)
  const s = new BlockStore(t.testdir(), { chunkBytes: 512, log: silentLogger, statfs: disk.statfs })
  t.teardown(() => s.close())
  await s.open()
  const atOpen = disk.calls
  await s.write(1, 1, pieces(bytes(8192, 1)), { expectedLength: 8192 })
  t.equal(disk.calls, atOpen, 'the first fits the cache')
  await s.write(2, 1, pieces(bytes(8192, 2)), { expectedLength: 8192 })
  t.equal(disk.calls, atOpen, 'the second too')
  await s.write(3, 1, pieces(bytes(8192, 3)), { expectedLength: 8192 })
  t.equal(disk.calls, atOpen + 1, 'the third would eat into the margin: statfs first')
  disk.free = 4096
  await t.rejects(s.write(4, 1, pieces(bytes(16384, 4)), { expectedLength: 16384 }), { code: 'ENOSPC' }, 'near the margin the disk decides')
  t.equal(disk.calls, atOpen + 2)
})

// Either side of SMALL_WRITE_BYTES (gathered in memory before any file is made, or not),
// length known or not.
t.test('blocks either side of SMALL_WRITE_BYTES, length known or not: same replica files; failures leave nothing behind', async t => {
  const root = t.testdir()
  const s = await newStore(root)
  const small = bytes(SMALL_WRITE_BYTES, 5)
  const large = bytes(SMALL_WRITE_BYTES + 1, 6)
  t.same(await s.write(10, 1, pieces(small, 65536), { expectedLength: small.length }), { length: small.length })
  t.same(await s.write(11, 1, pieces(large, 65536), { expectedLength: large.length }), { length: large.length })
  t.same(await s.write(12, 1, pieces(small, 65536)), { length: small.length }, 'unknown length, up to 256 KiB')
  t.same(await s.write(13, 1, pieces(large, 65536)), { length: large.length }, 'unknown length, over 256 KiB')
  t.ok((await readAll(s, 13, 1)).equals(large))
  t.equal(await s.verify(13, 1), 'ok')
  t.ok((await readAll(s, 10, 1)).equals(small))
  t.ok((await readAll(s, 11, 1)).equals(large))
  t.ok((await readAll(s, 12, 1)).equals(small))
  for (const id of [10, 11, 12]) t.equal(await s.verify(id, 1), 'ok', `block ${id} verifies`)
  t.same(await readdir(s.layout.tmpDir), [])
  // Longer than announced, shorter than announced, and a source that fails.
  await t.rejects(s.write(20, 1, pieces(bytes(5000, 1)), { expectedLength: 4096 }), { code: 'BAD_REQUEST' })
  await t.rejects(s.write(21, 1, pieces(bytes(3000, 1)), { expectedLength: 4096 }), { code: 'BAD_REQUEST' })
  await t.rejects(s.write(22, 1, failingAfter(bytes(4096, 1), 1000), { expectedLength: 4096 }))
  t.same(await readdir(s.layout.tmpDir), [], 'no temp file left')
  for (const id of [20, 21, 22]) t.same(await readdir(s.layout.subdir(id)), [], `no replica file of block ${id}`)
  await t.rejects(s.write(23, 1, failingAfter(bytes(4096, 1), 1000)), 'unknown length: a failing source')
  await t.rejects(s.write(24, 1, failingAfter(large, SMALL_WRITE_BYTES + 100)), 'unknown length: failing past 256 KiB')
  t.same(await readdir(s.layout.tmpDir), [], 'no temp file left')
  t.same(s.report().map(r => r[0]).sort((a, b) => a - b), [10, 11, 12, 13])
  // A restart finds exactly the three.
  const again = await newStore(root)
  t.same(again.report().sort((a, b) => a[0] - b[0]), [[10, 1, small.length], [11, 1, large.length], [12, 1, small.length], [13, 1, large.length]])
  await again.close()
  await s.close()
})

t.test('close waits for tracked background work (a patch checkpoint)', async t => {
  const s = await newStore(t.testdir())
  let finish!: () => void
  let done = false
  s.track(new Promise<void>(resolve => { finish = resolve }).then(() => { done = true }))
  let closed = false
  const c = s.close().then(() => { closed = true })
  await new Promise(resolve => setTimeout(resolve, 50))
  t.notOk(closed, 'close is still waiting')
  finish()
  await c
  t.ok(done && closed, 'closed after the work finished')
})
