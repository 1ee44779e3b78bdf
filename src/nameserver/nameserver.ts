// The NameServer process role: opens the namespace, serves the HTTP API and owns the
// periodic loops (liveness, leases, replication, safe mode). start() and close() are
// idempotent.
import type { ServerResponse } from 'node:http'
import type { Express, RequestHandler, Response } from 'express'
import { SystemClock, type Clock } from '../common/clock.js'
import { splitHostPort, type HissConfig } from '../common/config.js'
import { HissError, fromNodeError } from '../common/errors.js'
import { createJsonApp, errorMiddleware, fastJsonDispatch, listen, notFoundHandler, sendJson, type JsonReplier, type RunningServer } from '../common/http-server.js'
import { createLogger, type Logger } from '../common/log.js'
import { NameServerCore } from './core.js'
import { adminRouter } from './routes-admin.js'
import { dsRouter } from './routes-ds.js'
import { NS_MOUNT, nsRouter, nsRoutes } from './routes-ns.js'

/**
 * The NameServer's HTTP handlers: `front`, the fast dispatch of the namespace route table,
 * run by listen() before `app` (so the common requests skip Express's layers), and `app`,
 * every route (the same table through its Router, for what the front passes on).
 */
export function createNameServerHandlers (core: NameServerCore, log: Logger): { app: Express, front: RequestHandler } {
  const app = createJsonApp()
  const store = core.store
  // Group commit: a reply (success or error) made while namespace changes are not yet
  // on disk goes out only once they are, so no mutation is acknowledged before it is
  // durable and no reply shows state that a crash could still take back. Installed once
  // on this app's response prototype (res.json of every route and of the error
  // middleware) and in the fast dispatch's replier: no per-request closures.
  const expressJson = app.response.json
  const holdUntilDurable = (res: ServerResponse, send: () => void): void => {
    const pending = store.afterDurable(err => {
      // Never throw from here: a reply that went out some other way in the meantime
      // wins, and a failure to answer ends the connection.
      try {
        if (res.headersSent) return
        if (err !== undefined) sendJson(res, err.http, err.toJSON())
        else send()
      } catch {
        res.destroy()
      }
    })
    if (!pending) send()
  }
  app.response.json = function json (this: Response, body: unknown): Response {
    holdUntilDurable(this, () => { expressJson.call(this, body) })
    return this
  }
  const reply: JsonReplier = (res, body) => {
    holdUntilDurable(res, () => { sendJson(res, 200, body) })
  }
  const routes = nsRoutes(core)
  const front = fastJsonDispatch(NS_MOUNT, routes, reply)
  app.get('/v1/ping', (_req, res) => { res.json(core.ping()) })
  app.use(NS_MOUNT, nsRouter(core, routes))
  app.use('/v1/ds', dsRouter(core))
  app.use('/v1/admin', adminRouter(core))
  app.use(notFoundHandler)
  app.use(errorMiddleware(log))
  return { app, front }
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
      const { app, front } = createNameServerHandlers(core, this.log)
      this.server = await listen(app, {
        front,
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
