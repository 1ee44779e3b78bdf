// `hissdfs mkdir [-p] PATH...`: make directories (-p: with parents, no error if present).
import type { Command } from 'commander'
import { clientAction } from '../run-client.js'
import { displayPath, toRemotePath } from '../remote-path.js'
import { HissError } from '../../common/errors.js'

interface MkdirOpts { parents?: boolean, mode?: string }

export function registerMkdir (program: Command): void {
  program.command('mkdir')
    .description('make directories')
    .option('-p, --parents', 'make parent directories as needed; no error if the directory exists')
    .option('-m, --mode <octal>', 'permission bits, e.g. 750')
    .argument('<path...>', 'remote paths')
    .action(clientAction<MkdirOpts>('mkdir', async (ctx, args, opts) => {
      for (const raw of args[0] as string[]) {
        try {
          const p = toRemotePath(raw)
          let mode: number | undefined
          if (opts.mode !== undefined) {
            if (!/^[0-7]{1,4}$/.test(opts.mode)) throw HissError.EINVAL(`bad mode ${JSON.stringify(opts.mode)}`)
            mode = parseInt(opts.mode, 8)
          }
          await ctx.fs.mkdir(p, { parents: opts.parents === true, ...(mode === undefined ? {} : { mode }) })
        } catch (err) {
          ctx.fail(displayPath(raw), err)
        }
      }
    }))
}
