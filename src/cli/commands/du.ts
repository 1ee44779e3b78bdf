// `hissdfs du [-s] [PATH] [--json]`: bytes used, per entry of a directory (or just
// PATH's total with -s, or for a file). spaceConsumed counts every replica.
import type { Command } from 'commander'
import { joinPath } from '../../common/paths.js'
import { clientAction, onPath, remoteArg } from '../run-client.js'
import { printJson, writeLines } from '../output.js'
import { table } from '../format.js'

interface DuOpts { summary?: boolean, json?: boolean }

interface DuRow { path: string, files: number, dirs: number, bytes: number, spaceConsumed: number }

export function registerDu (program: Command): void {
  program.command('du')
    .description('bytes used per entry of PATH (default /); -s: PATH\'s total only')
    .option('-s, --summary', 'only the total for PATH')
    .option('--json', 'print JSON: one object with -s or for a file, else an array')
    .argument('[path]', 'remote path', '/')
    .action(clientAction<DuOpts>('du', async (ctx, args, opts) => {
      const raw = args[0] as string
      const p = await remoteArg(raw)
      const st = await onPath(p, () => ctx.fs.stat(p))
      const one = async (path: string): Promise<DuRow> => ({ path, ...await ctx.fs.du(path) })
      let rows: DuRow[]
      const single = opts.summary === true || st.type !== 'dir'
      if (single) {
        rows = [await onPath(p, () => one(p))]
      } else {
        const entries = await onPath(p, () => ctx.fs.list(p))
        rows = []
        for (const e of entries) {
          const child = joinPath(p, e.name)
          try { rows.push(await one(child)) } catch (err) { ctx.fail(child, err) }
        }
      }
      if (opts.json === true) await printJson(single ? rows[0] : rows)
      else await writeLines(table(rows.map(r => [String(r.bytes), String(r.spaceConsumed), r.path]), [0, 1]))
    }))
}
