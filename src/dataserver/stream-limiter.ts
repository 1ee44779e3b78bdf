// Bounds the block streams (reads + writes) served at once; beyond the bound a request
// gets EAGAIN (503) at once instead of queueing without limit. The count is also the
// load figure reported to the NameServer for placement.
export const DEFAULT_MAX_STREAMS = 64

export class StreamLimiter {
  private n = 0
  constructor (readonly max: number = DEFAULT_MAX_STREAMS) {}

  get active (): number { return this.n }

  tryAcquire (): boolean {
    if (this.n >= this.max) return false
    this.n++
    return true
  }

  release (): void { if (this.n > 0) this.n-- }
}
