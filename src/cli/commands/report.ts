// `hissdfs report [--json]`: the cluster as the NameServer sees it (DataServers,
// capacity, block health). --json prints the ReportReply (a stable interface).
import type { Command } from 'commander'
import type { ReportReply } from '../../common/protocol.js'
import { clientAction } from '../run-client.js'
import { humanBytes, table } from '../format.js'
import { printJson, writeLines } from '../output.js'

export function describeReport (r: ReportReply): string[] {
  const live = r.dataservers.filter(d => d.state === 'live').length
  const lines = [
    `Safe mode: ${r.safeMode ? 'ON' : 'off'}`,
    `Namespace: ${r.files} file(s), ${r.dirs} director${r.dirs === 1 ? 'y' : 'ies'}`,
    `Capacity: ${humanBytes(r.capacity)}  Used: ${humanBytes(r.used)}  Remaining: ${humanBytes(r.remaining)}`,
    `Blocks: ${r.blocks.total} total, ${r.blocks.underReplicated} under-replicated, ${r.blocks.missing} missing, ` +
      `${r.blocks.corrupt} corrupt, ${r.blocks.pendingDeletion} pending deletion`,
    `DataServers: ${live} live, ${r.dataservers.length - live} dead`,
  ]
  if (r.dataservers.length > 0) {
    lines.push('')
    const rows = [['ID', 'ADDRESS', 'STATE', 'CAPACITY', 'USED', 'REMAINING', 'BLOCKS', 'LAST HEARTBEAT']]
    for (const d of r.dataservers) {
      rows.push([d.id, d.address, d.state, humanBytes(d.capacity), humanBytes(d.used), humanBytes(d.remaining),
        String(d.blocks), `${(d.lastHeartbeatMsAgo / 1000).toFixed(1)} s ago`])
    }
    lines.push(...table(rows, [6]))
  }
  return lines
}

export function registerReport (program: Command): void {
  program.command('report')
    .description('show DataServers, capacity and block health')
    .option('--json', 'print the ReportReply as JSON')
    .action(clientAction<{ json?: boolean }>('report', async (ctx, _args, opts) => {
      const r = await ctx.fs.report()
      if (opts.json === true) await printJson(r)
      else await writeLines(describeReport(r))
    }))
}
