// `hissdfs cat REMOTE...`: stream files to stdout, with backpressure (a slow reader
// slows the cluster read, nothing piles up in memory). Like cat(1), a failing file is
// reported and the rest are still printed.
import { pipeline } from 'node:stream/promises'
import type { Command } from 'commander'
import { clientAction } from '../run-client.js'
import { displayPath, toRemotePath } from '../remote-path.js'
import { ExitWith } from '../errors.js'

function isBrokenPipe (err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'EPIPE'
}

export function registerCat (program: Command): void {
  program.command('cat')
    .description('print remote files to stdout')
    .argument('<remote...>', 'remote files')
    .action(clientAction('cat', async (ctx, args) => {
      for (const raw of args[0] as string[]) {
        try {
          const p = toRemotePath(raw)
          await pipeline(ctx.fs.createReadStream(p), process.stdout, { end: false })
        } catch (err) {
          // The reader went away (`| head`): stop quietly, as cat(1) does on SIGPIPE.
          if (isBrokenPipe(err)) throw new ExitWith(0)
          ctx.fail(displayPath(raw), err)
        }
      }
    }))
}
