// `hissdfs get REMOTE LOCAL`: copy a file out of the cluster into LOCAL.tmp-xxxx,
// then rename it over LOCAL, so LOCAL is never seen half-written. LOCAL may be an
// existing directory (the file lands under the remote basename) or - for stdout.
import { closeSync, fsyncSync, openSync } from 'node:fs'
import { rename, stat, unlink } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join, basename } from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { Command } from 'commander'
import { HissError } from '../../common/errors.js'
import { clientAction, onPath, remoteArg } from '../run-client.js'
import { PathFailure } from '../errors.js'
import { createProgress } from '../progress.js'
import { writeAllSync } from '../../common/writev-all.js'

async function localDestination (local: string, remote: string): Promise<string> {
  try {
    const st = await stat(local)
    if (st.isDirectory()) return join(local, basename(remote))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new PathFailure(local, err)
  }
  return local
}

export function registerGet (program: Command): void {
  program.command('get')
    .description('copy a remote file to a local file or directory (- for stdout)')
    .argument('<remote>', 'remote file')
    .argument('<local>', 'local file or directory, or -')
    .action(clientAction('get', async (ctx, args) => {
      const rawRemote = args[0] as string
      const local = args[1] as string
      const remote = await remoteArg(rawRemote)
      const st = await onPath(remote, () => ctx.fs.stat(remote))
      if (st.type === 'dir') throw new PathFailure(remote, HissError.EISDIR())
      if (local === '-') {
        await onPath(remote, () => pipeline(ctx.fs.createReadStream(remote), process.stdout, { end: false }))
        return
      }
      const dest = await localDestination(local, remote)
      const tmp = `${dest}.tmp-${randomBytes(6).toString('hex')}`
      const progress = await createProgress(`get ${remote}`, st.size)
      // Interrupted: leave no temp file behind.
      const onSignal = (): void => { unlink(tmp).catch(() => {}).finally(() => process.exit(130)) }
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
      let got = 0
      try {
        // Written straight from the receive buffer (HissFs.readInto), then fsync'd. A
        // failed local write (a full disk) names the local file, not the remote one.
        const fd = await onPath(dest, async () => openSync(tmp, 'wx', st.mode & 0o777))
        try {
          await onPath(remote, () => ctx.fs.readInto(remote, bytes => {
            try {
              writeAllSync(fd, bytes)
            } catch (err) {
              throw new PathFailure(dest, err)
            }
            got += bytes.length
            progress.update(got)
          }))
          await onPath(dest, async () => { fsyncSync(fd) })
        } finally {
          closeSync(fd)
        }
        // The read ended early without an error: never pass off a short copy as whole.
        if (got < st.size) throw new PathFailure(remote, HissError.EIO(`short read: ${got} of ${st.size} bytes`))
        await onPath(dest, () => rename(tmp, dest))
      } catch (err) {
        await unlink(tmp).catch(() => {})
        throw err
      } finally {
        progress.stop()
        process.off('SIGINT', onSignal)
        process.off('SIGTERM', onSignal)
      }
    }))
}
