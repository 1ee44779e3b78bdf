// Child processes for the benchmark: one-shot commands with a timeout, and long-running
// daemons whose output goes to a log file while we watch it for a "ready" line.
// Everything is spawned in its own process group (detached) so that a Ctrl-C on the
// terminal reaches only the harness, which then stops things in order (unmount first).
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'
import { open } from 'node:fs/promises'

export interface RunResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  seconds: number
  timedOut: boolean
}

export interface RunOptions {
  timeoutMs: number
  cwd?: string
  env?: NodeJS.ProcessEnv
  /** Send stdout to this file instead of capturing it. */
  stdoutFile?: string
  /** Text written to stdin (stdin is closed otherwise). */
  input?: string
  /** Called with each chunk of stderr as it arrives (it is captured as well). */
  onStderr?: (text: string) => void
}

const CAPTURE_LIMIT = 4 * 1024 * 1024

/** Commands still running; killed (by process group id) on Ctrl-C. */
const running = new Set<ChildProcess>()

export function killRunningCommands (): void {
  for (const c of running) killGroup(c.pid, 'SIGKILL')
}

export function killGroup (pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return
  try { process.kill(-pid, sig) } catch { try { process.kill(pid, sig) } catch { /* gone */ } }
}

function appendCapped (cur: string, chunk: Buffer): string {
  if (cur.length >= CAPTURE_LIMIT) return cur
  return cur + chunk.toString('utf8')
}

/** Run a command to completion (or timeout). Never throws for a non-zero exit. */
export async function run (cmd: string, args: string[], opts: RunOptions): Promise<RunResult> {
  const outFh = opts.stdoutFile === undefined ? undefined : await open(opts.stdoutFile, 'w')
  const started = process.hrtime.bigint()
  return await new Promise<RunResult>((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      detached: true,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', outFh === undefined ? 'pipe' : outFh.fd, 'pipe'],
    })
    running.add(child)
    let stdout = ''
    let stderr = ''
    let timedOut = false
    child.stdout?.on('data', (b: Buffer) => { stdout = appendCapped(stdout, b) })
    child.stderr?.on('data', (b: Buffer) => { stderr = appendCapped(stderr, b); opts.onStderr?.(b.toString('utf8')) })
    if (opts.input !== undefined) child.stdin?.end(opts.input)
    const timer = setTimeout(() => { timedOut = true; killGroup(child.pid, 'SIGKILL') }, opts.timeoutMs)
    child.on('error', (err) => { clearTimeout(timer); running.delete(child); void outFh?.close(); reject(err) })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      running.delete(child)
      const seconds = Number(process.hrtime.bigint() - started) / 1e9
      void (outFh?.close() ?? Promise.resolve()).then(() => resolve({ code, signal, stdout, stderr, seconds, timedOut }))
    })
  })
}

/** Run and throw a one-line error unless it exits 0. */
export async function runOk (cmd: string, args: string[], opts: RunOptions): Promise<RunResult> {
  const r = await run(cmd, args, opts)
  if (r.timedOut) throw new Error(`${cmd} ${args.join(' ')}: timed out after ${opts.timeoutMs / 1000} s`)
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${describeExit(r)}`)
  return r
}

export function describeExit (r: RunResult): string {
  const why = r.signal !== null ? `killed by ${r.signal}` : `exit ${String(r.code)}`
  const tail = lastLines(r.stderr !== '' ? r.stderr : r.stdout, 3)
  return tail === '' ? why : `${why}: ${tail}`
}

export function lastLines (text: string, n: number): string {
  return text.trim().split('\n').slice(-n).join(' | ').slice(0, 400)
}

/** A long-running process: output to a log file, watched for lines. */
export class Daemon {
  readonly role: string
  readonly proc: ChildProcess
  readonly logFile: string
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  private exitInfo: { code: number | null, signal: NodeJS.Signals | null } | undefined
  private readonly log: WriteStream
  private readonly tail: string[] = []
  private readonly waiters: Array<{ re: RegExp, resolve: (line: string) => void }> = []
  private partial = ''
  private logClosed = false

  constructor (role: string, cmd: string, args: string[], logFile: string, env?: NodeJS.ProcessEnv) {
    this.role = role
    this.logFile = logFile
    this.log = createWriteStream(logFile, { flags: 'a' })
    this.proc = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env })
    const onData = (b: Buffer): void => { this.log.write(b); this.scan(b.toString('utf8')) }
    this.proc.stdout?.on('data', onData)
    this.proc.stderr?.on('data', onData)
    this.exited = new Promise((resolve) => {
      this.proc.on('error', (err) => { this.scan(`spawn error: ${err.message}\n`); this.exitInfo = { code: -1, signal: null }; resolve(this.exitInfo) })
      this.proc.on('exit', (code, signal) => { this.exitInfo = { code, signal }; resolve(this.exitInfo) })
    })
  }

  get pid (): number { return this.proc.pid ?? -1 }
  get running (): boolean { return this.exitInfo === undefined }

  /** The last lines the process printed, for error messages. */
  lastOutput (n = 3): string { return this.tail.slice(-n).join(' | ').slice(0, 400) }

  private scan (text: string): void {
    const lines = (this.partial + text).split('\n')
    this.partial = lines.pop() ?? ''
    for (const line of lines) {
      this.tail.push(line)
      if (this.tail.length > 50) this.tail.shift()
      for (let i = this.waiters.length - 1; i >= 0; i--) {
        const w = this.waiters[i]
        if (w !== undefined && w.re.test(line)) { this.waiters.splice(i, 1); w.resolve(line) }
      }
    }
  }

  /** Resolve with the first output line matching `re`; reject on exit or timeout. */
  async waitForLine (re: RegExp, timeoutMs: number): Promise<string> {
    const found = this.tail.find((l) => re.test(l))
    if (found !== undefined) return found
    let timer: NodeJS.Timeout | undefined
    try {
      return await Promise.race([
        new Promise<string>((resolve) => { this.waiters.push({ re, resolve }) }),
        this.exited.then((e) => { throw new Error(`${this.role} exited (${e.signal ?? `code ${String(e.code)}`}) before ready: ${this.lastOutput()}`) }),
        new Promise<string>((_resolve, reject) => {
          timer = setTimeout(() => { reject(new Error(`${this.role} not ready after ${timeoutMs / 1000} s: ${this.lastOutput()}`)) }, timeoutMs)
        }),
      ])
    } finally {
      if (timer !== undefined) clearTimeout(timer)
    }
  }

  /** SIGTERM, then SIGKILL after graceMs. Only this process group, by its id. */
  async stop (graceMs = 10000): Promise<void> {
    if (this.running) {
      killGroup(this.pid, 'SIGTERM')
      const t = setTimeout(() => { killGroup(this.pid, 'SIGKILL') }, graceMs)
      await this.exited
      clearTimeout(t)
    }
    if (!this.logClosed) {
      this.logClosed = true
      await new Promise<void>((resolve) => { this.log.end(resolve) })
    }
  }

  stopSync (): void {
    if (this.running) killGroup(this.pid, 'SIGKILL')
  }
}

export async function sleep (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}

/** Poll `fn` until it returns a value other than undefined, or throw after timeoutMs. */
export async function pollUntil<T> (what: string, timeoutMs: number, fn: () => Promise<T | undefined>, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastErr = ''
  for (;;) {
    try {
      const v = await fn()
      if (v !== undefined) return v
    } catch (err) {
      lastErr = (err as Error).message
    }
    if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs / 1000} s${lastErr === '' ? '' : ` (${lastErr})`}`)
    await sleep(everyMs)
  }
}
