// `hissdfs exists PATH`: exit 0 if the path exists, 1 if not, 2 on any error.
import type { Command } from 'commander'
import { clientAction } from '../run-client.js'
import { toRemotePath } from '../remote-path.js'
import { EXIT_FAIL, EXIT_OK, EXIT_USAGE, ExitWith, formatFailure } from '../errors.js'
import { writeErr } from '../output.js'

export function registerExists (program: Command): void {
  program.command('exists')
    .description('exit 0 if PATH exists, 1 if it does not, 2 on error (prints nothing on success)')
    .argument('<path>', 'remote path')
    .action(clientAction('exists', async (ctx, args) => {
      const raw = args[0] as string
      try {
        const p = toRemotePath(raw)
        return (await ctx.fs.exists(p)) ? EXIT_OK : EXIT_FAIL
      } catch (err) {
        writeErr(formatFailure('exists', raw, err, ctx.debug))
        throw new ExitWith(EXIT_USAGE)
      }
    }))
}
