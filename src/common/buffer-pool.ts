// Recycled fixed-size buffers for the data path. A fresh buffer per 1 MiB read batch
// (DataServer) or per 128 KiB FUSE write (mount) is an allocation outside V8's heap
// for every byte moved: it keeps V8 running major collections and glibc handing the
// memory back to the kernel and faulting it in again (measured: 0.35-0.7 s of system
// time per GiB read on a DataServer; ~20 mark-compacts per 256 MiB written through the
// mount). A buffer comes back only through `give`, once nothing refers to its bytes any
// more (a socket write's callback, the last holder of a PooledChunk); one never given
// back (a failed upload: a socket may still hold it) is left to the GC, which is always
// safe. Only buffers this pool made are taken back, each once per `take`, so a stray or
// double `give` cannot put bytes in use back. Releasing too early is the one thing that
// must not happen.

export class BufferPool {
  private readonly free: Buffer[] = []
  private readonly out = new WeakSet<ArrayBufferLike>()
  /** Pooled takes, buffers given back, buffers allocated (tests and diagnostics). */
  taken = 0
  returned = 0
  allocated = 0

  /** `bufferBytes`: size of each buffer; `maxFree`: buffers kept while unused. */
  constructor (readonly bufferBytes: number, readonly maxFree: number) {}

  /** Buffers waiting for reuse. */
  get freeCount (): number { return this.free.length }

  /** A buffer of `size` bytes (uninitialised); pooled when size <= bufferBytes. */
  take (size: number): Buffer {
    if (size > this.bufferBytes) return Buffer.allocUnsafe(size)
    let b = this.free.pop()
    if (b === undefined) {
      b = Buffer.allocUnsafeSlow(this.bufferBytes)
      this.allocated++
    }
    this.taken++
    this.out.add(b.buffer)
    return b.subarray(0, size)
  }

  /** Return the buffer behind `view` (any view of a taken buffer) for reuse. */
  give (view: Uint8Array): void {
    const ab = view.buffer
    if (!this.out.has(ab)) return
    this.out.delete(ab)
    this.returned++
    if (this.free.length < this.maxFree) this.free.push(Buffer.from(ab, 0, this.bufferBytes))
  }

  /** A copy of `src[0, n)` (n <= bufferBytes) in a pooled buffer, with one reference per holder. */
  copyOf (src: Buffer, n: number, holders: number): PooledChunk {
    if (n > this.bufferBytes) throw new RangeError(`chunk of ${n} bytes exceeds the pool's ${this.bufferBytes}`)
    const data = this.take(n)
    src.copy(data, 0, 0, n)
    return new PooledChunk(this, data, holders)
  }
}

/** Pooled bytes with several holders (the mount's spool queue and upload): the last release gives them back. */
export class PooledChunk {
  private refs: number

  constructor (private readonly pool: BufferPool, readonly data: Buffer, holders: number) {
    this.refs = holders
  }

  /** One holder is done with `data`: nothing of it reads or keeps the bytes any more. */
  release (): void {
    if (this.refs <= 0) throw new Error('PooledChunk released more often than it was held')
    if (--this.refs === 0) this.pool.give(this.data)
  }
}
