// Pulls an input stream chunk by chunk, never more than asked for, so `put` can cut it
// at block boundaries without copying: a chunk that straddles a boundary is split and
// its tail kept for the next block. Only what the stream itself buffers is in memory.
import type { Readable } from 'node:stream'
import { HissError } from '../common/errors.js'

export class ChunkSource {
  private readonly it: AsyncIterator<unknown>
  private pending: Buffer | undefined
  private ended = false

  constructor (input: Readable) {
    this.it = input[Symbol.asyncIterator]()
  }

  /** Next bytes, at most `max`; undefined at the end of the input. */
  async next (max: number): Promise<Buffer | undefined> {
    if (!(await this.fill())) return undefined
    const buf = this.pending!
    if (buf.length <= max) {
      this.pending = undefined
      return buf
    }
    this.pending = buf.subarray(max)
    return buf.subarray(0, max)
  }

  /** True when at least one more byte is coming. */
  async hasMore (): Promise<boolean> { return this.fill() }

  /** Stop reading early (destroys the input stream). */
  async close (): Promise<void> {
    this.pending = undefined
    if (!this.ended) {
      this.ended = true
      await this.it.return?.()
    }
  }

  private async fill (): Promise<boolean> {
    while (this.pending === undefined || this.pending.length === 0) {
      if (this.ended) return false
      const r = await this.it.next()
      if (r.done === true) { this.ended = true; return false }
      const v = r.value
      if (Buffer.isBuffer(v)) this.pending = v
      else if (v instanceof Uint8Array) this.pending = Buffer.from(v.buffer, v.byteOffset, v.byteLength)
      else if (typeof v === 'string') this.pending = Buffer.from(v)
      else throw HissError.EINVAL('put expects a byte stream')
    }
    return true
  }
}
