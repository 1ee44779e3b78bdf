// `hissdfs mv SRC DST`: atomic rename on the NameServer. A DST that is an existing
// directory receives SRC under its own name; an existing file DST is replaced (POSIX).
import type { Command } from 'commander'
import { clientAction, onPath, remoteArg } from '../run-client.js'
import { intoDirectory } from '../remote-path.js'
import { statOrMissing } from './put.js'

export function registerMv (program: Command): void {
  program.command('mv')
    .description('move or rename a file or directory')
    .argument('<src>', 'remote source')
    .argument('<dst>', 'remote destination (an existing directory receives SRC)')
    .action(clientAction('mv', async (ctx, args) => {
      const rawSrc = args[0] as string
      const rawDst = args[1] as string
      const src = await remoteArg(rawSrc)
      let dst = await remoteArg(rawDst)
      const target = await statOrMissing(ctx.fs, dst)
      if (target?.type === 'dir' && dst !== src) dst = await onPath(dst, async () => intoDirectory(dst, src))
      await onPath(src, () => ctx.fs.rename(src, dst))
    }))
}
