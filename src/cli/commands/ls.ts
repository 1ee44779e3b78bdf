// `hissdfs ls [-l] [-R] [--json] [PATH]`: a directory lists its entries by name (with
// -R, every entry below it by full path); a file lists just itself. -l adds mode,
// replication, owner uid, group gid, size and mtime, like `hdfs dfs -ls`. --json prints
// the same entries as an array of FileStat objects with their `name` and full `path`.
import type { Command } from 'commander'
import type { FileStat } from '../../common/protocol.js'
import { joinPath, nameOf } from '../../common/paths.js'
import { clientAction, onPath, remoteArg } from '../run-client.js'
import { modeString, shortTime, table } from '../format.js'
import { printJson, writeLines } from '../output.js'
import { walk } from '../walk.js'

interface LsOpts { long?: boolean, recursive?: boolean, json?: boolean }

function longRow (st: FileStat, name: string): string[] {
  const shown = st.type === 'symlink' && st.target !== undefined ? `${name} -> ${st.target}` : name
  return [
    modeString(st.type, st.mode),
    st.type === 'file' ? String(st.replication) : '-',
    String(st.uid),
    String(st.gid),
    String(st.type === 'dir' ? 0 : st.size),
    shortTime(st.mtimeNs),
    shown,
  ]
}

export function registerLs (program: Command): void {
  program.command('ls')
    .description('list a directory (default /) or show one file')
    .option('-l, --long', 'long format: mode, replication, uid, gid, size, mtime, name')
    .option('-R, --recursive', 'list subdirectories recursively, by full path')
    .option('--json', 'print a JSON array: each entry\'s FileStat with its name and full path')
    .argument('[path]', 'remote path', '/')
    .action(clientAction<LsOpts>('ls', async (ctx, args, opts) => {
      const raw = args[0] as string
      const path = await remoteArg(raw)
      const st = await onPath(path, () => ctx.fs.stat(path))
      // name: what the text forms print; full: the entry's absolute path.
      let items: Array<{ st: FileStat, name: string, full: string }>
      if (st.type !== 'dir') {
        const own = await onPath(path, () => ctx.fs.stat(path, { nofollow: true }))
        items = [{ st: own, name: path, full: path }]
      } else if (opts.recursive === true) {
        items = []
        await walk(ctx.fs, path, (e, p) => { items.push({ st: e, name: p, full: p }) }, (p, e) => ctx.fail(p, e))
      } else {
        const entries = await onPath(path, () => ctx.fs.list(path))
        items = entries.map(e => ({ st: e, name: e.name, full: joinPath(path, e.name) }))
      }
      if (opts.json === true) {
        await printJson(items.map(i => ({ ...i.st, name: nameOf(i.full), path: i.full })))
      } else if (opts.long === true) {
        await writeLines(table(items.map(i => longRow(i.st, i.name)), [1, 4]))
      } else {
        await writeLines(items.map(i => i.name))
      }
    }))
}
