// `hissdfs setrep N PATH`: change the replication factor of a file (or of every file
// under a directory); the NameServer adds or trims replicas in the background.
import type { Command } from 'commander'
import { clientAction, onPath, remoteArg } from '../run-client.js'
import { writeOut } from '../output.js'
import { parseReplication } from './put.js'

export function registerSetrep (program: Command): void {
  program.command('setrep')
    .description('set the replication factor of a file, or of every file under a directory')
    .argument('<n>', 'replication factor')
    .argument('<path>', 'remote path')
    .action(clientAction('setrep', async (ctx, args) => {
      const raw = args[1] as string
      const p = await remoteArg(raw)
      const n = await onPath(p, async () => parseReplication(args[0] as string) as number)
      const files = await onPath(p, () => ctx.fs.setReplication(p, n))
      await writeOut(`replication ${n} set on ${files} file(s) under ${p}\n`)
    }))
}
