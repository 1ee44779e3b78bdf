// `hissdfs chmod [-R] MODE PATH...`: set permission bits on the NameServer, as chmod(1)
// does on a local file (octal or symbolic modes, see mode-spec.ts). Only the owner or
// the superuser may; the NameServer checks. Symlinks are left alone (their mode is
// not used), as chmod -R does.
import type { Command } from 'commander'
import { clientAction, onPath } from '../run-client.js'
import { parseMode } from '../mode-spec.js'
import { forEachTarget, type RecursiveOpts } from '../walk.js'

export function registerChmod (program: Command): void {
  program.command('chmod')
    .description('change permission bits (octal, or symbolic like u+x,go-w)')
    .option('-R, --recursive', 'also every file and directory below each PATH')
    .argument('<mode>', 'octal (755) or symbolic (u+rwx,g-w,o=r)')
    .argument('<path...>', 'remote paths')
    .action(clientAction<RecursiveOpts>('chmod', async (ctx, args, opts) => {
      const change = await onPath(args[0] as string, async () => parseMode(args[0] as string))
      await forEachTarget(ctx, args[1] as string[], opts.recursive === true, async (path, st, below) => {
        // Symlinks below are left alone (their mode is not used), as chmod -R does.
        if (below && st.type === 'symlink') return
        await ctx.fs.setattr(path, { mode: change(st.mode, st.type === 'dir'), ...(below ? { nofollow: true } : {}) })
      })
    }))
}
