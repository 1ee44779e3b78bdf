#!/usr/bin/env node
// hissdfs-mount [--config F] MOUNTPOINT: mount the cluster and stay in the foreground.
// SIGINT/SIGTERM commit open files, unmount and exit 0; so does `fusermount -u`.
// Anything that prevents mounting is one line on stderr and a non-zero exit.
import { Command } from 'commander'
import { SystemClock } from '../common/clock.js'
import { loadConfigFile, type HissConfig } from '../common/config.js'
import { isHissError } from '../common/errors.js'
import { createLogger, type Logger } from '../common/log.js'
import { resolveConfigPath } from '../common/config-path.js'
import { createClient } from '../client/hiss-client.js'
import { processIdentity } from '../client/identity.js'
import { tuneGc } from '../common/gc-tuning.js'
import { HissMount } from './mount.js'


function fail (msg: string): never {
  process.stderr.write(`hissdfs-mount: ${msg}\n`)
  process.exit(1)
}

function describe (err: unknown): string {
  if (isHissError(err)) return err.message
  return (err as Error)?.message ?? String(err)
}

async function withTimeout<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    t = setTimeout(() => { reject(new Error(`${what}: no answer within ${ms} ms`)) }, ms)
  })
  try {
    return await Promise.race([p, timeout])
  } finally {
    clearTimeout(t)
  }
}

async function run (mountpointArg: string, opts: { config?: string }): Promise<void> {
  tuneGc()
  let cfg: HissConfig
  try {
    cfg = loadConfigFile(resolveConfigPath(opts.config, process.env, 'client.json'))
  } catch (err) {
    fail(describe(err))
  }
  const log: Logger = createLogger('mount', cfg['log.level'])
  const clock = new SystemClock()
  const identity = processIdentity()
  const client = createClient(cfg, { identity, clock, log: log.child('client') })

  // A signal before the mount is up: stop at the next step instead of dying halfway
  // (which could leave a dead mount behind).
  let stopBeforeMounted: string | undefined
  const early = (sig: string): void => { stopBeforeMounted = sig }
  const onEarlyInt = (): void => { early('SIGINT') }
  const onEarlyTerm = (): void => { early('SIGTERM') }
  process.on('SIGINT', onEarlyInt)
  process.on('SIGTERM', onEarlyTerm)

  try {
    await withTimeout(client.ping(), cfg['client.timeout.ms'], 'ping')
  } catch (err) {
    await client.close().catch(() => {})
    if (stopBeforeMounted !== undefined) process.exit(1)
    fail(`cannot reach the NameServer at ${cfg['nameserver.address']}: ${describe(err)}`)
  }

  const mount = new HissMount({
    mountpoint: mountpointArg,
    cfg,
    client,
    identity,
    makeClient: id => createClient(cfg, { identity: id, clock, log: log.child('client') }),
    clock,
    log,
  })
  try {
    await mount.mount()
  } catch (err) {
    await client.close().catch(() => {})
    fail(describe(err))
  }

  // A file system daemon must not die on one bad request: log and keep serving.
  process.on('unhandledRejection', err => { log.error('unhandled rejection', { err }) })
  process.on('uncaughtException', err => { log.error('uncaught exception', { err }) })

  let signals = 0
  const onSignal = (sig: string): void => {
    signals++
    if (signals > 1) {
      process.stderr.write(`hissdfs-mount: second ${sig}, exiting without a clean unmount\n`)
      process.exit(1)
    }
    log.info('unmounting', { signal: sig })
    mount.unmount().then(failed => {
      if (failed > 0) process.stderr.write(`hissdfs-mount: ${failed} file(s) could not be committed\n`)
      process.exit(failed > 0 ? 1 : 0)
    }, err => {
      process.stderr.write(`hissdfs-mount: unmount failed: ${describe(err)}\n`)
      process.exit(1)
    })
  }
  process.off('SIGINT', onEarlyInt)
  process.off('SIGTERM', onEarlyTerm)
  process.on('SIGINT', () => { onSignal('SIGINT') })
  process.on('SIGTERM', () => { onSignal('SIGTERM') })

  process.stdout.write(`mounted at ${mount.mountpoint}\n`)
  if (stopBeforeMounted !== undefined) onSignal(stopBeforeMounted)

  const why = await mount.ended
  if (why === 'external') {
    log.info('unmounted externally, exiting')
    process.exit(0)
  }
}

const program = new Command()
program
  .name('hissdfs-mount')
  .description('Mount a HissDFS cluster with FUSE and serve it in the foreground')
  .argument('<mountpoint>', 'empty directory to mount on')
  .option('--config <file>', 'config file (default: $HISSDFS_CONFIG, else configs/client.json)')
  .action(async (mountpoint: string, opts: { config?: string }) => { await run(mountpoint, opts) })

program.parseAsync(process.argv).catch(err => { fail(describe(err)) })
