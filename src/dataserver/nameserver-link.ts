// The DataServer's side of the NameServer conversation: register (retried with
// backoff until it works), a full block report, then heartbeats carrying the storage
// report; commands in heartbeat replies go to the command runner. Reports that change
// the NameServer's view of our replicas (register, full, incremental) go through one
// serial channel, and a full report's snapshot is taken when its turn comes, so a
// report can never overtake (and undo) a newer one.
import { signClusterAuth } from '../common/auth.js'
import { every, type Clock, type Timer } from '../common/clock.js'
import { isHissError } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import {
  HEADER_CLUSTER_AUTH,
  type BlockReportRequest, type DataServerCommand, type HeartbeatReply, type HeartbeatRequest,
  type IncrementalRequest, type RegisterRequest, type ReplicaTuple, type StorageReport,
} from '../common/protocol.js'
import { callJson } from './http-json.js'
import type { Transport } from './transport.js'

export interface NameServerLinkOptions {
  id: string
  /** Our advertised host:port (known only once listening). */
  address: () => string
  nameserver: string
  secret: string
  clock: Clock
  transport: Transport
  heartbeatMs: number
  blockReportMs: number
  timeoutMs: number
  storage: () => Promise<StorageReport>
  replicas: () => ReplicaTuple[]
  blockCount: () => number
  onCommands: (cmds: DataServerCommand[]) => void
  log: Logger
}

type LinkState = 'unregistered' | 'needs-report' | 'ready'

const FIRST_BACKOFF_MS = 100

export class NameServerLink {
  private readonly o: NameServerLinkOptions
  private state: LinkState = 'unregistered'
  private closed = false
  private started = false
  private timer: Timer | undefined
  private stopReports: (() => void) | undefined
  private backoff = FIRST_BACKOFF_MS
  private channel: Promise<unknown> = Promise.resolve()
  private flushing = false
  /** After a failed flush, retries wait for the next heartbeat. */
  private lastFlushOk = true
  private pendingReceived: ReplicaTuple[] = []
  private pendingDeleted: Array<[number, number]> = []
  private pendingCorrupt: Array<[number, number]> = []

  constructor (o: NameServerLinkOptions) { this.o = o }

  get registered (): boolean { return this.state === 'ready' }

  /** Start registering in the background; never throws, never blocks. */
  start (): void {
    if (this.started || this.closed) return
    this.started = true
    void this.run()
    this.stopReports = every(this.o.clock, this.o.blockReportMs, () => this.requestFullReport(), err => { this.logFailure('periodic block report failed', err) })
  }

  /** Stop all timers; on a clean shutdown tell the NameServer we are leaving. */
  async stop (opts: { unregister: boolean }): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.o.clock.clearTimeout(this.timer)
    this.stopReports?.()
    if (opts.unregister && this.state !== 'unregistered') {
      try {
        await this.post('/v1/ds/unregister', { id: this.o.id }, Math.min(this.o.timeoutMs, 5000))
      } catch (err) {
        this.logFailure('unregister failed', err)
      }
    }
  }

  // ---------------------------------------------------------------------------
  // Reports

  /**
   * Tell the NameServer about a new replica. Never blocks and never throws: the write
   * is acknowledged without waiting for this (a commit waits for the reports itself, see
   * WriteService.commit), so the report is queued and sent at once when no incremental
   * report is in flight; reports arriving meanwhile go out together in the next one.
   * A failed send is retried with the next heartbeat (and a re-registration's full
   * report covers it anyway).
   */
  reportReceived (t: ReplicaTuple): void {
    // Unregistered: the full report that follows registration is taken later, so it
    // includes this replica. Registered but not yet reported: the full report may
    // already hold an older snapshot, so this goes through the channel after it.
    if (this.state === 'unregistered') return
    this.pendingReceived.push(t)
    this.kickFlush()
  }

  reportDeleted (id: number, gen: number): void {
    this.pendingDeleted.push([id, gen])
    this.kickFlush()
  }

  reportCorrupt (id: number, gen: number): void {
    this.pendingCorrupt.push([id, gen])
    this.kickFlush()
  }

  /** Send a full block report as soon as the channel allows (command `report`). */
  requestFullReport (): Promise<void> {
    if (this.state !== 'ready') return Promise.resolve()
    return this.serial(() => this.fullReport()).catch(err => { this.logFailure('block report failed', err) })
  }

  private get pendingCount (): number { return this.pendingReceived.length + this.pendingDeleted.length + this.pendingCorrupt.length }

  private kickFlush (): void {
    if (this.state === 'unregistered' || this.flushing || this.closed) return
    this.flushing = true
    this.serial(() => this.flush())
      .catch(err => { this.logFailure('incremental report failed, will retry', err) })
      .finally(() => {
        this.flushing = false
        // More may have been queued while we were sending; after a failure the next
        // heartbeat retries instead (no hot loop against a dead NameServer).
        if (this.lastFlushOk && this.pendingCount > 0) this.kickFlush()
      })
  }

  private async flush (): Promise<void> {
    if (this.state === 'unregistered') return
    const received = this.pendingReceived
    const deleted = this.pendingDeleted
    const corrupt = this.pendingCorrupt
    if (received.length + deleted.length + corrupt.length === 0) return
    this.pendingReceived = []
    this.pendingDeleted = []
    this.pendingCorrupt = []
    const body: IncrementalRequest = { id: this.o.id }
    if (received.length > 0) body.received = received
    if (deleted.length > 0) body.deleted = deleted
    if (corrupt.length > 0) body.corrupt = corrupt
    try {
      await this.post('/v1/ds/incremental', body)
      this.lastFlushOk = true
    } catch (err) {
      this.lastFlushOk = false
      this.pendingReceived.unshift(...received)
      this.pendingDeleted.unshift(...deleted)
      this.pendingCorrupt.unshift(...corrupt)
      throw err
    }
  }

  private async fullReport (): Promise<void> {
    // Taken now, at our turn in the channel: includes every replica reported before.
    const blocks = this.o.replicas()
    const queued = [this.pendingReceived.length, this.pendingDeleted.length] as const
    await this.post('/v1/ds/blockreport', { id: this.o.id, blocks } satisfies BlockReportRequest)
    // Deltas queued before the snapshot are in it; later ones must still be sent.
    // Corrupt replicas are never listed in a full report, so their reports stay queued.
    this.pendingReceived.splice(0, queued[0])
    this.pendingDeleted.splice(0, queued[1])
    if (this.pendingCorrupt.length > 0) this.kickFlush()
  }

  // ---------------------------------------------------------------------------
  // The register / heartbeat loop (timers on the injected clock)

  private async run (): Promise<void> {
    while (!this.closed) {
      const wait = await this.step()
      if (this.closed) return
      if (wait > 0) {
        this.timer = this.o.clock.setTimeout(() => { void this.run() }, wait)
        return
      }
    }
  }

  /** One step of the state machine; returns how long to wait before the next. */
  private async step (): Promise<number> {
    try {
      if (this.state === 'unregistered') {
        await this.serial(async () => {
          const storage = await this.o.storage()
          await this.post('/v1/ds/register', { id: this.o.id, address: this.o.address(), ...storage } satisfies RegisterRequest)
          this.state = 'needs-report'
          this.o.log.info('registered with the nameserver', { nameserver: this.o.nameserver })
        })
      }
      if (this.state === 'needs-report') {
        await this.serial(() => this.fullReport())
        this.state = 'ready'
        this.backoff = FIRST_BACKOFF_MS
        this.kickFlush()
        return this.o.heartbeatMs
      }
      await this.heartbeat()
      if (this.pendingCount > 0) {
        await this.serial(() => this.flush()).catch(err => { this.logFailure('incremental report failed, will retry', err) })
      }
      return this.state === 'ready' ? this.o.heartbeatMs : 0
    } catch (err) {
      this.logFailure(`nameserver call failed (state ${this.state})`, err)
      if (this.state === 'ready') return this.o.heartbeatMs
      const wait = this.backoff
      this.backoff = Math.min(this.backoff * 2, Math.max(this.o.heartbeatMs, FIRST_BACKOFF_MS))
      return wait
    }
  }

  private async heartbeat (): Promise<void> {
    const storage = await this.o.storage()
    const body: HeartbeatRequest = { id: this.o.id, address: this.o.address(), blocks: this.o.blockCount(), ...storage }
    const reply = await this.post<HeartbeatReply>('/v1/ds/heartbeat', body)
    if (reply?.reregister === true) {
      this.o.log.info('nameserver asked us to register again')
      this.state = 'unregistered'
      return
    }
    const cmds = Array.isArray(reply?.commands) ? reply.commands : []
    if (cmds.length > 0) this.o.onCommands(cmds)
  }

  // ---------------------------------------------------------------------------

  private serial<T> (fn: () => Promise<T>): Promise<T> {
    const p = this.channel.then(fn, fn)
    this.channel = p.catch(() => {})
    return p
  }

  private post<T = unknown> (path: string, body: unknown, timeoutMs = this.o.timeoutMs): Promise<T> {
    return callJson<T>(this.o.transport, this.o.nameserver, {
      method: 'POST',
      path,
      body,
      timeoutMs,
      headers: { [HEADER_CLUSTER_AUTH]: signClusterAuth(this.o.secret, this.o.id, this.o.clock.wallNow()) },
    })
  }

  private logFailure (msg: string, err: unknown): void {
    if (this.closed) return
    const fields = { nameserver: this.o.nameserver, code: isHissError(err) ? err.code : undefined, err: err as Error }
    // Expected while the NameServer is down: keep it at debug, it repeats every few seconds.
    if (isHissError(err) && (err.code === 'ECONNREFUSED' || err.code === 'ETIMEDOUT' || err.code === 'EIO')) this.o.log.debug(msg, fields)
    else this.o.log.warn(msg, fields)
  }
}
