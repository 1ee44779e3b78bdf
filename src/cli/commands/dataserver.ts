// `hissdfs dataserver --config F [--port P]`: run a DataServer in the foreground. A
// clean stop (SIGINT/SIGTERM) unregisters from the NameServer first.
import type { Command } from 'commander'
import { HissError } from '../../common/errors.js'
import { tuneGc } from '../../common/gc-tuning.js'
import { runDaemon } from '../daemon.js'

export function parsePort (v: string | undefined): number | undefined {
  if (v === undefined) return undefined
  if (!/^[0-9]{1,5}$/.test(v) || Number(v) > 65535) throw new HissError('CONFIG', `bad --port ${JSON.stringify(v)}`)
  return Number(v)
}

export function registerDataserver (program: Command): void {
  program.command('dataserver')
    .description('run a DataServer (block storage) in the foreground')
    .option('-p, --port <port>', 'listen on this port instead of the one in dataserver.address')
    .action(async (opts: { port?: string }, cmd: Command) => {
      const { config } = cmd.optsWithGlobals<{ config?: string }>()
      let port: number | undefined
      try {
        port = parsePort(opts.port)
      } catch (err) {
        process.stderr.write(`hissdfs: ${(err as Error).message}\n`)
        process.exit(2)
      }
      // Before any block data moves (see gc-tuning.ts).
      tuneGc()
      const code = await runDaemon({
        role: 'dataserver',
        configFlag: config,
        defaultConfigName: 'dataserver-1.json',
        async create (cfg, log) {
          const { DataServer } = await import('../../dataserver/dataserver.js')
          const ds = new DataServer(cfg, { log, ...(port === undefined ? {} : { port }) })
          // Clean stop = unregister first, so the NameServer re-replicates at once
          // instead of waiting for the heartbeat to time out.
          return { start: () => ds.start(), close: () => ds.close({ unregister: true }), id: ds.id }
        },
        banner: (_cfg, address, daemon) => `dataserver ${daemon.id ?? '?'} listening on ${address}`,
      })
      process.exit(code)
    })
}
