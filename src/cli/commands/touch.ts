// `hissdfs touch PATH...`: create an empty file if missing, else set its times to now.
import type { Command } from 'commander'
import { nowNs } from '../../common/paths.js'
import { HissError } from '../../common/errors.js'
import { clientAction } from '../run-client.js'
import { displayPath, toRemotePath } from '../remote-path.js'

export function registerTouch (program: Command): void {
  program.command('touch')
    .description('create empty files, or update the times of existing ones')
    .argument('<path...>', 'remote paths')
    .action(clientAction('touch', async (ctx, args) => {
      for (const raw of args[0] as string[]) {
        try {
          const p = toRemotePath(raw)
          try {
            await ctx.fs.create(p, { exclusive: true })
          } catch (err) {
            if (!(err instanceof HissError && err.code === 'EEXIST')) throw err
            const now = nowNs(Date.now())
            await ctx.fs.setattr(p, { atimeNs: now, mtimeNs: now })
          }
        } catch (err) {
          ctx.fail(displayPath(raw), err)
        }
      }
    }))
}
