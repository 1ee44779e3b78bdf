// `hissdfs ping`: is the NameServer there, and what does the cluster look like?
import type { Command } from 'commander'
import { clientAction } from '../run-client.js'
import { humanBytes } from '../format.js'
import { writeOut } from '../output.js'

export function registerPing (program: Command): void {
  program.command('ping')
    .description('check that the NameServer answers')
    .action(clientAction('ping', async ctx => {
      const r = await ctx.fs.ping()
      await writeOut(`pong from ${ctx.cfg['nameserver.address']}: protocol ${r.version}, ${r.liveDataServers} live dataserver(s), ` +
        `safe mode ${r.safeMode ? 'ON' : 'off'}, block size ${humanBytes(r.blockSize)}, replication ${r.replication}\n`)
    }))
}
