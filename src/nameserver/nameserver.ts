// The NameServer process role: opens the namespace, serves the HTTP API and owns the
// periodic loops (liveness, leases, replication, safe mode). start() and close() are
// idempotent.
import type { Express } from 'express'
import { SystemClock, type Clock } from '../common/clock.js'
import { splitHostPort, type HissConfig } from '../common/config.js'
import { HissError, fromNodeError } from '../common/errors.js'
import { createJsonApp, errorMiddleware, listen, notFoundHandler, type RunningServer } from '../common/http-server.js'
import { createLogger, type Logger } from '../common/log.js'
import { NameServerCore } from './core.js'
import { adminRouter } from './routes-admin.js'
import { dsRouter } from './routes-ds.js'
import { nsRouter } from './routes-ns.js'

export function createNameServerApp (core: NameServerCore, log: Logger): Express {
  const app = createJsonApp()
  // Group commit: a reply (success or error) made while a namespace batch is open goes
  // out only once that batch is on disk, so no mutation is acknowledged before it is
  // durable and no reply shows state that a crash could still take back.
  app.use((_req, res, next) => {
    const send = res.json.bind(res)
    res.json = (body: unknown) => {
      const durable = core.store.whenDurable()
      if (durable === undefined) return send(body)
      // Never throw from here (it would be an unhandled rejection): a reply that went
      // out some other way in the meantime wins.
      durable.then(() => {
        if (!res.headersSent) send(body)
      }, (err: unknown) => {
        if (res.headersSent) return
        const he = err as HissError
        res.status(he.http ?? 500)
        send(typeof he.toJSON === 'function' ? he.toJSON() : { code: 'INTERNAL' })
      }).catch(() => { res.destroy() })
      return res
    }
    next()
  })
  app.get('/v1/ping', (_req, res) => { res.json(core.ping()) })
  app.use('/v1/ns', nsRouter(core))
  app.use('/v1/ds', dsRouter(core))
  app.use('/v1/admin', adminRouter(core))
  app.use(notFoundHandler)
  app.use(errorMiddleware(log))
  return app
}

export class NameServer {
  private readonly clock: Clock
  private readonly log: Logger
  private core: NameServerCore | undefined
  private server: RunningServer | undefined
  private starting: Promise<string> | undefined
  private closing: Promise<void> | undefined
  private addr = ''

  constructor (private readonly cfg: HissConfig, deps: { clock?: Clock, log?: Logger } = {}) {
    this.clock = deps.clock ?? new SystemClock()
    this.log = deps.log ?? createLogger('nameserver', cfg['log.level'])
  }

  /** host:port actually bound (after start). */
  get address (): string { return this.addr }

  /** The state behind the API (tests and in-process tools). */
  get state (): NameServerCore {
    if (this.core === undefined) throw new HissError('EAGAIN', 'nameserver not started')
    return this.core
  }

  start (): Promise<string> {
    if (this.closing !== undefined) return Promise.reject(new HissError('EINVAL', 'nameserver is closed'))
    this.starting ??= this.doStart()
    return this.starting
  }

  private async doStart (): Promise<string> {
    const core = new NameServerCore(this.cfg, { clock: this.clock, log: this.log })
    this.core = core
    const { host, port } = splitHostPort(this.cfg['nameserver.address'])
    try {
      this.server = await listen(createNameServerApp(core, this.log), {
        host,
        port,
        tls: { cert: this.cfg['tls.cert'], key: this.cfg['tls.key'] },
        requestTimeoutMs: 60000,
      })
    } catch (err) {
      core.close()
      this.core = undefined
      throw fromNodeError(err, `listening on ${this.cfg['nameserver.address']}`)
    }
    core.startTimers()
    this.addr = this.server.address
    this.log.info('nameserver started', { address: this.addr, safeMode: core.safeMode.active, blocks: core.blocks.expected.size })
    return this.addr
  }

  close (): Promise<void> {
    this.closing ??= this.doClose()
    return this.closing
  }

  private async doClose (): Promise<void> {
    if (this.starting !== undefined) await this.starting.catch(() => {})
    this.core?.stopTimers()
    await this.server?.close()
    this.core?.close()
    this.log.info('nameserver stopped', { address: this.addr })
  }
}
