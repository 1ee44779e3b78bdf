// Running a server role in the foreground: load the config, start, print one
// "listening on" line to stdout (scripts and tests read the real port from it), and
// on SIGINT/SIGTERM close cleanly and exit 0. Config errors: one line, exit 2.
import { loadConfigFile, type HissConfig, type HissConfigInput } from '../common/config.js'
import { createLogger, type Logger } from '../common/log.js'
import { HissError } from '../common/errors.js'
import { resolveConfigPath } from '../common/config-path.js'
import { EXIT_FAIL, EXIT_OK, EXIT_USAGE, formatFailure } from './errors.js'
import { writeErr } from './output.js'

/** How long a clean shutdown may take before the process gives up and exits 1. */
export const SHUTDOWN_TIMEOUT_MS = 15000

export interface DaemonHandle {
  /** Resolves to the bound address (`host:port`), or an object carrying it. */
  start (): Promise<unknown>
  close (): Promise<unknown>
  /** A persistent server id, when the role has one (DataServers). */
  readonly id?: string
}

export interface DaemonSpec {
  role: 'nameserver' | 'dataserver'
  configFlag: string | undefined
  defaultConfigName: string
  overrides?: Partial<HissConfigInput>
  create (cfg: HissConfig, log: Logger): Promise<DaemonHandle>
  /** The line printed once listening. */
  banner (cfg: HissConfig, address: string, daemon: DaemonHandle): Promise<string> | string
}

export function addressOf (started: unknown): string {
  if (typeof started === 'string') return started
  const a = (started as { address?: unknown } | null)?.address
  if (typeof a === 'string') return a
  throw new HissError('INTERNAL', 'server start() returned no address')
}

function isConfigError (err: unknown): boolean {
  return err instanceof HissError && err.code === 'CONFIG'
}

/** Runs until a signal; resolves to the exit code. */
export async function runDaemon (spec: DaemonSpec): Promise<number> {
  let cfg: HissConfig
  try {
    cfg = loadConfigFile(resolveConfigPath(spec.configFlag, process.env, spec.defaultConfigName), spec.overrides ?? {})
  } catch (err) {
    writeErr(formatFailure(undefined, undefined, err))
    return EXIT_USAGE
  }
  const log = createLogger(spec.role, cfg['log.level'])
  const debug = cfg['log.level'] === 'debug'
  const fail = (err: unknown): number => {
    writeErr(isConfigError(err) ? formatFailure(undefined, undefined, err) : formatFailure(spec.role, undefined, err, debug))
    return isConfigError(err) ? EXIT_USAGE : EXIT_FAIL
  }

  // Signals that arrive while starting are honoured once start settles.
  let stopRequested: NodeJS.Signals | undefined
  let wake: (() => void) | undefined
  const stopped = new Promise<void>(resolve => { wake = resolve })
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stopRequested !== undefined) {
      // A second Ctrl-C: the user does not want to wait for a clean close.
      writeErr(`hissdfs: ${spec.role}: second ${sig}, exiting without a clean shutdown`)
      process.exit(EXIT_FAIL)
    }
    stopRequested = sig
    wake?.()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  let daemon: DaemonHandle
  let address: string
  try {
    daemon = await spec.create(cfg, log)
    address = addressOf(await daemon.start())
  } catch (err) {
    return fail(err)
  }
  if (stopRequested === undefined) {
    process.stdout.write(await spec.banner(cfg, address, daemon) + '\n')
    await stopped
  }
  log.info('shutting down', { signal: stopRequested })
  const timer = setTimeout(() => {
    writeErr(`hissdfs: ${spec.role}: clean shutdown took over ${SHUTDOWN_TIMEOUT_MS} ms, exiting`)
    process.exit(EXIT_FAIL)
  }, SHUTDOWN_TIMEOUT_MS)
  timer.unref()
  try {
    await daemon.close()
  } catch (err) {
    clearTimeout(timer)
    return fail(err)
  }
  clearTimeout(timer)
  return EXIT_OK
}
