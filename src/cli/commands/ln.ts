// `hissdfs ln -s TARGET PATH`: make a symbolic link (hard links are not supported).
import type { Command } from 'commander'
import { HissError } from '../../common/errors.js'
import { clientAction, onPath, remoteArg } from '../run-client.js'
import { PathFailure } from '../errors.js'

export function registerLn (program: Command): void {
  program.command('ln')
    .description('make a symbolic link PATH pointing to TARGET (stored as given)')
    .option('-s, --symbolic', 'make a symbolic link (required)')
    .argument('<target>', 'link target, stored verbatim')
    .argument('<path>', 'remote path of the new link')
    .action(clientAction<{ symbolic?: boolean }>('ln', async (ctx, args, opts) => {
      const raw = args[1] as string
      const p = await remoteArg(raw)
      if (opts.symbolic !== true) throw new PathFailure(p, new HissError('ENOTSUP', 'hard links are not supported; use ln -s'))
      await onPath(p, () => ctx.fs.symlink(args[0] as string, p))
    }))
}
