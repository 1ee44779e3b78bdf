// Background verification of every replica's checksums (HDFS's block scanner). Runs a
// full pass every `scanner.interval.ms`, paced to about half the disk's time: after
// each batch it sleeps (on the injected clock) as long as the batch took.
import { every, type Clock, type Timer } from '../common/clock.js'
import type { Logger } from '../common/log.js'
import type { BlockStore } from './block-store.js'

export interface ScanResult { scanned: number, corrupt: number }

export class Scanner {
  private readonly store: BlockStore
  private readonly clock: Clock
  private readonly intervalMs: number
  private readonly log: Logger
  private stopLoop: (() => void) | undefined
  private stopped = false
  private chain: Promise<unknown> = Promise.resolve()
  private sleeping: { timer: Timer, wake: () => void } | undefined

  constructor (o: { store: BlockStore, clock: Clock, intervalMs: number, log: Logger }) {
    this.store = o.store
    this.clock = o.clock
    this.intervalMs = o.intervalMs
    this.log = o.log
  }

  start (): void {
    if (this.stopLoop !== undefined || this.stopped) return
    this.stopLoop = every(this.clock, this.intervalMs, () => this.scan(true), err => { this.log.warn('scan failed', { err: err as Error }) })
  }

  stop (): void {
    this.stopped = true
    this.stopLoop?.()
    if (this.sleeping !== undefined) { this.clock.clearTimeout(this.sleeping.timer); this.sleeping.wake() }
  }

  /** A full pass now, unpaced (tests and admin use); waits for a running pass first. */
  scanNow (): Promise<ScanResult> { return this.scan(false) }

  private scan (paced: boolean): Promise<ScanResult> {
    const p = this.chain.then(() => this.pass(paced))
    this.chain = p.catch(() => {})
    return p
  }

  private async pass (paced: boolean): Promise<ScanResult> {
    const result: ScanResult = { scanned: 0, corrupt: 0 }
    let last = this.clock.now()
    const pace = paced
      ? async (): Promise<void> => {
        const took = this.clock.now() - last
        if (took >= 1) await this.sleep(took)
        last = this.clock.now()
      }
      : undefined
    for (const [id, gen] of this.store.report()) {
      if (paced && this.stopped) break
      const outcome = await this.store.verify(id, gen, pace === undefined ? undefined : { pace })
      if (outcome === 'gone') continue
      result.scanned++
      if (outcome === 'corrupt') result.corrupt++
    }
    if (result.corrupt > 0) this.log.warn('scan found corrupt replicas', { ...result })
    else this.log.debug('scan done', { ...result })
    return result
  }

  private sleep (ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve()
    return new Promise(resolve => {
      const wake = (): void => { this.sleeping = undefined; resolve() }
      this.sleeping = { timer: this.clock.setTimeout(wake, ms), wake }
    })
  }
}
