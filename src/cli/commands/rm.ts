// `hissdfs rm [-r] [-f] PATH...`: remove files; directories only with -r (recursive).
import type { Command } from 'commander'
import { HissError } from '../../common/errors.js'
import { clientAction } from '../run-client.js'
import { displayPath, toRemotePath } from '../remote-path.js'

interface RmOpts { recursive?: boolean, force?: boolean }

export function registerRm (program: Command): void {
  program.command('rm')
    .description('remove files (and directories with -r)')
    .option('-r, --recursive', 'remove directories and their contents')
    .option('-f, --force', 'ignore missing paths')
    .argument('<path...>', 'remote paths')
    .action(clientAction<RmOpts>('rm', async (ctx, args, opts) => {
      const recursive = opts.recursive === true
      for (const raw of args[0] as string[]) {
        try {
          const p = toRemotePath(raw)
          if (p === '/') throw HissError.EINVAL('refusing to remove /')
          const st = await ctx.fs.stat(p, { nofollow: true })
          if (st.type === 'dir' && !recursive) throw HissError.EISDIR()
          await ctx.fs.delete(p, { recursive })
        } catch (err) {
          if (opts.force === true && err instanceof HissError && err.code === 'ENOENT') continue
          ctx.fail(displayPath(raw), err)
        }
      }
    }))
}
