// `hissdfs fsck [PATH] [--json]`: check the replicas of every block under PATH.
// Exit 0 when healthy, 1 when any block is missing or corrupt (under-replicated blocks
// are listed but, as in HDFS, do not make the file system unhealthy).
import type { Command } from 'commander'
import type { FsckReply } from '../../common/protocol.js'
import { clientAction, onPath, remoteArg } from '../run-client.js'
import { EXIT_FAIL, EXIT_OK } from '../errors.js'
import { printJson, writeLines } from '../output.js'

export function describeFsck (r: FsckReply): string[] {
  const lines: string[] = []
  for (const e of r.entries) {
    for (const b of e.blocks) {
      const live = b.replicas.filter(x => x.state === 'live').length
      if (live >= e.replication && b.replicas.every(x => x.state === 'live')) continue
      const where = b.replicas.map(x => `${x.address}(${x.state})`).join(' ')
      const what = live === 0 ? 'MISSING' : live < e.replication ? 'UNDER-REPLICATED' : 'has bad replicas'
      lines.push(`${e.path}: block ${b.id} gen ${b.gen} (${b.length} bytes${b.zero === true ? ' of zeros' : ''}): ${what}, ${live}/${e.replication} live [${where}]`)
    }
  }
  if (lines.length > 0) lines.push('')
  lines.push(
    `Status: ${r.healthy ? 'HEALTHY' : 'CORRUPT'}`,
    ` Path: ${r.path}`,
    ` Files: ${r.files}`,
    ` Blocks: ${r.blocks}`,
    ` Under-replicated blocks: ${r.underReplicated}`,
    ` Missing blocks: ${r.missing}`,
    ` Corrupt blocks: ${r.corrupt}`,
  )
  return lines
}

export function registerFsck (program: Command): void {
  program.command('fsck')
    .description('check block health under PATH (default /); exit 1 if a block is missing or corrupt')
    .option('--json', 'print the FsckReply as JSON')
    .argument('[path]', 'remote path', '/')
    .action(clientAction<{ json?: boolean }>('fsck', async (ctx, args, opts) => {
      const raw = args[0] as string
      const p = await remoteArg(raw)
      const r = await onPath(p, () => ctx.fs.fsck(p))
      if (opts.json === true) await printJson(r)
      else await writeLines(describeFsck(r))
      return r.healthy ? EXIT_OK : EXIT_FAIL
    }))
}
