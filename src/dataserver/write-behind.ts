// Write-behind for one replica file: pieces are queued and written in order with one
// writev per batch of at least WRITE_BATCH_BYTES while the caller goes on receiving (and
// forwarding) the next ones, so the disk and the network work at the same time and a
// 64 MiB block costs about 64 writes instead of one per 64 KiB network read (each write
// is a hand-off to the thread pool, which costs far more than the copy). At most
// `maxQueued` bytes wait in memory; push() holds the caller back beyond that.
import type { FileHandle } from 'node:fs/promises'
import { writevAll } from '../common/writev-all.js'

/** Bytes queued for the disk per block write before the receiver waits (4 MiB). */
export const WRITE_BEHIND_BYTES = 4 * 1024 * 1024
/** A write starts once this much is queued (or on flush). */
export const WRITE_BATCH_BYTES = 1024 * 1024
/** Pieces per writev (Linux IOV_MAX is 1024). */
const MAX_IOV = 256

export class WriteBehind {
  private queue: Uint8Array[] = []
  private queued = 0
  private writing: Promise<void> | undefined
  private failure: unknown
  private readonly waiters: Array<() => void> = []
  private flushing = false

  /** `fh` may still be opening: pieces queue meanwhile, and a failed open fails the writes. */
  constructor (private readonly fh: FileHandle | Promise<FileHandle>, private readonly maxQueued = WRITE_BEHIND_BYTES, private readonly minBatch = WRITE_BATCH_BYTES) {}

  /** Queue a piece (kept by reference: it must not change). Waits while the queue is full. */
  async push (piece: Uint8Array): Promise<void> {
    if (this.failure !== undefined) throw this.failure
    if (piece.length === 0) return
    this.queue.push(piece)
    this.queued += piece.length
    this.kick()
    while (this.queued > this.maxQueued && this.failure === undefined) {
      await new Promise<void>(resolve => { this.waiters.push(resolve) })
    }
    if (this.failure !== undefined) throw this.failure
  }

  /** Resolves once every queued byte is written; rejects with the first write error. */
  async flush (): Promise<void> {
    this.flushing = true
    for (;;) {
      if (this.failure !== undefined) throw this.failure
      if (this.writing !== undefined) await this.writing
      else if (this.queue.length > 0) this.kick()
      else return
    }
  }

  /** Let any write in flight finish (the file may be closed after this); never rejects. */
  async settle (): Promise<void> {
    while (this.writing !== undefined) await this.writing.catch(() => {})
  }

  private kick (): void {
    if (this.writing !== undefined || this.queue.length === 0 || this.failure !== undefined) return
    if (this.queued < Math.min(this.minBatch, this.maxQueued) && !this.flushing) return
    // A piece queued between the loop's last check and this settling starts a new loop.
    this.writing = this.loop().finally(() => { this.writing = undefined; this.kick() })
  }

  private async loop (): Promise<void> {
    try {
      const fh = await this.fh
      while (this.queue.length > 0 && (this.queued >= Math.min(this.minBatch, this.maxQueued) || this.flushing)) {
        const batch = this.queue.length <= MAX_IOV ? this.queue : this.queue.slice(0, MAX_IOV)
        this.queue = this.queue.length <= MAX_IOV ? [] : this.queue.slice(MAX_IOV)
        let bytes = 0
        for (const b of batch) bytes += b.length
        await writevAll(fh, batch, bytes)
        this.queued -= bytes
        this.wake()
      }
    } catch (err) {
      this.failure = err
      this.queue = []
      this.wake()
    }
  }

  private wake (): void {
    for (const w of this.waiters.splice(0)) w()
  }
}
