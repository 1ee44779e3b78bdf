// An in-process cluster on loopback for integration tests: one NameServer and N
// DataServers on 127.0.0.1 port 0, each in its own temp dir, short intervals, and a
// client. Everything is closed in reverse order by t.teardown, also on failure.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig, type HissConfig, type HissConfigInput } from '../../src/common/config.js'
import { createLogger, type Logger } from '../../src/common/log.js'
import { NameServer } from '../../src/nameserver/nameserver.js'
import { DataServer } from '../../src/dataserver/dataserver.js'
import { createClient, type CreateClientOptions, type HissClient } from '../../src/client/index.js'

export interface TeardownTarget { teardown (fn: () => unknown): void }

export interface ClusterOptions {
  dataServers?: number
  replication?: number
  blockSize?: number
  /** Extra config for every part (wins over the test defaults). */
  config?: Partial<HissConfigInput>
  client?: CreateClientOptions
  /** How long to wait for every DataServer to register. */
  readyTimeoutMs?: number
}

export interface Cluster {
  nameServer: NameServer
  nameServerAddress: string
  /** undefined while stopped. */
  dataServers: Array<DataServer | undefined>
  dataServerDirs: string[]
  /** The config a client uses (NameServer address filled in). */
  cfg: HissConfig
  client: HissClient
  /** Another client (closed by teardown). */
  newClient (opts?: CreateClientOptions): HissClient
  /** Index of the DataServer with this id, -1 if none. */
  indexOf (id: string): number
  /** Stop DataServer i; `unregister: false` acts like a crash. */
  stopDataServer (i: number, opts?: { unregister?: boolean }): Promise<void>
  /** Start DataServer i again on its old directory (new port). */
  restartDataServer (i: number): Promise<DataServer>
  /** Poll until `n` DataServers are live in the NameServer's report. */
  waitForLive (n: number, timeoutMs?: number): Promise<void>
  close (): Promise<void>
}

/** 32 characters, as a real deployment would use. */
export const TEST_SECRET = 'test-secret-0123456789abcdefghij'

function testDefaults (n: number, o: ClusterOptions): Partial<HissConfigInput> {
  return {
    'cluster.secret': TEST_SECRET,
    'log.level': 'error',
    'nameserver.sync': 'normal',
    'block.size': o.blockSize ?? 1024 * 1024,
    'replication': o.replication ?? Math.min(3, n),
    'replication.min': 1,
    'heartbeat.interval.ms': 200,
    'heartbeat.dead.ms': 2000,
    'replication.interval.ms': 200,
    'safemode.extension.ms': 0,
    'client.timeout.ms': 5000,
    'client.retry.ms': 10000,
    'lease.timeout.ms': 10000,
  }
}

async function poll (what: string, timeoutMs: number, fn: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      if (await fn()) return
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last === undefined ? '' : `: ${(last as Error).message}`}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

export async function startCluster (t: TeardownTarget, o: ClusterOptions = {}): Promise<Cluster> {
  const n = o.dataServers ?? 3
  const base = { ...testDefaults(n, o), ...o.config }
  const log: Logger = createLogger('test-cluster', (base['log.level'] ?? 'error'))
  const dirs: string[] = []
  const clients: HissClient[] = []
  const dataServers: Array<DataServer | undefined> = []
  let nameServer: NameServer | undefined
  let closed = false

  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    // Reverse order of start: clients, DataServers (last first), NameServer, dirs.
    for (const c of clients.reverse()) await c.close().catch(() => {})
    for (let i = dataServers.length - 1; i >= 0; i--) await dataServers[i]?.close({ unregister: false }).catch(() => {})
    await nameServer?.close().catch(() => {})
    for (const d of dirs) await rm(d, { recursive: true, force: true }).catch(() => {})
  }
  t.teardown(close)

  const tmp = async (name: string): Promise<string> => {
    const d = await mkdtemp(join(tmpdir(), `hiss-${name}-`))
    dirs.push(d)
    return d
  }

  const nsDir = await tmp('ns')
  nameServer = new NameServer(parseConfig({ ...base, 'nameserver.address': '127.0.0.1:0', 'nameserver.root.dir': nsDir }), { log: log.child('nameserver') })
  const started: unknown = await nameServer.start()
  const nsAddress = typeof started === 'string' ? started : (started as { address: string }).address

  const cfg = parseConfig({ ...base, 'nameserver.address': nsAddress })
  const dsDirs: string[] = []
  const dsConfig = (i: number): HissConfig => parseConfig({ ...base, 'nameserver.address': nsAddress, 'dataserver.address': '127.0.0.1:0', 'dataserver.root.dir': dsDirs[i] })
  for (let i = 0; i < n; i++) {
    dsDirs.push(await tmp(`ds${i}`))
    const ds = new DataServer(dsConfig(i), { log: log.child(`dataserver-${i}`) })
    dataServers.push(ds)
    await ds.start()
  }

  const newClient = (opts?: CreateClientOptions): HissClient => {
    const c = createClient(cfg, { log: log.child('client'), ...o.client, ...opts })
    clients.push(c)
    return c
  }
  const client = newClient()

  const waitForLive = (want: number, timeoutMs = o.readyTimeoutMs ?? 15000): Promise<void> =>
    poll(`${want} live DataServers`, timeoutMs, async () => {
      const r = await client.report()
      return r.dataservers.filter(d => d.state === 'live').length === want && !r.safeMode
    })
  await waitForLive(n)

  return {
    nameServer,
    nameServerAddress: nsAddress,
    dataServers,
    dataServerDirs: dsDirs,
    cfg,
    client,
    newClient,
    indexOf: id => dataServers.findIndex(d => d?.id === id),
    stopDataServer: async (i, opts = {}) => {
      const ds = dataServers[i]
      dataServers[i] = undefined
      await ds?.close(opts)
    },
    restartDataServer: async i => {
      if (dataServers[i] !== undefined) throw new Error(`dataserver ${i} is running`)
      const ds = new DataServer(dsConfig(i), { log: log.child(`dataserver-${i}`) })
      dataServers[i] = ds
      await ds.start()
      return ds
    },
    waitForLive,
    close,
  }
}
