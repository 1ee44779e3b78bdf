// `hissdfs put LOCAL|- REMOTE`: stream a local file (or stdin) into the cluster. The
// file appears only once complete, and replaces an existing file atomically (like
// `hdfs dfs -put -f`: overwrite is the default; `--no-overwrite` refuses instead).
// A REMOTE that is an existing directory receives the file under the local basename.
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import type { Command } from 'commander'
import { HissError, isHissError } from '../../common/errors.js'
import type { FileStat } from '../../common/protocol.js'
import type { HissFs } from '../../client/types.js'
import { clientAction, onPath, remoteArg } from '../run-client.js'
import { intoDirectory } from '../remote-path.js'
import { PathFailure } from '../errors.js'
import { createProgress } from '../progress.js'

interface PutOpts { overwrite?: boolean, replication?: string }

/** Whole-file attempts of a put from a local file whose write session was lost. */
export const PUT_SESSION_ATTEMPTS = 3

export function parseReplication (v: string | undefined): number | undefined {
  if (v === undefined) return undefined
  if (!/^[0-9]{1,2}$/.test(v) || Number(v) < 1) throw HissError.EINVAL(`bad replication factor ${JSON.stringify(v)}`)
  return Number(v)
}

/** stat, with "missing" as undefined. */
export async function statOrMissing (fs: HissFs, path: string): Promise<FileStat | undefined> {
  try {
    return await fs.stat(path)
  } catch (err) {
    if (err instanceof HissError && err.code === 'ENOENT') return undefined
    throw new PathFailure(path, err)
  }
}

export function registerPut (program: Command): void {
  program.command('put')
    .description('copy a local file (or - for stdin) into the cluster; overwrites an existing file')
    .argument('<local>', 'local file, or - for stdin')
    .argument('<remote>', 'remote file, or existing remote directory')
    .option('--no-overwrite', 'fail if REMOTE already exists')
    .option('-r, --replication <n>', 'replication factor of the new file')
    .action(clientAction<PutOpts>('put', async (ctx, args, opts) => {
      const local = args[0] as string
      const rawRemote = args[1] as string
      let remote = await remoteArg(rawRemote)
      const replication = await onPath(remote, async () => parseReplication(opts.replication))
      let size: number | undefined
      let mode: number | undefined
      if (local !== '-') {
        const st = await onPath(local, () => stat(local))
        if (st.isDirectory()) throw new PathFailure(local, HissError.EISDIR())
        size = st.size
        mode = st.mode & 0o777
      }
      const target = await statOrMissing(ctx.fs, remote)
      if (target?.type === 'dir') {
        if (local === '-') throw new PathFailure(remote, HissError.EISDIR())
        remote = await onPath(remote, async () => intoDirectory(remote, local))
      }
      const progress = await createProgress(`put ${remote}`, size)
      try {
        await onPath(remote, async () => {
          for (let attempt = 1; ; attempt++) {
            const input: Readable = local === '-' ? process.stdin : createReadStream(local, { highWaterMark: 1024 * 1024 })
            try {
              await ctx.fs.put(remote, input, {
                overwrite: opts.overwrite !== false,
                ...(mode === undefined ? {} : { mode }),
                ...(replication === undefined ? {} : { replication }),
                onProgress: b => { progress.update(b) },
                // A local file can be read again: a failed block is resent from it, no spool copy.
                ...(local === '-' ? {} : { replay: (offset: number, length: number) => createReadStream(local, { start: offset, end: offset + length - 1, highWaterMark: 1024 * 1024 }) }),
              })
              return
            } catch (err) {
              // The write session is gone (its lease lapsed while the put stalled, or it
              // was opened by a NameServer that did not store sessions): nothing was
              // committed, so a local file is sent again from the start. Stdin cannot be
              // read twice.
              if (local === '-' || attempt >= PUT_SESSION_ATTEMPTS || !isHissError(err) || err.code !== 'LEASE_EXPIRED') throw err
              ctx.log.warn('write session lost, sending the file again', { path: remote, attempt })
              progress.update(0)
            } finally {
              if (local !== '-') input.destroy()
            }
          }
        })
      } finally {
        progress.stop()
      }
    }))
}
