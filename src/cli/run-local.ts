// `make run`: a whole local cluster in the foreground. Starts a NameServer and three
// DataServers (children of `node dist/src/cli/main.js`, configs from configs/, data
// under ./data), prints their logs prefixed by role, waits until every DataServer has
// registered, mounts the cluster at ./mount (when the FUSE adapter is built), and on
// Ctrl-C / SIGTERM stops everything in order: the mount, the DataServers, the
// NameServer, each by PID. If any part dies on its own, the rest is stopped and the
// exit code is 1. `--no-mount` skips the mount.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as delay } from 'node:timers/promises'
import { loadConfigFile } from '../common/config.js'
import { silentLogger } from '../common/log.js'
import { packageRoot } from '../common/config-path.js'
import { isFuseMounted, releaseFuseMount } from '../common/mounts.js'

const ROOT = packageRoot()
const MAIN = join(ROOT, 'dist/src/cli/main.js')
const FUSE_MAIN = join(ROOT, 'dist/src/fuse/main.js')
const CONFIGS = join(ROOT, 'configs')
const MOUNTPOINT = join(ROOT, 'mount')
const DATASERVER_CONFIGS = ['dataserver-1.json', 'dataserver-2.json', 'dataserver-3.json']

const LISTEN_TIMEOUT_MS = 30000
const REGISTER_TIMEOUT_MS = 60000
const MOUNT_TIMEOUT_MS = 30000
const STOP_TIMEOUT_MS = 15000

const useColor = process.stdout.isTTY === true
const COLORS = [36, 32, 33, 35, 34]

interface Child {
  role: string
  proc: ChildProcess
  exited: Promise<void>
}

const children: Child[] = []
let stopping = false

function say (msg: string): void {
  process.stdout.write(`${useColor ? '\x1b[1m' : ''}[run-local]${useColor ? '\x1b[0m' : ''} ${msg}\n`)
}

function prefixer (role: string, index: number): (line: string) => void {
  const tag = useColor ? `\x1b[${COLORS[index % COLORS.length] ?? 36}m[${role}]\x1b[0m` : `[${role}]`
  return line => { process.stdout.write(`${tag} ${line}\n`) }
}

/** Start `node <script> ...args` in its own process group (Ctrl-C reaches only us: we stop children in order). */
function startChild (role: string, script: string, args: string[], onLine?: (line: string) => void): Child {
  const proc = spawn(process.execPath, [script, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  const print = prefixer(role, children.length)
  for (const s of [proc.stdout, proc.stderr]) {
    if (s === null) continue
    createInterface({ input: s, crlfDelay: Infinity }).on('line', line => { print(line); onLine?.(line) })
  }
  const exited = new Promise<void>(resolve => {
    proc.once('exit', (code, signal) => {
      if (!stopping) {
        say(`${role} (pid ${proc.pid ?? '?'}) exited unexpectedly (${code ?? signal}); stopping the rest`)
        void shutdown(1)
      }
      resolve()
    })
  })
  proc.once('error', err => { say(`${role}: ${err.message}`) })
  const child = { role, proc, exited }
  children.push(child)
  return child
}

/** Start a daemon and wait for its "listening on" line. */
async function startDaemon (role: string, args: string[]): Promise<Child> {
  let heard: (() => void) | undefined
  const listening = new Promise<void>(resolve => { heard = resolve })
  const child = startChild(role, MAIN, args, line => { if (/ listening on \S+$/.test(line)) heard?.() })
  const timeout = delay(LISTEN_TIMEOUT_MS).then(() => { throw new Error(`${role} did not start listening within ${LISTEN_TIMEOUT_MS / 1000} s`) })
  await Promise.race([listening, timeout, child.exited.then(() => { throw new Error(`${role} exited during start`) })])
  return child
}

function isAlive (c: Child): boolean {
  return c.proc.exitCode === null && c.proc.signalCode === null
}

/** Signal one child by PID, wait, SIGKILL after the timeout. */
async function stopChild (c: Child, signal: NodeJS.Signals): Promise<void> {
  if (!isAlive(c)) return
  try { process.kill(c.proc.pid as number, signal) } catch { return }
  const killed = delay(STOP_TIMEOUT_MS).then(() => {
    if (isAlive(c)) {
      say(`${c.role} did not stop within ${STOP_TIMEOUT_MS / 1000} s: SIGKILL`)
      try { process.kill(c.proc.pid as number, 'SIGKILL') } catch {}
    }
  })
  await Promise.race([c.exited, killed])
  await c.exited
}

let shuttingDown: Promise<void> | undefined

function shutdown (code: number): Promise<void> {
  shuttingDown ??= (async () => {
    stopping = true
    say('stopping')
    const mount = children.find(c => c.role === 'mount')
    if (mount !== undefined) {
      await stopChild(mount, 'SIGINT')
    }
    if (await isFuseMounted(MOUNTPOINT)) {
      say(`unmounting ${MOUNTPOINT} with fusermount -u`)
      if (!await releaseFuseMount(MOUNTPOINT)) say(`could not unmount ${MOUNTPOINT}; run: fusermount -u ${MOUNTPOINT}`)
    }
    await Promise.all(children.filter(c => c.role.startsWith('dataserver')).map(c => stopChild(c, 'SIGTERM')))
    await Promise.all(children.filter(c => c.role === 'nameserver').map(c => stopChild(c, 'SIGTERM')))
    say(code === 0 ? 'stopped' : 'stopped after a failure')
    process.exit(code)
  })()
  return shuttingDown
}

async function waitForDataServers (want: number): Promise<void> {
  const { createClient } = await import('../client/hiss-client.js')
  const cfg = loadConfigFile(join(CONFIGS, 'client.json'), { 'client.retry.ms': 1000 })
  const client = createClient(cfg, { log: silentLogger })
  const deadline = Date.now() + REGISTER_TIMEOUT_MS
  let last = 'no answer yet'
  try {
    for (;;) {
      try {
        const r = await client.report()
        const live = r.dataservers.filter(d => d.state === 'live').length
        if (live >= want && !r.safeMode) return
        last = `${live} live, safe mode ${r.safeMode ? 'on' : 'off'}`
      } catch (err) {
        last = (err as Error).message
      }
      if (Date.now() > deadline) throw new Error(`DataServers did not register within ${REGISTER_TIMEOUT_MS / 1000} s (${last})`)
      await delay(500)
    }
  } finally {
    await client.close().catch(() => {})
  }
}

async function mount (): Promise<void> {
  if (process.argv.includes('--no-mount')) {
    say('--no-mount: running without a mount (use the hissdfs CLI)')
    return
  }
  if (!existsSync(FUSE_MAIN)) {
    say(`${FUSE_MAIN} is not built: running without a mount (use the hissdfs CLI)`)
    return
  }
  mkdirSync(MOUNTPOINT, { recursive: true })
  if (await isFuseMounted(MOUNTPOINT)) {
    say(`${MOUNTPOINT} is still mounted from an earlier run: unmounting it`)
    await releaseFuseMount(MOUNTPOINT)
  }
  const child = startChild('mount', FUSE_MAIN, ['--config', join(CONFIGS, 'client.json'), MOUNTPOINT])
  const deadline = Date.now() + MOUNT_TIMEOUT_MS
  while (!await isFuseMounted(MOUNTPOINT)) {
    if (!isAlive(child)) throw new Error('hissdfs-mount exited before mounting')
    if (Date.now() > deadline) throw new Error(`${MOUNTPOINT} was not mounted within ${MOUNT_TIMEOUT_MS / 1000} s`)
    await delay(200)
  }
}

async function main (): Promise<void> {
  process.chdir(ROOT)
  process.on('SIGINT', () => { void shutdown(0) })
  process.on('SIGTERM', () => { void shutdown(0) })
  // If we die without a clean shutdown, do not leave detached daemons behind.
  process.on('exit', () => {
    for (const c of children) if (isAlive(c)) { try { process.kill(c.proc.pid as number, 'SIGKILL') } catch {} }
  })

  // Create the data directories the configs name (relative to the repository root).
  const nsCfg = loadConfigFile(join(CONFIGS, 'nameserver.json'))
  const dirs = [nsCfg['nameserver.root.dir']]
  for (const f of DATASERVER_CONFIGS) dirs.push(loadConfigFile(join(CONFIGS, f))['dataserver.root.dir'])
  for (const d of dirs) if (d !== undefined) mkdirSync(resolve(d), { recursive: true })

  say(`starting a NameServer on ${nsCfg['nameserver.address']} and ${DATASERVER_CONFIGS.length} DataServers (data under ${join(ROOT, 'data')})`)
  await startDaemon('nameserver', ['nameserver', '--config', join(CONFIGS, 'nameserver.json')])
  await Promise.all(DATASERVER_CONFIGS.map((f, i) => startDaemon(`dataserver-${i + 1}`, ['dataserver', '--config', join(CONFIGS, f)])))
  await waitForDataServers(DATASERVER_CONFIGS.length)
  say(`all ${DATASERVER_CONFIGS.length} DataServers registered`)
  await mount()
  if (stopping) return
  say(`HissDFS is running${children.some(c => c.role === 'mount') ? `, mounted at ${MOUNTPOINT}` : ''}.`)
  say(`try: node dist/src/cli/main.js report   (Ctrl-C stops everything)`)
}

main().catch(err => {
  say(`failed: ${(err as Error).message}`)
  void shutdown(1)
})
