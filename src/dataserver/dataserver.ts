// A DataServer's lifecycle: storage, the block API, the NameServer link, the
// replicator and the scanner, wired together. start() serves at once; registration
// runs (and retries) in the background, so blocks are served even while the
// NameServer is unreachable.
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { SystemClock, type Clock } from '../common/clock.js'
import { requireSecret, splitHostPort, type HissConfig } from '../common/config.js'
import { HissError, fromNodeError } from '../common/errors.js'
import { errorMiddleware, createJsonApp, listen, notFoundHandler, type RunningServer } from '../common/http-server.js'
import { createLogger, type Logger } from '../common/log.js'
import type { StorageReport } from '../common/protocol.js'
import { receiveBlock } from './block-receiver.js'
import { BlockStore } from './block-store.js'
import { CommandRunner } from './command-runner.js'
import { loadOrCreateId } from './ids.js'
import { NameServerLink } from './nameserver-link.js'
import { Replicator } from './replicator.js'
import { blockRoutes } from './routes-blocks.js'
import { Scanner, type ScanResult } from './scanner.js'
import { StorageLock } from './storage-lock.js'
import { StreamLimiter } from './stream-limiter.js'
import { Transport } from './transport.js'

export interface DataServerDeps {
  clock?: Clock
  log?: Logger
  /** Overrides the port of cfg['dataserver.address']. */
  port?: number
}

/** Slowloris defence for the block API; whole requests may be long (block streams). */
const HEADERS_TIMEOUT_MS = 10000
const IDLE_TIMEOUT_MS = 120000

export class DataServer {
  readonly id: string
  private readonly cfg: HissConfig
  private readonly clock: Clock
  private readonly log: Logger
  private readonly port: number | undefined
  private readonly secret: string
  private readonly tls: { cert: string, key: string, ca?: string | undefined } | undefined
  private readonly transport: Transport
  private readonly store: BlockStore
  private readonly lock: StorageLock
  private readonly limiter = new StreamLimiter()
  private readonly link: NameServerLink
  private readonly replicator: Replicator
  private readonly runner: CommandRunner
  private readonly scanner: Scanner
  private server: RunningServer | undefined
  private boundAddress: string | undefined
  private starting: Promise<string> | undefined
  private closing: Promise<void> | undefined

  constructor (cfg: HissConfig, deps: DataServerDeps = {}) {
    const root = cfg['dataserver.root.dir']
    if (root === undefined || root === '') throw new HissError('CONFIG', 'missing required config key "dataserver.root.dir"')
    this.cfg = cfg
    this.secret = requireSecret(cfg)
    this.clock = deps.clock ?? new SystemClock()
    this.log = deps.log ?? createLogger('dataserver', cfg['log.level'])
    this.port = deps.port
    this.tls = tlsSettings(cfg)
    let ca: Buffer | undefined
    if (cfg['tls.ca'] !== undefined) {
      try { ca = readFileSync(cfg['tls.ca']) } catch (err) { throw new HissError('CONFIG', `config key "tls.ca": cannot read ${cfg['tls.ca']}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`) }
    }
    this.id = loadOrCreateId(join(root, 'id'))
    this.lock = new StorageLock(root)
    this.transport = new Transport({ tls: this.tls !== undefined, ca })
    this.store = new BlockStore(root, {
      chunkBytes: cfg['checksum.chunk.bytes'],
      reservedBytes: cfg['dataserver.reserved.bytes'],
      log: this.log.child('store'),
      clock: this.clock,
    })
    const timeoutMs = cfg['client.timeout.ms']
    this.link = new NameServerLink({
      id: this.id,
      address: () => this.address,
      nameserver: cfg['nameserver.address'],
      secret: this.secret,
      clock: this.clock,
      transport: this.transport,
      heartbeatMs: cfg['heartbeat.interval.ms'],
      blockReportMs: cfg['blockreport.interval.ms'],
      timeoutMs,
      storage: () => this.storageReport(),
      replicas: () => this.store.report(),
      blockCount: () => this.store.index.count,
      onCommands: cmds => { this.runner.run(cmds) },
      log: this.log.child('link'),
    })
    this.store.setEvents({
      onCorrupt: (id, gen) => { this.link.reportCorrupt(id, gen) },
      onLost: (id, gen) => { this.link.reportDeleted(id, gen) },
    })
    this.replicator = new Replicator({
      store: this.store,
      transport: this.transport,
      maxStreams: cfg['replication.max.streams'],
      timeoutMs,
      log: this.log.child('replicator'),
    })
    this.runner = new CommandRunner({
      store: this.store,
      replicator: this.replicator,
      reportDeleted: (id, gen) => { this.link.reportDeleted(id, gen) },
      reportReceived: t => { this.link.reportReceived(t) },
      requestFullReport: () => this.link.requestFullReport(),
      log: this.log.child('commands'),
    })
    this.scanner = new Scanner({ store: this.store, clock: this.clock, intervalMs: cfg['scanner.interval.ms'], log: this.log.child('scanner') })
  }

  /** host:port others use to reach us (the bound one once started). */
  get address (): string {
    if (this.boundAddress !== undefined) return this.boundAddress
    const { host, port } = splitHostPort(this.cfg['dataserver.address'])
    return `${host.includes(':') ? `[${host}]` : host}:${this.port ?? port}`
  }

  /** True once registered and the first full block report went through. */
  get registered (): boolean { return this.link.registered }

  start (): Promise<string> {
    if (this.closing !== undefined) return Promise.reject(HissError.EINVAL('dataserver already closed'))
    this.starting ??= this.doStart()
    return this.starting
  }

  private async doStart (): Promise<string> {
    this.lock.acquire()
    try {
      return await this.serve()
    } catch (err) {
      await this.server?.close()
      await this.store.close()
      this.lock.release()
      throw fromNodeError(err, `starting dataserver on ${this.address}`)
    }
  }

  private async serve (): Promise<string> {
    await this.store.open()
    const app = createJsonApp()
    app.use(blockRoutes({
      selfId: this.id,
      secret: this.secret,
      clock: this.clock,
      store: this.store,
      limiter: this.limiter,
      receive: b => receiveBlock({
        selfId: this.id,
        store: this.store,
        transport: this.transport,
        reporter: this.link,
        downstreamTimeoutMs: this.cfg['client.timeout.ms'],
        log: this.log.child('pipeline'),
      }, b),
      patch: {
        selfId: this.id,
        secret: this.secret,
        clock: this.clock,
        store: this.store,
        limiter: this.limiter,
        transport: this.transport,
        reporter: this.link,
        downstreamTimeoutMs: this.cfg['client.timeout.ms'],
        log: this.log.child('patch'),
      },
      log: this.log.child('http'),
    }))
    app.use(notFoundHandler)
    app.use(errorMiddleware(this.log.child('http')))
    const { host, port } = splitHostPort(this.cfg['dataserver.address'])
    this.server = await listen(app, {
      host,
      port: this.port ?? port,
      tls: this.tls,
      headersTimeoutMs: HEADERS_TIMEOUT_MS,
      requestTimeoutMs: 0,
      idleTimeoutMs: IDLE_TIMEOUT_MS,
    })
    this.boundAddress = advertised(this.server.address, this.server.port)
    this.link.start()
    this.scanner.start()
    this.log.info('dataserver started', { id: this.id, address: this.boundAddress })
    return this.boundAddress
  }

  /** Idempotent. A clean shutdown (default) unregisters; `{unregister:false}` acts like a crash. */
  close (opts: { unregister?: boolean } = {}): Promise<void> {
    this.closing ??= this.doClose(opts.unregister ?? true)
    return this.closing
  }

  private async doClose (unregister: boolean): Promise<void> {
    await this.starting?.catch(() => {})
    this.scanner.stop()
    this.replicator.stop()
    await this.link.stop({ unregister })
    await this.server?.close()
    await this.store.close()
    this.transport.close()
    this.lock.release()
  }

  /** Verify every replica now (tests, admin). */
  scanNow (): Promise<ScanResult> { return this.scanner.scanNow() }

  async storageReport (): Promise<StorageReport> {
    const s = await this.store.storage()
    return { ...s, activeStreams: this.limiter.active + this.replicator.active }
  }
}

function tlsSettings (cfg: HissConfig): { cert: string, key: string, ca?: string | undefined } | undefined {
  const cert = cfg['tls.cert']
  const key = cfg['tls.key']
  if (cert === undefined && key === undefined) return undefined
  if (cert === undefined || key === undefined) throw new HissError('CONFIG', `config key "${cert === undefined ? 'tls.cert' : 'tls.key'}": required when the other TLS key is set`)
  return { cert, key, ca: cfg['tls.ca'] }
}

/** A wildcard bind is advertised under the host name; anything else as bound. */
function advertised (bound: string, port: number): string {
  const { host } = splitHostPort(bound)
  if (host === '0.0.0.0' || host === '::' || host === '') return `${hostname()}:${port}`
  return bound
}
