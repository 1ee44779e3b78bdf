// Read cache for block data. Blocks are immutable (a rewrite stores a new block id or
// generation), so cached pieces never go stale: a changed file simply stops referring to
// them and they age out. Pieces are fixed-size slices of a block, kept in memory up to
// `fuse.cache.bytes` (LRU); a run of missing pieces is fetched with one ranged read, and
// concurrent readers of a piece share one fetch.
import type { Readable } from 'node:stream'
import { HissError, isHissError } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import type { LocatedBlock } from '../common/protocol.js'

export const DEFAULT_PIECE_BYTES = 1024 * 1024

/** The one client call the cache needs. */
export interface BlockReader {
  readBlock (block: LocatedBlock, offset: number, length: number, opts?: { ino?: number }): Readable
}

export interface BlockCacheOptions {
  capacityBytes: number
  pieceBytes?: number
  log: Logger
}

interface Deferred { promise: Promise<Buffer>, resolve: (b: Buffer) => void, reject: (e: unknown) => void }

function deferred (): Deferred {
  let resolve!: (b: Buffer) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<Buffer>((res, rej) => { resolve = res; reject = rej })
  // A prefetch nobody waits for must not become an unhandled rejection.
  promise.catch(() => {})
  return { promise, resolve, reject }
}

export class BlockCache {
  readonly pieceBytes: number
  private readonly pieces = new Map<string, Buffer>()
  private readonly inflight = new Map<string, Promise<Buffer>>()
  private bytes = 0
  /** Ranged reads issued (for tests: proves hits and read-ahead). */
  fetches = 0

  constructor (private readonly reader: BlockReader, private readonly opts: BlockCacheOptions) {
    this.pieceBytes = opts.pieceBytes ?? DEFAULT_PIECE_BYTES
  }

  get cachedBytes (): number { return this.bytes }

  /** Copy bytes [off, off+len) of `block` into dst at dstOff. Retries a failed fetch once. */
  async read (block: LocatedBlock, ino: number, off: number, len: number, dst: Buffer, dstOff: number): Promise<void> {
    if (len <= 0) return
    if (off < 0 || off + len > block.length) throw HissError.EIO(`read past the end of block ${block.id}`)
    const first = Math.floor(off / this.pieceBytes)
    const last = Math.floor((off + len - 1) / this.pieceBytes)
    let bufs: Buffer[]
    try {
      bufs = await Promise.all(this.ensure(block, ino, first, last))
    } catch (err) {
      this.opts.log.debug('block read failed, retrying once', { block: block.id, err })
      bufs = await Promise.all(this.ensure(block, ino, first, last))
    }
    let pos = off
    let out = dstOff
    const end = off + len
    for (let k = first; k <= last; k++) {
      const buf = bufs[k - first]!
      const pieceStart = k * this.pieceBytes
      const from = pos - pieceStart
      const to = Math.min(end, pieceStart + buf.length) - pieceStart
      buf.copy(dst, out, from, to)
      out += to - from
      pos += to - from
    }
  }

  /** Start fetching [off, off+len) of `block` in the background. */
  prefetch (block: LocatedBlock, ino: number, off: number, len: number): void {
    const end = Math.min(block.length, off + len)
    if (end <= off) return
    const first = Math.floor(off / this.pieceBytes)
    const last = Math.floor((end - 1) / this.pieceBytes)
    this.ensure(block, ino, first, last)
  }

  /**
   * Keep the content of a block this mount just stored (a read back needs no DataServer
   * round trip). Only a block that fits in one piece; `data` must be all of it.
   */
  seed (block: { id: number, gen: number, length: number }, data: Buffer): void {
    if (data.length !== block.length || block.length === 0 || block.length > this.pieceBytes) return
    this.store(key(block, 0), data)
  }

  has (block: { id: number, gen: number }, piece: number): boolean {
    return this.pieces.has(key(block, piece))
  }

  /** Forget every piece of a block (it is no longer part of a file we know). */
  dropBlock (block: { id: number, gen: number }): void {
    const prefix = `${block.id}:${block.gen}:`
    for (const [k, buf] of this.pieces) {
      if (k.startsWith(prefix)) { this.pieces.delete(k); this.bytes -= buf.length }
    }
  }

  clear (): void {
    this.pieces.clear()
    this.bytes = 0
  }

  private pieceLength (block: LocatedBlock, k: number): number {
    return Math.min(this.pieceBytes, block.length - k * this.pieceBytes)
  }

  /** Promises for pieces first..last, starting one ranged fetch per run of missing pieces. */
  private ensure (block: LocatedBlock, ino: number, first: number, last: number): Array<Promise<Buffer>> {
    const out: Array<Promise<Buffer>> = []
    let runStart = -1
    const flushRun = (endExclusive: number): void => {
      if (runStart < 0) return
      const ds = this.fetchRun(block, ino, runStart, endExclusive - 1)
      for (const d of ds) out.push(d)
      runStart = -1
    }
    for (let k = first; k <= last; k++) {
      const kk = key(block, k)
      const hit = this.pieces.get(kk)
      if (hit !== undefined) {
        // Refresh LRU position.
        this.pieces.delete(kk)
        this.pieces.set(kk, hit)
        flushRun(k)
        out.push(Promise.resolve(hit))
        continue
      }
      const pending = this.inflight.get(kk)
      if (pending !== undefined) {
        flushRun(k)
        out.push(pending)
        continue
      }
      if (runStart < 0) runStart = k
    }
    flushRun(last + 1)
    return out
  }

  private fetchRun (block: LocatedBlock, ino: number, a: number, b: number): Array<Promise<Buffer>> {
    const ds: Deferred[] = []
    for (let k = a; k <= b; k++) {
      const d = deferred()
      ds.push(d)
      this.inflight.set(key(block, k), d.promise)
    }
    // Settled pieces leave the in-flight map synchronously, so a retry right after a
    // failure starts a new fetch instead of finding the failed one.
    const done = (i: number): void => {
      const kk = key(block, a + i)
      if (this.inflight.get(kk) === ds[i]!.promise) this.inflight.delete(kk)
    }
    const start = a * this.pieceBytes
    const end = Math.min(block.length, (b + 1) * this.pieceBytes)
    this.fetches++
    this.opts.log.debug('block read', { id: block.id, offset: start, length: end - start })
    let k = a
    let cur: Buffer | undefined
    let filled = 0
    let settled = false
    const fail = (err: unknown): void => {
      if (settled) return
      settled = true
      const e = isHissError(err) ? err : HissError.EIO(`reading block ${block.id}: ${(err as Error)?.message ?? String(err)}`)
      for (let i = k - a; i < ds.length; i++) { done(i); ds[i]!.reject(e) }
    }
    let stream: Readable
    try {
      stream = this.reader.readBlock(block, start, end - start, { ino })
    } catch (err) {
      fail(err)
      return ds.map(d => d.promise)
    }
    stream.on('data', (chunk: Buffer) => {
      let off = 0
      while (off < chunk.length && !settled) {
        if (k > b) { fail(HissError.EIO(`block ${block.id}: more bytes than asked for`)); stream.destroy(); return }
        if (cur === undefined) { cur = Buffer.allocUnsafe(this.pieceLength(block, k)); filled = 0 }
        const n = Math.min(chunk.length - off, cur.length - filled)
        chunk.copy(cur, filled, off, off + n)
        filled += n
        off += n
        if (filled === cur.length) {
          this.store(key(block, k), cur)
          done(k - a)
          ds[k - a]!.resolve(cur)
          cur = undefined
          k++
        }
      }
    })
    stream.on('end', () => {
      if (k <= b) fail(HissError.EIO(`block ${block.id}: short read`))
      settled = true
    })
    stream.on('error', fail)
    return ds.map(d => d.promise)
  }

  private store (kk: string, buf: Buffer): void {
    if (buf.length > this.opts.capacityBytes) return
    const old = this.pieces.get(kk)
    if (old !== undefined) { this.pieces.delete(kk); this.bytes -= old.length }
    this.pieces.set(kk, buf)
    this.bytes += buf.length
    while (this.bytes > this.opts.capacityBytes) {
      const oldest = this.pieces.entries().next()
      if (oldest.done === true) break
      this.pieces.delete(oldest.value[0])
      this.bytes -= oldest.value[1].length
    }
  }
}

function key (block: { id: number, gen: number }, piece: number): string {
  return `${block.id}:${block.gen}:${piece}`
}
