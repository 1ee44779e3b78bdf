// One renewal loop per client for all its open writes (HDFS's LeaseRenewer): a single
// POST /v1/ns/write/renew {clientId} renews every lease the client holds, every
// leaseTimeout/3, through the Clock. The loop runs only while some write is open.
import { every, type Clock } from '../common/clock.js'
import type { Logger } from '../common/log.js'

export class LeaseRenewer {
  /** writeId -> lease timeout the NameServer announced for it. */
  private readonly open = new Map<string, number>()
  private stopLoop: (() => void) | undefined
  private intervalMs = 0

  constructor (
    private readonly renew: () => Promise<unknown>,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  get openWrites (): number { return this.open.size }

  add (writeId: string, leaseTimeoutMs: number): void {
    this.open.set(writeId, leaseTimeoutMs)
    this.reschedule()
  }

  remove (writeId: string): void {
    if (this.open.delete(writeId)) this.reschedule()
  }

  close (): void {
    this.open.clear()
    this.reschedule()
  }

  private reschedule (): void {
    if (this.open.size === 0) {
      this.stopLoop?.()
      this.stopLoop = undefined
      this.intervalMs = 0
      return
    }
    const want = Math.max(1, Math.floor(Math.min(...this.open.values()) / 3))
    if (this.stopLoop !== undefined && want === this.intervalMs) return
    this.stopLoop?.()
    this.intervalMs = want
    this.stopLoop = every(this.clock, want, () => this.renew(), err => {
      // A missed renewal is not fatal yet: the lease outlives two more attempts.
      this.log.warn('lease renewal failed', { err: err as Error })
    })
  }
}
