// Recycled write buffers. A sequential writer through the mount copies every 128 KiB
// FUSE write into a private buffer (fuse-native reuses its own), which then goes both
// to the spool file and, from memory, to the DataServer pipeline. A fresh buffer per
// write made each byte written an allocation outside V8's heap: 256 MiB of them per
// 256 MiB written, which keeps V8 running major (mark-compact) collections every few
// MiB, and glibc handing the memory back to the kernel and faulting it in again.
//
// A PooledChunk has one reference per holder (the spool's queue, the upload); the last
// release() gives its buffer back to the pool. A holder that cannot tell when the
// bytes are no longer read (a failed upload: a socket may still hold them) simply never
// releases: the buffer is then collected by GC like any other, which is always safe.
// Releasing too early is the one thing that must not happen.

export class BufferPool {
  private readonly free: Buffer[] = []
  /** Chunks handed out, buffers given back, buffers allocated (for tests and diagnostics). */
  taken = 0
  returned = 0
  allocated = 0

  /** `bufferBytes`: size of each buffer; `maxFree`: buffers kept while unused. */
  constructor (readonly bufferBytes: number, readonly maxFree: number) {}

  /** Buffers now waiting in the pool. */
  get freeCount (): number { return this.free.length }

  /** A copy of `src[0, n)` (n <= bufferBytes) in a pooled buffer, with one reference per holder. */
  copyOf (src: Buffer, n: number, holders: number): PooledChunk {
    if (n > this.bufferBytes) throw new RangeError(`chunk of ${n} bytes exceeds the pool's ${this.bufferBytes}`)
    let buf = this.free.pop()
    if (buf === undefined) {
      buf = Buffer.allocUnsafeSlow(this.bufferBytes)
      this.allocated++
    }
    this.taken++
    src.copy(buf, 0, 0, n)
    return new PooledChunk(this, buf, n, holders)
  }

  /** @internal: from PooledChunk.release. */
  give (buf: Buffer): void {
    this.returned++
    if (this.free.length < this.maxFree) this.free.push(buf)
  }
}

export class PooledChunk {
  /** The chunk's bytes (a view of the pooled buffer). */
  readonly data: Buffer
  private refs: number

  constructor (private readonly pool: BufferPool, private readonly buf: Buffer, n: number, holders: number) {
    this.data = buf.subarray(0, n)
    this.refs = holders
  }

  /** One holder is done with `data`: nothing of it reads or keeps the bytes any more. */
  release (): void {
    if (this.refs <= 0) throw new Error('PooledChunk released more often than it was held')
    if (--this.refs === 0) this.pool.give(this.buf)
  }
}
