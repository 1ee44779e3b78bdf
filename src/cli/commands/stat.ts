// `hissdfs stat [-L] PATH [--json]`: every attribute; --json prints the FileStat as the
// protocol defines it (a stable interface).
import type { Command } from 'commander'
import type { FileStat } from '../../common/protocol.js'
import { clientAction, onPath, remoteArg } from '../run-client.js'
import { longTime, modeString, octalMode } from '../format.js'
import { printJson, writeLines } from '../output.js'

interface StatOpts { json?: boolean, dereference?: boolean }

export function describeStat (path: string, st: FileStat): string[] {
  const name = st.type === 'symlink' && st.target !== undefined ? `${path} -> ${st.target}` : path
  const blocks = st.type === 'file' && st.blockSize > 0 ? Math.ceil(st.size / st.blockSize) : 0
  const lines = [
    `  File: ${name}`,
    `  Type: ${st.type === 'dir' ? 'directory' : st.type === 'symlink' ? 'symbolic link' : 'regular file'}`,
    `  Size: ${st.size}`,
  ]
  if (st.allocated !== undefined) lines.push(`Allocated: ${st.allocated}  (its blocks of zeros are stored sparse)`)
  if (st.type === 'file') lines.push(`Blocks: ${blocks}  Block size: ${st.blockSize}  Replication: ${st.replication}`)
  lines.push(
    ` Inode: ${st.ino}  Links: ${st.nlink}`,
    `Access: (${octalMode(st.mode)}/${modeString(st.type, st.mode)})  Uid: ${st.uid}  Gid: ${st.gid}`,
    `Access: ${longTime(st.atimeNs)}`,
    `Modify: ${longTime(st.mtimeNs)}`,
    `Change: ${longTime(st.ctimeNs)}`,
  )
  return lines
}

export function registerStat (program: Command): void {
  program.command('stat')
    .description('show a file\'s attributes (a symlink itself unless -L)')
    .option('-L, --dereference', 'follow a final symlink')
    .option('--json', 'print the FileStat as JSON')
    .argument('<path>', 'remote path')
    .action(clientAction<StatOpts>('stat', async (ctx, args, opts) => {
      const raw = args[0] as string
      const p = await remoteArg(raw)
      const st = await onPath(p, () => ctx.fs.stat(p, { nofollow: opts.dereference !== true }))
      if (opts.json === true) await printJson(st)
      else await writeLines(describeStat(p, st))
    }))
}
