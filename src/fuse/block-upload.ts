// One new block on its way to the DataServers. The bytes come from an UploadSource (a
// spool file, or zeros for a hole) that may still be growing: a sequential writer
// appends to the spool and the upload follows behind it, streaming into storeBlock,
// so data reaches the DataServers while the file is still being written. The writer
// also hands its appended bytes to the upload directly (feed), so they go out from
// memory instead of being read back from the spool, which stays the copy a retry reads.
// The writer waits (backpressure) when the upload lags too far behind.
//
// Rules the owner (OpenFile) keeps: bytes below `claimed` are already on the wire, so a
// write or truncate there must abort() the upload; seal() once the block is complete.
import { Readable } from 'node:stream'
import { HissError } from '../common/errors.js'
import type { BlockRef } from '../common/protocol.js'
import type { WriteSession } from '../client/types.js'

export const DEFAULT_UPLOAD_CHUNK_BYTES = 256 * 1024

export interface UploadSource {
  /** Bytes currently in the block. */
  length (): number
  /** Fill dst[0, len) with bytes [pos, pos+len) of the block. */
  read (dst: Buffer, pos: number, len: number): Promise<void>
}

interface Fed { buf: Buffer, release: (() => void) | undefined }

export class BlockUpload {
  /** Bytes handed to the stream. */
  sent = 0
  /** Bytes handed to the stream or being read for it: writes below this must abort. */
  claimed = 0
  private sealedFlag: boolean
  private abortedFlag = false
  private settledFlag = false
  private failure: unknown
  private pumping = false
  private wake: (() => void) | undefined
  private readonly waiters = new Set<() => void>()
  /** Appended bytes handed over by the writer, contiguous from fedFrom, not yet sent. */
  private fed: Fed[] = []
  /** Fed buffers on the wire, in order: released once the socket has taken them. */
  private inFlight: Array<{ end: number, release: () => void }> = []
  private fedFrom = 0
  private fedEnd = 0
  private readonly stream: Readable
  readonly result: Promise<BlockRef>

  /** The bytes sent so far, kept while the block is small enough (see `retainUpTo`). */
  private retained: Buffer[] | undefined
  private readonly retainUpTo: number

  /**
   * `retainUpTo`: keep a copy of what is sent while the block holds at most this many
   * bytes, so a small block can go into the read cache once stored (takeRetained).
   */
  /**
   * `zeros`: the block is that many zero bytes (a sealed hole) and goes through
   * WriteSession.storeZeros when the session has it: nothing is streamed.
   */
  constructor (session: WriteSession, private readonly source: UploadSource, opts: { sealed: boolean, chunkBytes?: number, retainUpTo?: number, zeros?: number }) {
    this.retainUpTo = opts.retainUpTo ?? 0
    if (this.retainUpTo > 0) this.retained = []
    this.sealedFlag = opts.sealed
    const chunk = opts.chunkBytes ?? DEFAULT_UPLOAD_CHUNK_BYTES
    this.stream = new Readable({ highWaterMark: chunk, read: () => { void this.pump(chunk) } })
    // A destroyed stream reports its error through storeBlock's rejection.
    this.stream.on('error', () => {})
    let started: Promise<BlockRef>
    try {
      if (opts.zeros !== undefined && opts.sealed && session.storeZeros !== undefined) {
        // The whole block counts as on the wire: a write into it must abort this upload.
        this.sent = this.claimed = opts.zeros
        started = session.storeZeros(opts.zeros)
      } else {
        started = session.storeBlock(this.stream, opts.sealed ? source.length() : undefined, { onSent: n => { this.onSent(n) } })
      }
    } catch (err) {
      started = Promise.reject(err)
    }
    this.result = started.then(ref => {
      if (ref.length !== this.sent) throw HissError.EIO(`block ${ref.id} stored ${ref.length} bytes, sent ${this.sent}`)
      return ref
    })
    this.result.then(() => { this.settle() }, err => { this.failure = err; this.settle() })
  }

  get sealed (): boolean { return this.sealedFlag }
  get aborted (): boolean { return this.abortedFlag }
  get settled (): boolean { return this.settledFlag }
  get failed (): boolean { return this.failure !== undefined }

  /** Every byte of the stored block, if it was small enough to keep (once; then forgotten). */
  takeRetained (): Buffer | undefined {
    const r = this.retained
    this.retained = undefined
    if (r === undefined || !this.settledFlag || this.failure !== undefined) return undefined
    return r.length === 1 ? r[0] : Buffer.concat(r, this.sent)
  }

  /** The first `n` bytes of the stream are in the kernel's hands: their buffers are free. */
  private onSent (n: number): void {
    while (this.inFlight.length > 0 && this.inFlight[0]!.end <= n) this.inFlight.shift()!.release()
  }

  /** More bytes were appended to the source. */
  notify (): void {
    const w = this.wake
    this.wake = undefined
    w?.()
  }

  /**
   * The writer appended `buf` (owned: it must not change) at `pos` of the source. Kept
   * only while contiguous with what was fed before; the upload sends from it instead of
   * reading the source. The writer's waitLag bounds how much is held.
   * `release` (if given) is called once this upload no longer uses `buf`: dropped, or
   * sent and taken by the socket. It is never called when that cannot be known (the
   * upload failed or was aborted while the bytes were on the wire).
   */
  feed (pos: number, buf: Buffer, release?: () => void): void {
    if (this.abortedFlag || this.settledFlag || buf.length === 0) { release?.(); return }
    if (this.fed.length > 0 && pos !== this.fedEnd) this.forget()
    if (this.fed.length === 0) this.fedFrom = pos
    this.fed.push({ buf, release })
    this.fedEnd = pos + buf.length
  }

  /** Bytes fed so far may no longer match the source (it was overwritten): drop them. */
  forget (): void {
    const fed = this.fed
    this.fed = []
    this.fedFrom = this.fedEnd = 0
    for (const f of fed) f.release?.()
  }

  /** The next bytes to send from memory, if the writer fed them. */
  private takeFed (max: number): Buffer | undefined {
    // Drop what was already sent from the source.
    while (this.fed.length > 0 && this.fedFrom + this.fed[0]!.buf.length <= this.sent) {
      const f = this.fed.shift()!
      this.fedFrom += f.buf.length
      f.release?.()
    }
    const head = this.fed[0]
    if (head === undefined || this.fedFrom > this.sent) return undefined
    const skip = this.sent - this.fedFrom
    const n = Math.min(max, head.buf.length - skip)
    const out = head.buf.subarray(skip, skip + n)
    if (skip + n === head.buf.length) {
      this.fed.shift()
      this.fedFrom += head.buf.length
      // Kept for the read cache (as pump decides): never recycled. Else free once the socket has it.
      const retain = this.retained !== undefined && this.fedFrom <= this.retainUpTo
      if (head.release !== undefined && !retain) this.inFlight.push({ end: this.fedFrom, release: head.release })
    }
    return out
  }

  /** The block is complete: finish the stream once everything is sent. */
  seal (): void {
    this.sealedFlag = true
    this.notify()
  }

  abort (): void {
    if (this.abortedFlag) return
    this.abortedFlag = true
    this.forget()
    // Bytes on the wire of an abandoned request: leave their buffers to GC.
    this.inFlight = []
    this.stream.destroy(HissError.EIO('upload aborted: block rewritten'))
    this.notify()
    this.wakeWaiters()
  }

  /** Resolve once the upload lags the source by at most `maxLag` bytes (or has ended). */
  async waitLag (maxLag: number): Promise<void> {
    while (!this.settledFlag && !this.abortedFlag && this.source.length() - this.sent > maxLag) {
      await new Promise<void>(resolve => { this.waiters.add(resolve) })
    }
  }

  private settle (): void {
    this.settledFlag = true
    this.forget()
    // Stored: every byte reached the DataServer. Failed: the socket may still hold some.
    const inFlight = this.inFlight
    this.inFlight = []
    if (this.failure === undefined) for (const f of inFlight) f.release()
    this.notify()
    this.wakeWaiters()
  }

  private wakeWaiters (): void {
    const ws = [...this.waiters]
    this.waiters.clear()
    for (const w of ws) w()
  }

  private async pump (chunk: number): Promise<void> {
    if (this.pumping) return
    this.pumping = true
    try {
      for (;;) {
        if (this.abortedFlag || this.settledFlag) return
        const len = this.source.length()
        if (this.sent < len) {
          let buf = this.takeFed(len - this.sent)
          if (buf === undefined) {
            const n = Math.min(chunk, len - this.sent)
            buf = Buffer.allocUnsafe(n)
            this.claimed = this.sent + n
            await this.source.read(buf, this.sent, n)
            if (this.abortedFlag) return
          } else {
            this.claimed = this.sent + buf.length
          }
          this.sent += buf.length
          if (this.retained !== undefined) {
            if (this.sent <= this.retainUpTo) this.retained.push(buf)
            else this.retained = undefined
          }
          this.wakeWaiters()
          if (!this.stream.push(buf)) return
        } else if (this.sealedFlag) {
          this.stream.push(null)
          return
        } else {
          await new Promise<void>(resolve => { this.wake = resolve })
        }
      }
    } catch (err) {
      this.stream.destroy(err as Error)
    } finally {
      this.pumping = false
    }
  }
}

/** Zeros of a fixed length: a hole in a file becomes a stored block of zeros. */
export function zeroSource (length: number): UploadSource {
  return {
    length: () => length,
    read: async (dst, _pos, len) => { dst.fill(0, 0, len) },
  }
}
