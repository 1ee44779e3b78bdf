// FUSE test helper: an in-process cluster (test/helpers/inprocess-cluster.ts) plus one or
// more real `hissdfs-mount` child processes (node dist/src/fuse/main.js) on temp
// mountpoints. Every wait is bounded; teardown always unmounts (SIGTERM, then
// `fusermount -u -z` and SIGKILL by PID) and removes the mountpoint only once nothing is
// mounted on it, so a stuck mount never hangs the suite or leaks.
//
// Shell commands run asynchronously (never execSync): the servers live in this process
// and must keep answering while a tool works on the mount.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, open, rm, rmdir, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { HissConfig, HissConfigInput } from '../../src/common/config.js'
import { startCluster, type Cluster, type ClusterOptions, type TeardownTarget } from './inprocess-cluster.js'
import { isFuseMounted } from '../../src/common/mounts.js'
import { waitUntil } from './wait-until.js'

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))
export const MOUNT_MAIN = join(REPO_ROOT, 'dist/src/fuse/main.js')

const MOUNT_START_TIMEOUT_MS = 30_000
const MOUNT_STOP_TIMEOUT_MS = 30_000
const OUTPUT_TAIL = 8000

/**
 * Cluster settings for FUSE tests: a DataServer is declared dead only after 15 s, so a
 * loaded 2-core machine (tools, mounts and servers in one test) does not lose all of
 * them to a late heartbeat mid-test. Failure tests here kill by closing a DataServer,
 * which readers notice at once (connection refused), not through the NameServer.
 */
export const FUSE_TEST_CONFIG: Partial<HissConfigInput> = {
  'heartbeat.dead.ms': 15_000,
  'lease.timeout.ms': 30_000,
}

/** Why FUSE tests cannot run here, or undefined when they can. */
export function fuseSkipReason (): string | undefined {
  if (!existsSync('/dev/fuse')) return '/dev/fuse is missing'
  if (process.getuid?.() !== 0) return 'FUSE tests mount with allow_other and need root'
  if (!['/usr/bin/fusermount', '/bin/fusermount', '/usr/bin/fusermount3', '/bin/fusermount3'].some(p => existsSync(p))) return 'fusermount is missing'
  if (!existsSync(MOUNT_MAIN)) return `${MOUNT_MAIN} is not built`
  return undefined
}

export interface ShResult { code: number, stdout: string, stderr: string }

/** Run a bash command asynchronously with a deadline; never throws on a non-zero exit. */
export function sh (cmd: string, opts: { timeoutMs?: number, cwd?: string, env?: NodeJS.ProcessEnv } = {}): Promise<ShResult> {
  return new Promise(resolve => {
    execFile('bash', ['-c', cmd], {
      timeout: opts.timeoutMs ?? 120_000,
      killSignal: 'SIGKILL',
      maxBuffer: 64 * 1024 * 1024,
      cwd: opts.cwd,
      env: { ...process.env, LC_ALL: 'C', TZ: 'UTC', ...opts.env },
    }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1
      resolve({ code, stdout: String(stdout), stderr: String(stderr) + (err !== null && (err as { killed?: boolean }).killed === true ? '\n[killed: timeout]' : '') })
    })
  })
}

/** Like sh() but throws (with the output) unless the command succeeds. */
export async function shOk (cmd: string, opts: { timeoutMs?: number, cwd?: string } = {}): Promise<string> {
  const r = await sh(cmd, opts)
  if (r.code !== 0) throw new Error(`command failed (${r.code}): ${cmd}\n${r.stderr.slice(-4000)}\n${r.stdout.slice(-2000)}`)
  return r.stdout
}

/** Is a FUSE file system mounted at `path`? (The same check the mount uses.) */
export const isMounted = isFuseMounted

async function waitFor (what: string, timeoutMs: number, probe: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await probe()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

export interface Mount {
  /** Absolute mountpoint. */
  dir: string
  proc: ChildProcess
  pid: number
  configFile: string
  /** Output so far (tails). */
  stdout (): string
  stderr (): string
  /** Exit code once exited (null while running, or if killed by a signal). */
  exitCode (): number | null
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  /** SIGTERM and wait for a clean exit; falls back to fusermount -u -z + SIGKILL. Idempotent. */
  stop (): Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

export interface MountOptions {
  /** Config overrides for the mount (e.g. fuse.* keys). */
  config?: Partial<HissConfigInput>
  /** Extra env for the child. */
  env?: NodeJS.ProcessEnv
  /** Don't wait for "mounted at" (tests of failures). */
  noWait?: boolean
  /** Use this directory as the mountpoint instead of a fresh temp one. */
  dir?: string
  /** Every chunk of the mount's stderr (its log), beyond the kept tail. */
  onStderr?: (chunk: string) => void
}

export interface TestLike extends TeardownTarget {
  comment (...args: unknown[]): void
  passing (): boolean
}

/** Write a mount config file for `cfg` (+ overrides) and return its path. */
export async function writeMountConfig (cfg: HissConfig, overrides: Partial<HissConfigInput> = {}): Promise<{ file: string, dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'hiss-mountcfg-'))
  const raw: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(cfg)) if (v !== undefined) raw[k] = v
  delete raw['nameserver.root.dir']
  delete raw['dataserver.root.dir']
  Object.assign(raw, overrides)
  const file = join(dir, 'client.json')
  await writeFile(file, JSON.stringify(raw, null, 2))
  return { file, dir }
}

/** Start `hissdfs-mount` on a fresh temp dir against the cluster config `cfg`. */
export async function startMount (t: TestLike, cfg: HissConfig, opts: MountOptions = {}): Promise<Mount> {
  const { file: configFile, dir: cfgDir } = await writeMountConfig(cfg, opts.config)
  const dir = opts.dir ?? await mkdtemp(join(tmpdir(), 'hiss-mnt-'))
  let out = ''
  let err = ''
  const proc = spawn(process.execPath, [MOUNT_MAIN, '--config', configFile, dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  })
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => { out = (out + d).slice(-OUTPUT_TAIL) })
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => { err = (err + d).slice(-OUTPUT_TAIL); opts.onStderr?.(d) })
  let code: number | null = null
  let done = false
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => {
    proc.on('exit', (c, s) => { code = c; done = true; resolve({ code: c, signal: s }) })
  })

  let stopping: Promise<{ code: number | null, signal: NodeJS.Signals | null }> | undefined
  const stop = (): Promise<{ code: number | null, signal: NodeJS.Signals | null }> => {
    stopping ??= (async () => {
      // Only a process that got as far as mounting may be cleaned up after: a refused
      // start on a busy mountpoint must never unmount whoever is there.
      const ours = out.includes('mounted at')
      if (!done && proc.pid !== undefined) {
        proc.kill('SIGTERM')
        const timer = new Promise<'timeout'>(resolve => { const h = setTimeout(() => resolve('timeout'), MOUNT_STOP_TIMEOUT_MS); h.unref() })
        if (await Promise.race([exited, timer]) === 'timeout') {
          t.comment(`mount ${dir} did not exit on SIGTERM; forcing`)
          if (ours) await sh(`fusermount -u -z ${JSON.stringify(dir)}`, { timeoutMs: 10_000 })
          proc.kill('SIGKILL')
        }
      }
      const r = await exited
      if (ours && await isMounted(dir).catch(() => false)) {
        t.comment(`mount ${dir} still mounted after the process ended; lazy unmount`)
        await sh(`fusermount -u -z ${JSON.stringify(dir)} || umount -l ${JSON.stringify(dir)}`, { timeoutMs: 10_000 })
      }
      // Only ever rmdir: if something were still mounted, rm -r would reach into it.
      if (opts.dir === undefined && !await isMounted(dir).catch(() => true)) await rmdir(dir).catch(() => {})
      await rm(cfgDir, { recursive: true, force: true }).catch(() => {})
      return r
    })()
    return stopping
  }
  t.teardown(async () => {
    if (!t.passing()) t.comment(`mount ${dir} output:\n${out}\n${err}`)
    await stop()
  })

  const m: Mount = {
    dir,
    proc,
    pid: proc.pid ?? -1,
    configFile,
    stdout: () => out,
    stderr: () => err,
    exitCode: () => code,
    exited,
    stop,
  }
  if (opts.noWait === true) return m
  try {
    await waitFor(`"mounted at" from hissdfs-mount on ${dir}`, MOUNT_START_TIMEOUT_MS, () => {
      if (done) throw new Error(`hissdfs-mount exited (${String(code)}) before mounting:\n${err}`)
      return out.includes('mounted at')
    })
  } catch (e) {
    await stop()
    throw e
  }
  return m
}

export interface FuseCluster { cluster: Cluster, mount: Mount }

/** An in-process cluster plus one mount of it. */
export async function startFuseCluster (t: TestLike, o: ClusterOptions & { mount?: MountOptions } = {}): Promise<FuseCluster> {
  const cluster = await startCluster(t, o)
  const mount = await startMount(t, cluster.cfg, o.mount)
  return { cluster, mount }
}

/**
 * Counts what a mount logs at debug level (one JSON object per line of its stderr): feed()
 * it the chunks as they come; `keys` names what a parsed line counts as (usually nothing).
 * take() hands over the counts since the last take(), sorted by key.
 */
export class MountLogCounter {
  private buf = ''
  private counts = new Map<string, number>()
  /** fsyncdir ops seen: the marks takeSettled waits for. */
  private marks = 0

  constructor (private readonly keys: (line: Record<string, unknown>) => readonly string[]) {}

  feed (chunk: string): void {
    this.buf += chunk
    let nl
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl)
      this.buf = this.buf.slice(nl + 1)
      let j: unknown
      try { j = JSON.parse(line) } catch { continue }
      if (j === null || typeof j !== 'object') continue
      const rec = j as Record<string, unknown>
      if (rec.msg === 'op' && typeof rec.op === 'string' && rec.op.startsWith('fsyncdir ')) this.marks++
      for (const k of this.keys(rec)) this.counts.set(k, (this.counts.get(k) ?? 0) + 1)
    }
  }

  /** Whether `key` was counted since the last take(). */
  seen (key: string): boolean { return (this.counts.get(key) ?? 0) > 0 }

  take (): Record<string, number> {
    const out = Object.fromEntries([...this.counts].sort())
    this.counts = new Map()
    return out
  }

  /**
   * take(), once every line the mount wrote before now has been read: fsync the directory
   * `mountDir` of the mount (an fsyncdir op, which makes no NameServer request and which
   * the mount logs, at debug level, after all it logged before) and wait for its line.
   * Needs the mount at log.level debug; its keys see the fsyncdir op line too.
   */
  async takeSettled (mountDir: string): Promise<Record<string, number>> {
    const seen = this.marks
    const fh = await open(mountDir, 'r')
    try { await fh.sync() } finally { await fh.close() }
    await waitUntil(() => this.marks > seen || undefined, { timeoutMs: 10_000, what: 'the mount log to catch up' })
    return this.take()
  }
}

/**
 * A mount's FUSE ops (its debug log): every op by name as `op:<name>`, and getattr also
 * by path (as the kernel's lookups and stats arrive).
 */
export function mountOpLog (): MountLogCounter {
  return new MountLogCounter(j => {
    if ((j.msg !== 'op' && j.msg !== 'op failed') || typeof j.op !== 'string') return []
    const name = `op:${j.op.split(' ')[0]!}`
    return j.op.startsWith('getattr ') ? [j.op.slice('getattr '.length), name] : [name]
  })
}

let settleMarks = 0
/**
 * Wait until every op line the mount at `dir` logged so far has reached `log` (a
 * mountOpLog): it has once the getattr of a lookup made after them has.
 */
export async function settleMountLog (dir: string, log: MountLogCounter): Promise<void> {
  const name = `/.mark${++settleMarks}`
  await stat(join(dir, name)).catch(() => {})
  await waitUntil(() => log.seen(name), { timeoutMs: 10_000, what: 'the mount log to catch up' })
}
