// The block cache's memory reuse: evicted piece buffers are refilled by later fetches,
// never while a reader still copies from them; a streaming reader's old pieces are
// dropped behind it, a random reader's never; concurrent random readers of overlapping
// ranges always get the right bytes while pieces are evicted and recycled under them.
import t from 'tap'
import { Readable } from 'node:stream'
import { ManualClock, SystemClock } from '../../src/common/clock.js'
import { HissError } from '../../src/common/errors.js'
import { silentLogger } from '../../src/common/log.js'
import type { FileStat, LocatedBlock } from '../../src/common/protocol.js'
import { BlockCache } from '../../src/fuse/block-cache.js'
import { OpenFile, newReadCursor, type ReadCursor } from '../../src/fuse/open-file.js'
import { Spool } from '../../src/fuse/spool.js'
import { Rng } from '../helpers/rng.js'

function content (n: number, seed: number): Buffer {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed * 13 + (i >> 9)) & 0xff
  return b
}

/** A reader that serves `data` in chunks of `chunk` bytes, each on a later turn. */
function slowReader (blocks: Map<number, Buffer>, chunk = 3000): { readBlock: (b: LocatedBlock, off: number, len: number) => Readable, calls: number } {
  const r = {
    calls: 0,
    readBlock (b: LocatedBlock, off: number, len: number): Readable {
      r.calls++
      const data = blocks.get(b.id)!.subarray(off, off + len)
      return Readable.from((async function * () {
        for (let o = 0; o < data.length; o += chunk) {
          await new Promise(resolve => setImmediate(resolve))
          yield data.subarray(o, o + chunk)
        }
      })())
    },
  }
  return r
}

function located (id: number, length: number): LocatedBlock {
  return { id, gen: 1, length, offset: 0, locations: [], token: '' }
}

t.test('a streaming reader keeps only a window; buffers are reused', async t => {
  const data = content(200_000, 1)
  const reader = slowReader(new Map([[1, data]]))
  const cache = new BlockCache(reader, { capacityBytes: 1_000_000, pieceBytes: 10_000, log: silentLogger })
  const block = located(1, data.length)
  const out = Buffer.alloc(data.length)
  for (let off = 0; off < data.length; off += 4000) {
    const n = Math.min(4000, data.length - off)
    cache.prefetch(block, 1, off + n, 30_000)
    await cache.read(block, 1, off, n, out, off)
    cache.release(block, 0, Math.max(0, off - 10_000))
  }
  t.ok(out.equals(data), 'bytes right')
  t.ok(cache.cachedBytes <= 60_000, `only the window stays cached (${cache.cachedBytes} bytes)`)
  t.ok(cache.recycled > 5, `piece buffers were reused (${cache.recycled})`)

  // A non-streaming reader keeps what it read (LRU up to the capacity).
  const keep = new BlockCache(slowReader(new Map([[1, data]])), { capacityBytes: 1_000_000, pieceBytes: 10_000, log: silentLogger })
  for (let off = 0; off < data.length; off += 20_000) await keep.read(block, 1, off, 20_000, out, off)
  t.equal(keep.cachedBytes, data.length)
})

t.test('recycling never hands a reader bytes of another piece', async t => {
  // A cache of 3 pieces under 12 concurrent random readers over 3 blocks: pieces are
  // evicted and their buffers refilled constantly while readers wait and copy.
  const blocks = new Map<number, Buffer>([[1, content(50_000, 1)], [2, content(50_000, 2)], [3, content(47_123, 3)]])
  const cache = new BlockCache(slowReader(blocks, 1700), { capacityBytes: 30_000, pieceBytes: 10_000, log: silentLogger })
  const rng = new Rng(7)
  let bad = 0
  const worker = async (): Promise<void> => {
    for (let i = 0; i < 60; i++) {
      const id = 1 + rng.below(3)
      const data = blocks.get(id)!
      const off = rng.below(data.length)
      const len = 1 + rng.below(Math.min(25_000, data.length - off))
      const dst = Buffer.alloc(len + 10)
      if (rng.below(3) === 0) cache.prefetch(located(id, data.length), 1, rng.below(data.length), 20_000)
      await cache.read(located(id, data.length), 1, off, len, dst, 10)
      if (rng.below(2) === 0) cache.release(located(id, data.length), Math.max(0, off - 20_000), off)
      if (!dst.subarray(10).equals(data.subarray(off, off + len))) bad++
    }
  }
  await Promise.all(Array.from({ length: 12 }, worker))
  t.equal(bad, 0, 'every read got its own bytes')
  t.ok(cache.recycled > 0, `buffers were recycled (${cache.recycled})`)
  t.ok(cache.cachedBytes <= 30_000, 'bounded')
})

t.test('release drops only the pieces wholly inside the range, up to the short last one', async t => {
  const data = content(35_000, 4)
  const cache = new BlockCache(slowReader(new Map([[1, data]])), { capacityBytes: 1_000_000, pieceBytes: 10_000, log: silentLogger })
  const block = located(1, data.length)
  await cache.read(block, 1, 0, data.length, Buffer.alloc(data.length), 0)
  cache.release(block, 5_000, 29_999)
  t.same([0, 1, 2, 3].map(k => cache.has(block, k)), [true, false, true, true], 'piece 1 only')
  cache.release(block, 20_000, data.length)
  t.same([0, 1, 2, 3].map(k => cache.has(block, k)), [true, false, false, false], 'the short last piece too')
})

/** One file of one block over `reader`, opened, read through an OpenFile. */
function openOneBlock (data: Buffer, cache: BlockCache, readaheadBytes: number, tt: { teardown: (fn: () => void) => void }): OpenFile {
  const block = located(1, data.length)
  const stat: FileStat = { ino: 9, type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, nlink: 1, atimeNs: '0', mtimeNs: '1', ctimeNs: '0', replication: 1, blockSize: data.length }
  const client = {
    async getBlocks () { return { stat, blocks: [block] } },
    async openWrite (): Promise<never> { throw new Error('read-only test') },
  }
  const spool = new Spool()
  tt.teardown(() => spool.destroy())
  const file = new OpenFile({ client, cache, spool, clock: new SystemClock(), log: silentLogger, readaheadBytes }, stat, '/f')
  file.applyRemote(stat, [block])
  return file
}

t.test('random 4 KiB reads through one handle fetch each piece once (none dropped and fetched again)', async t => {
  // fio randread's pattern: one handle, 4 KiB at random offsets. Now and then a read lands
  // within a piece of the previous one; that used to count as streaming and drop a cached
  // piece, so the same pieces were fetched (a whole piece per 4 KiB read) over and over.
  const piece = 16 * 1024
  const pieces = 64
  const data = content(piece * pieces, 5)
  const reader = slowReader(new Map([[1, data]]), 8192)
  const cache = new BlockCache(reader, { capacityBytes: 2 * data.length, pieceBytes: piece, log: silentLogger })
  const file = openOneBlock(data, cache, 8 * piece, t)
  const cursor: ReadCursor = newReadCursor()
  const rng = new Rng(11)
  const buf = Buffer.alloc(4096)
  let bad = 0
  let fetchedAfterWarm = -1
  for (let i = 0; i < 6000; i++) {
    const pos = rng.below(data.length / 4096) * 4096
    const n = await file.read(buf, 4096, pos, cursor)
    if (n !== 4096 || !buf.equals(data.subarray(pos, pos + 4096))) bad++
    if (i === 2999) fetchedAfterWarm = cache.fetches
  }
  t.equal(bad, 0, 'every read got its bytes')
  let cached = 0
  for (let k = 0; k < pieces; k++) if (cache.has(located(1, data.length), k)) cached++
  t.equal(cached, pieces, 'every piece is still cached')
  t.equal(cache.fetches, fetchedAfterWarm, `no fetch after the first 3000 reads (${fetchedAfterWarm} then ${cache.fetches})`)
  t.ok(cache.fetches <= pieces, `at most one fetch per piece (${cache.fetches} fetches for ${pieces} pieces)`)
})

t.test('a sequential reader through OpenFile keeps about its read-ahead window cached', async t => {
  const piece = 16 * 1024
  const data = content(piece * 64, 6)
  const cache = new BlockCache(slowReader(new Map([[1, data]]), 8192), { capacityBytes: 2 * data.length, pieceBytes: piece, log: silentLogger })
  const file = openOneBlock(data, cache, 8 * piece, t)
  const cursor = newReadCursor()
  const out = Buffer.alloc(data.length)
  const chunk = 8192
  for (let pos = 0; pos < data.length; pos += chunk) {
    await file.read(out.subarray(pos), chunk, pos, cursor)
  }
  t.ok(out.equals(data), 'bytes right')
  t.ok(cache.cachedBytes <= 12 * piece, `cache holds about the window (${cache.cachedBytes} bytes)`)
  t.ok(cache.fetches < 64, `read-ahead fetched runs of pieces (${cache.fetches} fetches)`)
})

t.test('a mirror sees every piece that is cached, with its bytes, and loses it before its buffer is reused', async t => {
  const data = content(200_000, 3)
  const cache = new BlockCache(slowReader(new Map([[1, data]])), { capacityBytes: 50_000, pieceBytes: 10_000, log: silentLogger })
  const block = located(1, data.length)
  // What the mirror holds: a copy of each piece's bytes taken when it was set, checked
  // against the live buffer whenever anything happens (a reused buffer would differ).
  const held = new Map<string, { buf: Buffer, copy: Buffer }>()
  let violations = 0
  const check = (): void => { for (const v of held.values()) if (!v.buf.equals(v.copy)) violations++ }
  const mirror = {
    set (id: number, gen: number, idx: number, buf: Buffer) {
      check()
      t.ok(buf.equals(data.subarray(idx * 10_000, idx * 10_000 + buf.length)), `piece ${idx}: the mirror gets its bytes`)
      held.set(`${id}:${gen}:${idx}`, { buf, copy: Buffer.from(buf) })
    },
    delete (id: number, gen: number, idx: number) { check(); held.delete(`${id}:${gen}:${idx}`) },
    clear () { check(); held.clear() },
  }
  // Pieces cached before the mirror is attached are handed over at once.
  const out = Buffer.alloc(data.length)
  await cache.read(block, 1, 0, 15_000, out, 0)
  cache.setMirror(mirror)
  t.same([...held.keys()].sort(), ['1:1:0', '1:1:1'], 'attached: the pieces already cached')
  for (let off = 0; off < data.length; off += 7000) {
    const n = Math.min(7000, data.length - off)
    await cache.read(block, 1, off, n, out, off)
    cache.release(block, 0, Math.max(0, off - 20_000))
  }
  check()
  t.ok(out.equals(data), 'bytes right')
  t.ok(cache.recycled > 3, `buffers were reused (${cache.recycled}) while the mirror watched`)
  t.equal(violations, 0, 'no buffer changed while the mirror held it')
  t.ok(held.size > 0 && held.size <= 5, `the mirror holds what the cache holds (${held.size} pieces)`)
  cache.dropBlock(block)
  t.equal(held.size, 0, 'a dropped block leaves the mirror')
  await cache.read(block, 1, 0, 100, out, 0)
  t.equal(held.size, 1, 'a piece fetched again is mirrored again')
  cache.setMirror(undefined)
  t.equal(held.size, 0, 'detaching clears the mirror')
})

t.test('a block found lost fails reads at once for a while, then is fetched again', async t => {
  const clock = new ManualClock()
  let calls = 0
  let lost = true
  const data = content(25_000, 3)
  const reader = {
    readBlock (b: LocatedBlock, off: number, len: number): Readable {
      calls++
      if (lost) {
        return new Readable({ read () { this.destroy(HissError.from('BLOCK_LOST', `block ${b.id}: every replica failed`)) } })
      }
      return Readable.from([data.subarray(off, off + len)])
    },
  }
  const cache = new BlockCache(reader, { capacityBytes: 1_000_000, pieceBytes: 10_000, log: silentLogger, clock, lostMemoryMs: 5000 })
  const block = located(1, data.length)
  const out = Buffer.alloc(data.length)
  await t.rejects(cache.read(block, 1, 0, 15_000, out, 0), { code: 'BLOCK_LOST' }, 'the first read fails')
  t.equal(calls, 1, 'after one fetch: a lost block is not fetched again at once (the reader already waited its retry window)')
  // The kernel's next try (one page), another reader, a read-ahead: no fetch, same error.
  await t.rejects(cache.read(block, 1, 0, 4096, out, 0), { code: 'BLOCK_LOST' })
  await t.rejects(cache.read(block, 1, 20_000, 5000, out, 0), { code: 'BLOCK_LOST' })
  cache.prefetch(block, 1, 0, 25_000)
  t.equal(calls, 1, 'reads in the next moments fail without a fetch')
  // Another generation of the block is another block.
  lost = false
  await cache.read({ ...block, gen: 2 }, 1, 0, 100, out, 0)
  t.equal(calls, 2, 'another generation is fetched')
  clock.advance(5000)
  await cache.read(block, 1, 0, data.length, out, 0)
  t.ok(out.equals(data), 'once the memory lapsed, the block is fetched and read')
  t.equal(calls, 3)
})

t.test('another failure is still retried once', async t => {
  let calls = 0
  const data = content(10_000, 4)
  const reader = {
    readBlock (_b: LocatedBlock, off: number, len: number): Readable {
      calls++
      if (calls === 1) return new Readable({ read () { this.destroy(HissError.EIO('connection cut')) } })
      return Readable.from([data.subarray(off, off + len)])
    },
  }
  const cache = new BlockCache(reader, { capacityBytes: 1_000_000, pieceBytes: 10_000, log: silentLogger, clock: new ManualClock() })
  const out = Buffer.alloc(data.length)
  await cache.read(located(1, data.length), 1, 0, data.length, out, 0)
  t.ok(out.equals(data), 'the retry reads it')
  t.equal(calls, 2)
})
