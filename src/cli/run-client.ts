// The frame around every client command: find and load the config, make a client
// (identity = this process's uid/gids, the client's default), run the command, print
// failures as one line each, close the client, and pick the exit code.
import type { Command } from 'commander'
import { loadConfigFile, type HissConfig } from '../common/config.js'
import { createLogger, type Logger } from '../common/log.js'
import { HissError } from '../common/errors.js'
import type { HissFs } from '../client/types.js'
// The client (got and friends) is loaded only when a client command runs.
import { resolveConfigPath } from '../common/config-path.js'
import { EXIT_FAIL, EXIT_OK, EXIT_USAGE, ExitWith, PathFailure, formatFailure } from './errors.js'
import { writeErr } from './output.js'
import { toRemotePath } from './remote-path.js'
import { raiseMallocThresholds } from '../common/malloc-tuning.js'

export interface ClientContext {
  readonly command: string
  readonly fs: HissFs
  readonly cfg: HissConfig
  readonly log: Logger
  readonly debug: boolean
  /** Print one failure for `path` and go on (the command ends with exit code 1). */
  fail (path: string | undefined, err: unknown): void
}

export type ClientCommand<O> = (ctx: ClientContext, args: unknown[], opts: O) => Promise<number | void>

interface GlobalOpts { config?: string }

function isConfigError (err: unknown): boolean {
  return err instanceof HissError && err.code === 'CONFIG'
}

/** Load the client config; prints and returns undefined on a config error. */
export function loadClientConfig (explicit: string | undefined): HissConfig | undefined {
  try {
    return loadConfigFile(resolveConfigPath(explicit, process.env, 'client.json'))
  } catch (err) {
    writeErr(formatFailure(undefined, undefined, err))
    return undefined
  }
}

export async function runClientCommand<O> (name: string, configFlag: string | undefined, args: unknown[], opts: O, fn: ClientCommand<O>): Promise<number> {
  const cfg = loadClientConfig(configFlag)
  if (cfg === undefined) return EXIT_USAGE
  const log = createLogger('hissdfs', cfg['log.level'])
  const debug = cfg['log.level'] === 'debug'
  let fs: HissFs
  try {
    const { createClient } = await import('../client/hiss-client.js')
    fs = createClient(cfg, { log })
  } catch (err) {
    writeErr(formatFailure(isConfigError(err) ? undefined : name, undefined, err, debug))
    return isConfigError(err) ? EXIT_USAGE : EXIT_FAIL
  }
  let failed = false
  const ctx: ClientContext = {
    command: name,
    fs,
    cfg,
    log,
    debug,
    fail (path, err) {
      failed = true
      writeErr(formatFailure(name, path, err, debug))
    },
  }
  let code: number = EXIT_OK
  try {
    const r = await fn(ctx, args, opts)
    if (typeof r === 'number') code = r
    if (failed) code = Math.max(code, EXIT_FAIL)
  } catch (err) {
    if (err instanceof ExitWith) code = err.code
    else if (err instanceof PathFailure) { ctx.fail(err.path, err.error); code = EXIT_FAIL } else {
      writeErr(formatFailure(name, undefined, err, debug))
      code = isConfigError(err) ? EXIT_USAGE : EXIT_FAIL
    }
  } finally {
    await fs.close().catch(() => {})
  }
  return code
}

/** A commander action for a client command: arguments come from `processedArgs`. */
export function clientAction<O> (name: string, fn: ClientCommand<O>): (...all: unknown[]) => Promise<void> {
  return async (...all: unknown[]) => {
    // Data streams churn 64 KiB buffers: keep freed ones instead of faulting them in again.
    raiseMallocThresholds()
    const cmd = all[all.length - 1] as Command
    const globals = cmd.optsWithGlobals<GlobalOpts>()
    process.exitCode = await runClientCommand(name, globals.config, cmd.processedArgs, cmd.opts<O & object>(), fn)
  }
}

/** Run `fn` for one path, turning any failure into a PathFailure naming it. */
export async function onPath<T> (path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof PathFailure || err instanceof ExitWith) throw err
    throw new PathFailure(path, err)
  }
}

/** A REMOTE argument as a normalised absolute path; a bad one fails naming it as typed. */
export function remoteArg (raw: string): Promise<string> {
  return onPath(raw, async () => toRemotePath(raw))
}
