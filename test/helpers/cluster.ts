// A real cluster of processes for integration tests: one `hissdfs nameserver` and N
// `hissdfs dataserver` children of `node dist/src/cli/main.js`, on 127.0.0.1 with
// ephemeral ports and temp directories, short timings, and a CLI runner. Ports are
// learned from each daemon's "listening on" line (never probed or guessed). Every
// child is killed by PID on teardown (and if the test process exits).
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import type { FsckReply, ReportReply } from '../../src/common/protocol.js'
import { waitUntil } from './wait-until.js'

/** Repository root (this file runs as dist/test/helpers/cluster.js). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))
export const CLI_MAIN = join(REPO_ROOT, 'dist/src/cli/main.js')
/** 32 characters; a test-only secret. */
export const TEST_SECRET = 'hissdfs-test-secret-0123456789ab'

/** Timings that make failure scenarios take seconds, not minutes. */
export const TEST_TIMINGS = {
  'heartbeat.interval.ms': 200,
  'heartbeat.dead.ms': 1500,
  'replication.interval.ms': 200,
  'blockreport.interval.ms': 2000,
  'scanner.interval.ms': 3600000,
  'lease.timeout.ms': 2000,
  'safemode.extension.ms': 0,
  'client.timeout.ms': 5000,
  'client.retry.ms': 8000,
} as const

// Generous: on a loaded 2-core machine a daemon can take several seconds to start.
const START_TIMEOUT_MS = 60000
const KILL_GRACE_MS = 3000
const LOG_TAIL_BYTES = 6000
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']

/** The slice of a tap Test the helper needs. */
export interface TestLike {
  teardown (fn: () => unknown): void
  comment (...args: unknown[]): void
  passing (): boolean
}

export interface ClusterOptions {
  dataServers?: number
  replication?: number
  blockSize?: number
  /** Merged into every config (NameServer, DataServers, client). */
  extra?: Record<string, unknown>
  nameServerExtra?: Record<string, unknown>
  dataServerExtra?: Record<string, unknown>
  clientExtra?: Record<string, unknown>
  /** Daemon log level (default $HISS_TEST_LOG_LEVEL or "info"). */
  logLevel?: string
  /** Called with each DataServer's directory before its first start (e.g. mount a tmpfs on it). */
  prepareDataServerDir?: (index: number, dir: string) => Promise<void> | void
}

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: Buffer
  stderr: string
}

export interface CliOptions {
  input?: Buffer | string | Readable
  timeoutMs?: number
  /** Run without `--config` (the test passes its own). */
  noConfig?: boolean
  env?: NodeJS.ProcessEnv
}

export interface DataServerInfo {
  index: number
  pid: number
  id: string
  address: string
  port: number
  dir: string
  configPath: string
  running: boolean
}

export interface Cluster {
  root: string
  nsAddress: string
  /** Client config pointing at the NameServer. */
  configPath: string
  nameServer: { pid: number, dir: string, configPath: string, running: boolean }
  dataServers: DataServerInfo[]
  cli (args: string[], opts?: CliOptions): Promise<CliResult>
  /** A CLI child with piped stdio, for streaming tests; killed on teardown. */
  spawnCli (args: string[], opts?: { noConfig?: boolean }): ChildProcess
  report (): Promise<ReportReply>
  fsck (path?: string): Promise<FsckReply>
  /** Wait until `n` DataServers are live (default: every running one) and safe mode is off. */
  waitForLive (n?: number, timeoutMs?: number): Promise<ReportReply>
  /** Signal a DataServer by PID and wait for it to exit (SIGKILL after 10 s for other signals). */
  killDataServer (i: number, signal?: NodeJS.Signals): Promise<ExitStatus>
  restartDataServer (i: number): Promise<void>
  killNameServer (signal?: NodeJS.Signals): Promise<ExitStatus>
  restartNameServer (): Promise<void>
  /** Runs after the processes are stopped and before temp dirs are removed. */
  addCleanup (fn: () => unknown): void
  stop (): Promise<void>
}

interface Proc {
  name: string
  child: ChildProcess
  exited: Promise<ExitStatus>
  logPath: string
}

export interface ExitStatus { code: number | null, signal: NodeJS.Signals | null }

function exitedPromise (child: ChildProcess): Promise<ExitStatus> {
  return new Promise(resolve => {
    if (child.exitCode !== null || child.signalCode !== null) { resolve({ code: child.exitCode, signal: child.signalCode }); return }
    child.once('exit', (code, signal) => resolve({ code, signal }))
  })
}

/** Kill by PID; SIGKILL if it has not exited after the grace period. */
async function killProc (p: Proc, signal: NodeJS.Signals = 'SIGTERM', graceMs = KILL_GRACE_MS): Promise<ExitStatus> {
  const c = p.child
  if (c.exitCode === null && c.signalCode === null) {
    try { process.kill(c.pid as number, signal) } catch {}
  }
  const timer = setTimeout(() => { try { process.kill(c.pid as number, 'SIGKILL') } catch {} }, graceMs)
  const status = await p.exited
  clearTimeout(timer)
  return status
}

async function tail (file: string): Promise<string> {
  try {
    const text = await readFile(file, 'utf8')
    return text.length > LOG_TAIL_BYTES ? '...' + text.slice(-LOG_TAIL_BYTES) : text
  } catch {
    return '(no log)'
  }
}

export async function startCluster (t: TestLike, opts: ClusterOptions = {}): Promise<Cluster> {
  const n = opts.dataServers ?? 3
  const replication = opts.replication ?? Math.min(3, n)
  const root = await mkdtemp(join(tmpdir(), 'hiss-cluster-'))
  const logLevel = opts.logLevel ?? process.env.HISS_TEST_LOG_LEVEL ?? 'info'
  const procs = new Set<Proc>()
  const logs: WriteStream[] = []
  const spawned = new Set<ChildProcess>()
  const cleanups: Array<() => unknown> = []
  const dataServers: DataServerInfo[] = []
  const dsProcs: Array<Proc | undefined> = []
  let nsProc: Proc | undefined
  let stopped = false

  async function stopAll (): Promise<void> {
    if (stopped) return
    stopped = true
    // Writers and readers first, then DataServers, then the NameServer.
    for (const c of spawned) { try { c.kill('SIGKILL') } catch {} }
    await Promise.all([...procs].filter(p => p !== nsProc).map(p => killProc(p)))
    await Promise.all([...procs].map(p => killProc(p)))
    for (const l of logs) l.end()
    process.off('exit', onExit)
    for (const s of SIGNALS) process.off(s, onSignal)
  }

  t.teardown(async () => {
    if (!t.passing()) {
      for (const name of ['nameserver', ...dataServers.map((_, i) => `dataserver-${i}`)]) {
        t.comment(`--- ${name} log (tail) ---\n${await tail(join(root, `${name}.log`))}`)
      }
    }
    await stopAll()
    for (const fn of cleanups.reverse()) {
      try { await fn() } catch (err) { t.comment(`cleanup failed: ${(err as Error).message}`) }
    }
    if (process.env.HISS_TEST_KEEP === undefined) await rm(root, { recursive: true, force: true }).catch(() => {})
    else t.comment(`kept cluster dir ${root}`)
  })

  // Children die with the test process, whatever happens to it.
  const onExit = (): void => {
    for (const p of procs) { try { process.kill(p.child.pid as number, 'SIGKILL') } catch {} }
    for (const c of spawned) { try { c.kill('SIGKILL') } catch {} }
  }
  process.on('exit', onExit)
  // A signal ends the process without 'exit' handlers: kill the children first, then
  // let the signal take its course (re-raised when nobody else handles it).
  const onSignal = (sig: NodeJS.Signals): void => {
    onExit()
    for (const s of SIGNALS) process.off(s, onSignal)
    if (process.listenerCount(sig) === 0) process.kill(process.pid, sig)
  }
  for (const s of SIGNALS) process.on(s, onSignal)

  const base: Record<string, unknown> = {
    ...TEST_TIMINGS,
    replication,
    'replication.min': 1,
    'cluster.secret': TEST_SECRET,
    ...(opts.blockSize === undefined ? {} : { 'block.size': opts.blockSize }),
    ...opts.extra,
  }

  const nsDir = join(root, 'nameserver')
  const nsConfigPath = join(root, 'nameserver.json')
  await mkdir(nsDir, { recursive: true })
  const nsConfig: Record<string, unknown> = {
    ...base,
    'nameserver.address': '127.0.0.1:0',
    'nameserver.root.dir': nsDir,
    'log.level': logLevel,
    ...opts.nameServerExtra,
  }
  await writeFile(nsConfigPath, JSON.stringify(nsConfig, null, 2))

  /** Spawn a daemon; resolve once it printed its "listening on" line. */
  async function spawnDaemon (name: string, args: string[]): Promise<{ proc: Proc, line: RegExpExecArray }> {
    const logPath = join(root, `${name}.log`)
    const logFile = createWriteStream(logPath, { flags: 'a' })
    logFile.on('error', () => {})
    logs.push(logFile)
    // Output can still arrive after the log was closed at teardown.
    const log = { write: (d: Buffer): void => { if (!logFile.writableEnded) logFile.write(d) } }
    const child = spawn(process.execPath, [CLI_MAIN, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
    const proc: Proc = { name, child, exited: exitedPromise(child), logPath }
    procs.add(proc)
    void proc.exited.then(() => { procs.delete(proc) })
    child.stderr?.on('data', (d: Buffer) => log.write(d))
    return await new Promise((resolve, reject) => {
      let buf = ''
      const timer = setTimeout(() => {
        void killProc(proc, 'SIGKILL')
        reject(new Error(`${name} did not print "listening on" within ${START_TIMEOUT_MS} ms`))
      }, START_TIMEOUT_MS)
      const onData = (d: Buffer): void => {
        log.write(d)
        buf += d.toString('utf8')
        const m = /^(nameserver|dataserver (\S+)) listening on (\S+):(\d+)$/m.exec(buf)
        if (m !== null) {
          clearTimeout(timer)
          child.off('exit', onEarlyExit)
          child.stdout?.off('data', onData)
          child.stdout?.on('data', (x: Buffer) => log.write(x))
          resolve({ proc, line: m })
        }
      }
      const onEarlyExit = (code: number | null, sig: NodeJS.Signals | null): void => {
        clearTimeout(timer)
        void tail(logPath).then(text => reject(new Error(`${name} exited (${code ?? sig}) before listening:\n${text}`)))
      }
      child.stdout?.on('data', onData)
      child.once('exit', onEarlyExit)
    })
  }

  const nameServer = { pid: 0, dir: nsDir, configPath: nsConfigPath, running: false }
  async function startNameServer (): Promise<RegExpExecArray> {
    const { proc, line } = await spawnDaemon('nameserver', ['nameserver', '--config', nsConfigPath])
    nsProc = proc
    nameServer.pid = proc.child.pid as number
    nameServer.running = true
    void proc.exited.then(() => { if (nsProc === proc) nameServer.running = false })
    return line
  }
  {
    const line = await startNameServer()
    const nsAddress = `${line[3] as string}:${line[4] as string}`
    // Restarts must come back on the same port: DataServers and clients know it.
    nsConfig['nameserver.address'] = nsAddress
    await writeFile(nsConfigPath, JSON.stringify(nsConfig, null, 2))
  }
  const nsAddress = nsConfig['nameserver.address'] as string

  const configPath = join(root, 'client.json')
  await writeFile(configPath, JSON.stringify({
    ...base,
    'nameserver.address': nsAddress,
    'log.level': 'warn',
    ...opts.clientExtra,
  }, null, 2))
  // The client does not need the cluster secret; drop it so tests prove that.
  {
    const c = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>
    if (opts.clientExtra?.['cluster.secret'] === undefined) delete c['cluster.secret']
    await writeFile(configPath, JSON.stringify(c, null, 2))
  }

  async function startDataServer (i: number, port?: number): Promise<void> {
    const info = dataServers[i] as DataServerInfo
    const args = ['dataserver', '--config', info.configPath]
    if (port !== undefined) args.push('--port', String(port))
    const { proc, line } = await spawnDaemon(`dataserver-${i}`, args)
    dsProcs[i] = proc
    info.pid = proc.child.pid as number
    info.id = line[2] as string
    info.address = `${line[3] as string}:${line[4] as string}`
    info.port = Number(line[4])
    info.running = true
    void proc.exited.then(() => { if (dsProcs[i] === proc) info.running = false })
  }

  for (let i = 0; i < n; i++) {
    const dir = join(root, `dataserver-${i}`)
    await mkdir(dir, { recursive: true })
    await opts.prepareDataServerDir?.(i, dir)
    const cfgPath = join(root, `dataserver-${i}.json`)
    await writeFile(cfgPath, JSON.stringify({
      ...base,
      'nameserver.address': nsAddress,
      'dataserver.address': '127.0.0.1:0',
      'dataserver.root.dir': dir,
      'log.level': logLevel,
      ...opts.dataServerExtra,
    }, null, 2))
    dataServers.push({ index: i, pid: 0, id: '', address: '', port: 0, dir, configPath: cfgPath, running: false })
  }
  function spawnCli (args: string[], o: { noConfig?: boolean, env?: NodeJS.ProcessEnv } = {}): ChildProcess {
    const full = o.noConfig === true ? [CLI_MAIN, ...args] : [CLI_MAIN, ...args, '--config', configPath]
    const child = spawn(process.execPath, full, { cwd: root, stdio: ['pipe', 'pipe', 'pipe'], env: o.env ?? process.env })
    spawned.add(child)
    child.once('exit', () => spawned.delete(child))
    return child
  }

  async function cli (args: string[], o: CliOptions = {}): Promise<CliResult> {
    const child = spawnCli(args, o)
    const out: Buffer[] = []
    let err = ''
    child.stdout?.on('data', (d: Buffer) => out.push(d))
    child.stderr?.on('data', (d: Buffer) => { err += d.toString('utf8') })
    // A CLI that exits before reading all its input is not an error of the test.
    child.stdin?.on('error', () => {})
    const input = o.input
    if (input instanceof Readable) input.pipe(child.stdin as NodeJS.WritableStream)
    else child.stdin?.end(input)
    const timeoutMs = o.timeoutMs ?? 120000
    let timedOut = false
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL') }, timeoutMs)
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>(resolve => {
      child.once('close', (c, s) => resolve([c, s]))
    })
    clearTimeout(timer)
    if (timedOut) err += `\n[test helper: hissdfs ${args.join(' ')} killed after ${timeoutMs} ms]`
    return { code, signal, stdout: Buffer.concat(out), stderr: err }
  }

  async function jsonOf<T> (args: string[], okCodes: number[]): Promise<T> {
    const r = await cli(args, { timeoutMs: 30000 })
    if (r.code === null || !okCodes.includes(r.code)) throw new Error(`hissdfs ${args.join(' ')} exited ${r.code ?? r.signal}: ${r.stderr.trim()}`)
    return JSON.parse(r.stdout.toString('utf8')) as T
  }

  const report = (): Promise<ReportReply> => jsonOf<ReportReply>(['report', '--json'], [0])
  const fsck = (path = '/'): Promise<FsckReply> => jsonOf<FsckReply>(['fsck', path, '--json'], [0, 1])

  async function waitForLive (want?: number, timeoutMs = 30000): Promise<ReportReply> {
    return await waitUntil(async () => {
      const r = await report()
      const running = new Set(dataServers.filter(d => d.running).map(d => d.id))
      const live = r.dataservers.filter(d => d.state === 'live')
      const ok = want === undefined
        ? [...running].every(id => live.some(d => d.id === id))
        : live.length >= want
      return ok && !r.safeMode ? r : undefined
    }, { timeoutMs, intervalMs: 300, what: `${want ?? 'all running'} live DataServers and safe mode off` })
  }

  const cluster: Cluster = {
    root,
    nsAddress,
    configPath,
    nameServer,
    dataServers,
    cli,
    spawnCli,
    report,
    fsck,
    waitForLive,
    async killDataServer (i, signal = 'SIGKILL') {
      const p = dsProcs[i]
      if (p === undefined) throw new Error(`no DataServer ${i}`)
      const status = await killProc(p, signal, signal === 'SIGKILL' ? 0 : 10000);
      (dataServers[i] as DataServerInfo).running = false
      return status
    },
    async restartDataServer (i) {
      const info = dataServers[i]
      if (info === undefined) throw new Error(`no DataServer ${i}`)
      if (info.running) throw new Error(`DataServer ${i} is still running`)
      await startDataServer(i, info.port)
    },
    async killNameServer (signal = 'SIGKILL') {
      if (nsProc === undefined) throw new Error('no NameServer')
      const status = await killProc(nsProc, signal, signal === 'SIGKILL' ? 0 : 10000)
      nameServer.running = false
      return status
    },
    async restartNameServer () {
      if (nameServer.running) throw new Error('the NameServer is still running')
      await startNameServer()
    },
    addCleanup (fn) { cleanups.push(fn) },
    stop: stopAll,
  }

  for (let i = 0; i < n; i++) await startDataServer(i)
  await waitForLive(n)
  return cluster
}

/**
 * Run the CLI with stdout on `outFile` (a regular file, or a device such as /dev/null):
 * what `hissdfs cat REMOTE > FILE` does in a shell. Killed after 60 s.
 */
export async function cliToFile (c: Cluster, outFile: string, args: string[]): Promise<{ code: number | null, stderr: string }> {
  const out = await open(outFile, 'w')
  try {
    return await new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI_MAIN, ...args, '--config', c.configPath], { stdio: ['ignore', out.fd, 'pipe'] })
      let stderr = ''
      child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
      const timer = setTimeout(() => { child.kill('SIGKILL') }, 60_000)
      child.on('error', reject)
      child.on('close', code => { clearTimeout(timer); resolve({ code, stderr }) })
    })
  } finally {
    await out.close()
  }
}
