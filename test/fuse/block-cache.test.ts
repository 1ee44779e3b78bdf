// The block cache's memory reuse: evicted piece buffers are refilled by later fetches,
// never while a reader still copies from them; a streaming reader's old pieces are
// dropped behind it; concurrent random readers of overlapping ranges always get the
// right bytes while pieces are evicted and recycled under them.
import t from 'tap'
import { Readable } from 'node:stream'
import { silentLogger } from '../../src/common/log.js'
import type { LocatedBlock } from '../../src/common/protocol.js'
import { BlockCache } from '../../src/fuse/block-cache.js'
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
    await cache.read(block, 1, off, n, out, off, off > 0)
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
      await cache.read(located(id, data.length), 1, off, len, dst, 10, rng.below(2) === 0)
      if (!dst.subarray(10).equals(data.subarray(off, off + len))) bad++
    }
  }
  await Promise.all(Array.from({ length: 12 }, worker))
  t.equal(bad, 0, 'every read got its own bytes')
  t.ok(cache.recycled > 0, `buffers were recycled (${cache.recycled})`)
  t.ok(cache.cachedBytes <= 30_000, 'bounded')
})
