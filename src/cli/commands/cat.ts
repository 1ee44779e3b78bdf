// `hissdfs cat REMOTE...`: stream files to stdout, with backpressure (a slow reader
// slows the cluster read, nothing piles up in memory). Like cat(1), a failing file is
// reported and the rest are still printed.
import { createWriteStream, fstatSync } from 'node:fs'
import { isatty } from 'node:tty'
import type { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Command } from 'commander'
import { clientAction } from '../run-client.js'
import { displayPath, toRemotePath } from '../remote-path.js'
import { ExitWith } from '../errors.js'
import { writeAllSync } from '../../common/writev-all.js'

function isBrokenPipe (err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'EPIPE'
}

/**
 * Where the bytes go. Node writes to a stdout that is a regular file synchronously,
 * stalling the network reads on each write; an ordinary file stream on fd 1 overlaps
 * them (it is ended and waited for before the command returns).
 */
function stdoutSink (): { out: Writable, done: () => Promise<void> } {
  let isFile = false
  try { isFile = fstatSync(1).isFile() } catch {}
  if (!isFile) return { out: process.stdout, done: async () => {} }
  const out = createWriteStream('', { fd: 1, autoClose: false, highWaterMark: 1024 * 1024 })
  return {
    out,
    done: () => new Promise((resolve, reject) => {
      out.once('error', reject)
      out.end(() => { resolve() })
    }),
  }
}

/**
 * Whether stdout takes plain blocking writes (a regular file or a device such as
 * /dev/null, not a terminal): then the bytes are written straight from the receive
 * buffer (HissFs.readInto), without a stream's copies and allocations per chunk.
 */
function stdoutTakesSyncWrites (): boolean {
  try {
    const st = fstatSync(1)
    return st.isFile() || (st.isCharacterDevice() && !isatty(1))
  } catch {
    return false
  }
}

export function registerCat (program: Command): void {
  program.command('cat')
    .description('print remote files to stdout')
    .argument('<remote...>', 'remote files')
    .action(clientAction('cat', async (ctx, args) => {
      const direct = stdoutTakesSyncWrites()
      const sink = stdoutSink()
      for (const raw of args[0] as string[]) {
        try {
          const p = toRemotePath(raw)
          if (direct) await ctx.fs.readInto(p, bytes => { writeAllSync(1, bytes) })
          else await pipeline(ctx.fs.createReadStream(p), sink.out, { end: false })
        } catch (err) {
          // The reader went away (`| head`): stop quietly, as cat(1) does on SIGPIPE.
          if (isBrokenPipe(err)) throw new ExitWith(0)
          ctx.fail(displayPath(raw), err)
        }
      }
      await sink.done()
    }))
}
