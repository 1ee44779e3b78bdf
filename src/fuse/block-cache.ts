// Read cache for block data. Blocks are immutable (a rewrite stores a new block id or
// generation), so cached pieces never go stale: a changed file simply stops referring to
// them and they age out. Pieces are fixed-size slices of a block, kept in memory up to
// `fuse.cache.bytes` (LRU); a run of missing pieces is fetched with one ranged read, and
// concurrent readers of a piece share one fetch.
//
// Memory is recycled: touching fresh memory costs a page fault per 4 KiB, which made
// filling new piece buffers the mount's main cost on sequential reads. Evicted pieces go
// to a small free list and are refilled by the next fetch; a piece a reader is copying
// from is pinned and never recycled under it. A sequential reader (streaming) releases the
// pieces its run has read past (release()): the kernel's page cache holds them while the
// file stays open, so the cache keeps the read-ahead window of a stream, not the whole
// stream. Only pieces a stream itself went through are released: a random reader's
// pieces stay cached (they are what makes its next reads hits).
//
// A block that could not be read at all (BLOCK_LOST: every replica failed for the whole
// retry window, client.retry.ms) is remembered as lost for a short while: the kernel
// follows a failed read-ahead with a read of the single page, and each took the whole
// window again (a `cat` of a file whose DataServers were all gone took 4 x 20 s to say
// EIO). Reads of it in that while fail at once; later ones try the DataServers again.
//
// A mirror (setMirror) is told of every piece that enters the cache and of every piece
// that leaves it, before its buffer can be reused: the mount's native read path reads the
// buffers of cached pieces directly (see PieceMirror).
import type { Readable } from 'node:stream'
import { SystemClock, type Clock } from '../common/clock.js'
import { HissError, isHissError } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import type { LocatedBlock } from '../common/protocol.js'

export const DEFAULT_PIECE_BYTES = 1024 * 1024
/** How long a block found unreadable (BLOCK_LOST) fails reads at once. */
export const LOST_BLOCK_MEMORY_MS = 5000

/**
 * The client calls the cache needs: readBlock, or readBlockInto when the client has it
 * (bytes as views of the client's reused receive buffer, copied into pieces at once:
 * no buffer allocated per network read).
 */
export interface BlockReader {
  readBlock (block: LocatedBlock, offset: number, length: number, opts?: { ino?: number }): Readable
  readBlockInto? (block: LocatedBlock, offset: number, length: number, sink: (bytes: Buffer) => void, opts?: { ino?: number }): Promise<void>
}

export interface BlockCacheOptions {
  capacityBytes: number
  pieceBytes?: number
  log: Logger
  /** Ages the memory of lost blocks (the mount's clock). */
  clock?: Clock
  lostMemoryMs?: number
}

/** Free piece buffers kept for reuse (beyond this they go to the garbage collector). */
export const FREE_PIECES = 16

/**
 * Something that reads cached pieces' buffers directly (the patched fuse-native's native
 * reads). `set` hands over a piece's buffer, which stays unchanged until `delete` of the
 * same piece has returned; `clear` deletes them all.
 */
export interface PieceMirror {
  set (id: number, gen: number, idx: number, buf: Buffer): void
  delete (id: number, gen: number, idx: number): void
  clear (): void
}

interface Piece {
  buf: Buffer
  /** Which piece it is (the key's parts, for the mirror). */
  id: number
  gen: number
  idx: number
  /** Readers copying from it: not recycled before they are done. */
  pins: number
  /** No longer in the cache: recycle when unpinned. */
  gone: boolean
}

interface Inflight {
  promise: Promise<Piece>
  /** Readers that will pin the piece when it arrives. */
  waiters: number
}

interface Deferred { promise: Promise<Piece>, resolve: (p: Piece) => void, reject: (e: unknown) => void }

function deferred (): Deferred {
  let resolve!: (p: Piece) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<Piece>((res, rej) => { resolve = res; reject = rej })
  // A prefetch nobody waits for must not become an unhandled rejection.
  promise.catch(() => {})
  return { promise, resolve, reject }
}

export class BlockCache {
  readonly pieceBytes: number
  private readonly pieces = new Map<string, Piece>()
  private readonly inflight = new Map<string, Inflight>()
  private readonly free: Buffer[] = []
  private bytes = 0
  private mirror: PieceMirror | undefined
  /** Ranged reads issued (for tests: proves hits and read-ahead). */
  fetches = 0
  /** Piece buffers reused instead of allocated (for tests). */
  recycled = 0

  /** Blocks (id:gen) whose last fetch ended BLOCK_LOST: the error, and until when (clock.now). */
  private readonly lost = new Map<string, { err: HissError, until: number }>()
  private readonly clock: Clock
  private readonly lostMemoryMs: number

  constructor (private readonly reader: BlockReader, private readonly opts: BlockCacheOptions) {
    this.pieceBytes = opts.pieceBytes ?? DEFAULT_PIECE_BYTES
    this.clock = opts.clock ?? new SystemClock()
    this.lostMemoryMs = opts.lostMemoryMs ?? LOST_BLOCK_MEMORY_MS
  }

  /** The error of a block found unreadable a moment ago, if it is still remembered. */
  private lostError (block: { id: number, gen: number }): HissError | undefined {
    const k = blockKey(block)
    const l = this.lost.get(k)
    if (l === undefined) return undefined
    if (this.clock.now() < l.until) return l.err
    this.lost.delete(k)
    return undefined
  }

  private rememberLost (block: { id: number, gen: number }, err: HissError): void {
    const now = this.clock.now()
    // Bounded: expired entries go whenever the map grows large.
    if (this.lost.size >= 1024) for (const [k, l] of this.lost) if (now >= l.until) this.lost.delete(k)
    this.lost.set(blockKey(block), { err, until: now + this.lostMemoryMs })
  }

  get cachedBytes (): number { return this.bytes }

  /** Mirror every cached piece into `m` from now on; undefined: clear the mirror and stop. */
  setMirror (m: PieceMirror | undefined): void {
    this.mirror?.clear()
    this.mirror = m
    if (m !== undefined) for (const p of this.pieces.values()) m.set(p.id, p.gen, p.idx, p.buf)
  }

  /**
   * Copy bytes [off, off+len) of `block` into dst at dstOff. Retries a failed fetch once
   * (it may have been a read-ahead started long before), but not a block found lost.
   */
  async read (block: LocatedBlock, ino: number, off: number, len: number, dst: Buffer, dstOff: number): Promise<void> {
    if (len <= 0) return
    if (off < 0 || off + len > block.length) throw HissError.EIO(`read past the end of block ${block.id}`)
    const first = Math.floor(off / this.pieceBytes)
    const last = Math.floor((off + len - 1) / this.pieceBytes)
    let pieces: Piece[]
    try {
      pieces = await this.pinned(this.ensure(block, ino, first, last, true))
    } catch (err) {
      if (isHissError(err) && err.code === 'BLOCK_LOST') throw err
      this.opts.log.debug('block read failed, retrying once', { block: block.id, err })
      pieces = await this.pinned(this.ensure(block, ino, first, last, true))
    }
    try {
      let pos = off
      let out = dstOff
      const end = off + len
      for (let k = first; k <= last; k++) {
        const buf = pieces[k - first]!.buf
        const pieceStart = k * this.pieceBytes
        const from = pos - pieceStart
        const to = Math.min(end, pieceStart + buf.length) - pieceStart
        buf.copy(dst, out, from, to)
        out += to - from
        pos += to - from
      }
    } finally {
      for (const p of pieces) this.unpin(p)
    }
  }

  /**
   * A streaming reader has read past bytes [off, end) of `block`: drop the pieces that
   * lie wholly inside (a piece only partly inside may hold bytes someone else reads).
   */
  release (block: { id: number, gen: number, length: number }, off: number, end: number): void {
    const first = Math.ceil(off / this.pieceBytes)
    // The block's short last piece ends at the block's end.
    const last = end >= block.length ? Math.ceil(block.length / this.pieceBytes) - 1 : Math.floor(end / this.pieceBytes) - 1
    for (let k = first; k <= last; k++) this.remove(key(block, k))
  }

  /** Start fetching [off, off+len) of `block` in the background. */
  prefetch (block: LocatedBlock, ino: number, off: number, len: number): void {
    const end = Math.min(block.length, off + len)
    if (end <= off) return
    const first = Math.floor(off / this.pieceBytes)
    const last = Math.floor((end - 1) / this.pieceBytes)
    this.ensure(block, ino, first, last, false)
  }

  /**
   * Keep the content of a block this mount just stored (a read back needs no DataServer
   * round trip). Only a block that fits in one piece; `data` must be all of it.
   */
  seed (block: { id: number, gen: number, length: number }, data: Buffer): void {
    if (data.length !== block.length || block.length === 0 || block.length > this.pieceBytes) return
    this.store(key(block, 0), { buf: data, id: block.id, gen: block.gen, idx: 0, pins: 0, gone: false })
  }

  has (block: { id: number, gen: number }, piece: number): boolean {
    return this.pieces.has(key(block, piece))
  }

  /** Forget every piece of a block (it is no longer part of a file we know). */
  dropBlock (block: { id: number, gen: number }): void {
    const prefix = `${block.id}:${block.gen}:`
    for (const k of [...this.pieces.keys()]) {
      if (k.startsWith(prefix)) this.remove(k)
    }
  }

  clear (): void {
    for (const k of [...this.pieces.keys()]) this.remove(k)
  }

  private remove (kk: string): void {
    const p = this.pieces.get(kk)
    if (p === undefined) return
    this.pieces.delete(kk)
    this.bytes -= p.buf.length
    // Before the buffer can be reused: the mirror no longer reads it once this returns.
    this.mirror?.delete(p.id, p.gen, p.idx)
    p.gone = true
    this.recycle(p)
  }

  private recycle (p: Piece): void {
    if (!p.gone || p.pins > 0) return
    if (p.buf.length === this.pieceBytes && this.free.length < FREE_PIECES) this.free.push(p.buf)
    // Recycled at most once: the Piece no longer owns its buffer.
    p.pins = Number.POSITIVE_INFINITY
  }

  private unpin (p: Piece): void {
    p.pins--
    this.recycle(p)
  }

  private allocPiece (length: number): Buffer {
    if (length === this.pieceBytes) {
      const b = this.free.pop()
      if (b !== undefined) { this.recycled++; return b }
    }
    return Buffer.allocUnsafe(length)
  }

  /** Wait for every piece; on any failure, unpin the ones that arrived and rethrow. */
  private async pinned (ps: Array<Promise<Piece>>): Promise<Piece[]> {
    const rs = await Promise.allSettled(ps)
    const failed = rs.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed === undefined) return rs.map(r => (r as PromiseFulfilledResult<Piece>).value)
    for (const r of rs) if (r.status === 'fulfilled') this.unpin(r.value)
    throw failed.reason
  }

  private pieceLength (block: LocatedBlock, k: number): number {
    return Math.min(this.pieceBytes, block.length - k * this.pieceBytes)
  }

  /**
   * Promises for pieces first..last, starting one ranged fetch per run of missing pieces.
   * With `pin`, each piece is pinned for the caller (who must unpin it).
   */
  private ensure (block: LocatedBlock, ino: number, first: number, last: number, pin: boolean): Array<Promise<Piece>> {
    const out: Array<Promise<Piece>> = []
    const lost = this.lostError(block)
    let runStart = -1
    const flushRun = (endExclusive: number): void => {
      if (runStart < 0) return
      const ds = this.fetchRun(block, ino, runStart, endExclusive - 1, pin)
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
        if (pin) hit.pins++
        flushRun(k)
        out.push(Promise.resolve(hit))
        continue
      }
      const pending = this.inflight.get(kk)
      if (pending !== undefined) {
        if (pin) pending.waiters++
        flushRun(k)
        out.push(pending.promise)
        continue
      }
      // Not cached and not on its way: a lost block fails here without a fetch.
      if (lost !== undefined) {
        flushRun(k)
        const failed = Promise.reject(lost)
        failed.catch(() => {}) // read() sees it through pinned(); nobody else waits
        out.push(failed)
        continue
      }
      if (runStart < 0) runStart = k
    }
    flushRun(last + 1)
    return out
  }

  private fetchRun (block: LocatedBlock, ino: number, a: number, b: number, pin: boolean): Array<Promise<Piece>> {
    const ds: Deferred[] = []
    const fl: Inflight[] = []
    for (let k = a; k <= b; k++) {
      const d = deferred()
      ds.push(d)
      const f = { promise: d.promise, waiters: pin ? 1 : 0 }
      fl.push(f)
      this.inflight.set(key(block, k), f)
    }
    // Settled pieces leave the in-flight map synchronously, so a retry right after a
    // failure starts a new fetch instead of finding the failed one.
    const done = (i: number): void => {
      const kk = key(block, a + i)
      if (this.inflight.get(kk) === fl[i]) this.inflight.delete(kk)
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
      // A half-filled buffer was never handed out: it can be reused.
      if (cur !== undefined && cur.length === this.pieceBytes && this.free.length < FREE_PIECES) this.free.push(cur)
      cur = undefined
      const e = isHissError(err) ? err : HissError.EIO(`reading block ${block.id}: ${(err as Error)?.message ?? String(err)}`)
      if (e.code === 'BLOCK_LOST') this.rememberLost(block, e)
      for (let i = k - a; i < ds.length; i++) { done(i); ds[i]!.reject(e) }
    }
    /** Copy a run of bytes into the pieces; false once the fetch has failed. */
    const take = (chunk: Buffer): boolean => {
      let off = 0
      while (off < chunk.length && !settled) {
        if (k > b) { fail(HissError.EIO(`block ${block.id}: more bytes than asked for`)); return false }
        if (cur === undefined) { cur = this.allocPiece(this.pieceLength(block, k)); filled = 0 }
        const n = Math.min(chunk.length - off, cur.length - filled)
        chunk.copy(cur, filled, off, off + n)
        filled += n
        off += n
        if (filled === cur.length) {
          const piece: Piece = { buf: cur, id: block.id, gen: block.gen, idx: k, pins: fl[k - a]!.waiters, gone: false }
          cur = undefined
          done(k - a)
          this.store(key(block, k), piece)
          ds[k - a]!.resolve(piece)
          k++
        }
      }
      return !settled
    }
    const ended = (): void => {
      if (k <= b) fail(HissError.EIO(`block ${block.id}: short read`))
      settled = true
    }
    const into = this.reader.readBlockInto
    if (into !== undefined) {
      try {
        into.call(this.reader, block, start, end - start, chunk => {
          if (!take(chunk)) throw HissError.EIO(`block ${block.id}: fetch abandoned`)
        }, { ino }).then(ended, fail)
      } catch (err) {
        fail(err)
      }
      return ds.map(d => d.promise)
    }
    let stream: Readable
    try {
      stream = this.reader.readBlock(block, start, end - start, { ino })
    } catch (err) {
      fail(err)
      return ds.map(d => d.promise)
    }
    stream.on('data', (chunk: Buffer) => {
      if (!take(chunk)) stream.destroy()
    })
    stream.on('end', ended)
    stream.on('error', fail)
    return ds.map(d => d.promise)
  }

  private store (kk: string, piece: Piece): void {
    if (piece.buf.length > this.opts.capacityBytes) { piece.gone = true; this.recycle(piece); return }
    this.remove(kk)
    this.pieces.set(kk, piece)
    this.bytes += piece.buf.length
    this.mirror?.set(piece.id, piece.gen, piece.idx, piece.buf)
    while (this.bytes > this.opts.capacityBytes) {
      const oldest = this.pieces.keys().next()
      if (oldest.done === true) break
      this.remove(oldest.value)
    }
  }
}

function blockKey (block: { id: number, gen: number }): string {
  return `${block.id}:${block.gen}`
}

function key (block: { id: number, gen: number }, piece: number): string {
  return `${block.id}:${block.gen}:${piece}`
}
