// Reading one block with failover (HDFS's DFSInputStream, per block). Bytes stream from
// the first replica; when a replica fails - refused, error reply, stalled, or cut short
// (a DataServer cuts a response when a chunk fails its checksum) - the read resumes on
// the next replica at the first byte not yet passed on, so nothing is duplicated or
// lost. When every replica failed or the token was refused, the block's locations and
// token are fetched again from the NameServer, within cfg client.retry.ms.
import { Readable } from 'node:stream'
import { sleep, type Clock, type Timer } from '../common/clock.js'
import { HissError } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import { HEADER_TOKEN, type DataServerRef, type LocatedBlock } from '../common/protocol.js'
import { errorFromResponse, toHissError } from './http-errors.js'
import type { HttpClient } from './http.js'
import type { InodeTarget, NameServerClient } from './nameserver-client.js'
import type { ReplicaHealth } from './replica-health.js'

const MAX_ERROR_BODY = 64 * 1024
/**
 * Bytes a block stream buffers before it pauses its source (1 MiB). With Node's 16 KiB
 * default every 64 KiB network chunk paused and resumed the socket.
 */
export const READ_STREAM_HWM = 1024 * 1024
const FIRST_BACKOFF_MS = 100
const MAX_BACKOFF_MS = 2000

export interface BlockReaderDeps {
  http: HttpClient
  ns: NameServerClient
  clock: Clock
  log: Logger
  retryMs: number
  /** The client's memory of failing DataServers: tried last, reported to. */
  health?: ReplicaHealth
}

export interface BlockReadOptions {
  /** Where to refresh the block's locations: the inode (preferred) or the path. */
  ino?: number
  path?: string
}

type Attempt =
  | { ok: true }
  | { ok: false, err: HissError, cutShort: boolean, stalledByReader: boolean }
  | { ok: false, aborted: true }

export class BlockReadStream extends Readable {
  private delivered = 0
  private started = false
  private source: Readable | undefined
  private watchdog: Timer | undefined
  /** The stream the watchdog guards, and when it last delivered (clock.now()). */
  private watched: Readable | undefined
  private lastByteAt = 0
  private pausedAt: number | undefined
  /** The consumer held the current attempt paused for client.timeout.ms or more. */
  private stalledByReader = false
  private abortAttempt: (() => void) | undefined

  constructor (
    private readonly d: BlockReaderDeps,
    private block: LocatedBlock,
    private readonly offset: number,
    private readonly length: number,
    private readonly opts: BlockReadOptions = {},
  ) {
    super({ highWaterMark: READ_STREAM_HWM })
  }

  override _read (): void {
    if (!this.started) {
      this.started = true
      this.run().then(() => { if (!this.destroyed) this.push(null) }, err => { this.destroy(toHissError(err)) })
      return
    }
    const src = this.source
    if (src !== undefined && src.isPaused()) {
      this.noteResumed()
      src.resume()
      this.armWatchdog(src)
    }
  }

  override _destroy (err: Error | null, cb: (err?: Error | null) => void): void {
    this.clearWatchdog()
    this.abortAttempt?.()
    cb(err)
  }

  private get refreshTarget (): InodeTarget | undefined {
    if (this.opts.ino !== undefined && this.opts.ino > 0) return { ino: this.opts.ino }
    if (this.opts.path !== undefined) return { path: this.opts.path }
    return undefined
  }

  private async run (): Promise<void> {
    const b = this.block
    if (!Number.isSafeInteger(this.offset) || !Number.isSafeInteger(this.length) || this.offset < 0 || this.length < 0 || this.offset + this.length > b.length) {
      throw HissError.EINVAL(`range ${this.offset}+${this.length} outside block ${b.id} of ${b.length} bytes`)
    }
    if (this.length === 0) return
    let deadline: number | undefined
    let backoff = FIRST_BACKOFF_MS
    let lastErr: HissError | undefined
    for (let round = 0; ; round++) {
      const health = this.d.health
      for (const loc of health?.order(this.block.locations) ?? this.block.locations) {
        const r = await this.attempt(loc)
        if (r.ok) { health?.succeeded(loc.id); return }
        if ('aborted' in r) return
        lastErr = r.err
        // Its own fault, not the reader's (a paused consumer) nor the token's.
        if (!r.stalledByReader && r.err.code !== 'BAD_TOKEN') health?.failed(loc.id)
        this.d.log.debug('replica read failed', { block: this.block.id, dataserver: loc.id, code: r.err.code, delivered: this.delivered })
        if (r.err.code === 'CHECKSUM_MISMATCH' || (r.cutShort && !r.stalledByReader)) this.reportIfAlive(loc, r.err.code === 'CHECKSUM_MISMATCH')
        // Every location takes the same token: refresh it before trying the others.
        if (r.err.code === 'BAD_TOKEN') break
      }
      const target = this.refreshTarget
      if (target === undefined) break
      deadline ??= this.d.clock.now() + this.d.retryMs
      const remaining = deadline - this.d.clock.now()
      if (remaining <= 0) break
      // The first refresh is immediate (a new token or a replica elsewhere may already
      // exist); later ones wait for DataServers to come back or re-replication.
      if (round > 0) {
        await sleep(this.d.clock, Math.min(backoff, remaining))
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS)
      }
      if (this.destroyed) return
      const plan = await this.d.ns.blocks(target, { offset: this.block.offset, length: this.block.length })
      const fresh = plan.blocks.find(x => x.id === this.block.id && x.gen === this.block.gen)
      if (fresh === undefined) throw HissError.from('BLOCK_LOST', `block ${this.block.id} is no longer part of the file`)
      this.block = fresh
    }
    throw HissError.from('BLOCK_LOST', `block ${this.block.id}${lastErr === undefined ? ': no locations' : `: last error ${lastErr.code}: ${lastErr.message}`}`)
  }

  /** Stream the missing bytes from one replica; resolves (never rejects) with the outcome. */
  private attempt (loc: DataServerRef): Promise<Attempt> {
    return new Promise(resolve => {
      const from = this.offset + this.delivered
      const want = this.length - this.delivered
      const url = this.d.http.url(loc.address, `/v1/blocks/${this.block.id}`, { gen: this.block.gen, offset: from, length: want })
      const req = this.d.http.got.stream(url, { headers: { [HEADER_TOKEN]: this.block.token }, timeout: this.d.http.streamTimeouts() })
      let settled = false
      let streaming = false
      this.stalledByReader = false
      this.pausedAt = undefined
      const stalled = (): boolean => {
        this.noteResumed()
        return this.stalledByReader
      }
      const finish = (r: Attempt): void => {
        if (settled) return
        settled = true
        this.clearWatchdog()
        this.source = undefined
        this.abortAttempt = undefined
        req.removeAllListeners('data')
        req.on('error', () => {})
        if (!r.ok || !req.readableEnded) req.destroy()
        resolve(r)
      }
      this.abortAttempt = () => { finish({ ok: false, aborted: true }) }
      req.on('error', err => {
        finish({ ok: false, err: toHissError(err, loc.address), cutShort: streaming, stalledByReader: stalled() })
      })
      req.on('response', (res: { statusCode: number }) => {
        if (res.statusCode < 200 || res.statusCode >= 300) {
          const parts: Buffer[] = []
          let size = 0
          req.on('data', (c: Buffer) => { if (size < MAX_ERROR_BODY) { parts.push(c); size += c.length } })
          req.on('end', () => { finish({ ok: false, err: errorFromResponse(res.statusCode, Buffer.concat(parts)), cutShort: false, stalledByReader: false }) })
          return
        }
        streaming = true
        this.source = req
        this.armWatchdog(req)
        req.on('data', (c: Buffer) => {
          if (settled) return
          const left = this.length - this.delivered
          const chunk = c.length > left ? c.subarray(0, left) : c
          if (chunk.length === 0) return
          this.delivered += chunk.length
          this.armWatchdog(req)
          if (!this.push(chunk) && this.delivered < this.length && !this.destroyed) {
            req.pause()
            this.clearWatchdog()
            this.pausedAt = this.d.clock.now()
          }
        })
        req.on('end', () => {
          if (this.delivered >= this.length) finish({ ok: true })
          else finish({ ok: false, err: HissError.from('EIO', `replica on ${loc.address} ended ${this.length - this.delivered} bytes short`), cutShort: true, stalledByReader: stalled() })
        })
      })
    })
  }

  private noteResumed (): void {
    // A reader that held the stream paused for long may have let the DataServer's idle
    // timeout cut it: such a cut says nothing about the replica's health.
    if (this.pausedAt !== undefined && this.d.clock.now() - this.pausedAt >= this.d.http.timeoutMs) this.stalledByReader = true
    this.pausedAt = undefined
  }

  /**
   * No byte for client.timeout.ms while we are waiting for one: fail over. Called for
   * every chunk, so it only notes the time: the one timer, when it fires, re-arms itself
   * for what is left of the timeout after the latest byte (a timer per chunk cost a
   * clearTimeout + setTimeout per 64 KiB).
   */
  private armWatchdog (src: Readable): void {
    this.lastByteAt = this.d.clock.now()
    if (this.watchdog !== undefined && this.watched === src) return
    this.clearWatchdog()
    this.watched = src
    const check = (): void => {
      const idle = this.d.clock.now() - this.lastByteAt
      if (idle >= this.d.http.timeoutMs) {
        this.watchdog = undefined
        src.destroy(HissError.ETIMEDOUT('replica stopped sending'))
      } else {
        this.watchdog = this.d.clock.setTimeout(check, this.d.http.timeoutMs - idle)
      }
    }
    this.watchdog = this.d.clock.setTimeout(check, this.d.http.timeoutMs)
  }

  private clearWatchdog (): void {
    this.d.clock.clearTimeout(this.watchdog)
    this.watchdog = undefined
    this.watched = undefined
  }

  /**
   * Tell the NameServer about a corrupt replica. A cut-short stream is reported only if
   * the DataServer still answers a ping: a server that went down also cuts streams, and
   * its replicas are not corrupt.
   */
  private reportIfAlive (loc: DataServerRef, certain: boolean): void {
    const report = async (): Promise<void> => {
      if (!certain) {
        try {
          await this.d.http.json('GET', this.d.http.url(loc.address, '/v1/ping'))
        } catch {
          return
        }
      }
      await this.d.ns.badBlock({ block: { id: this.block.id, gen: this.block.gen }, dataserver: loc.id })
      this.d.log.info('reported bad replica', { block: this.block.id, dataserver: loc.id })
    }
    report().catch(err => { this.d.log.warn('bad block report failed', { err: err as Error, block: this.block.id }) })
  }
}
