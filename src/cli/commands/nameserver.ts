// `hissdfs nameserver --config F`: run the NameServer in the foreground.
import type { Command } from 'commander'
import { runDaemon } from '../daemon.js'

export function registerNameserver (program: Command): void {
  program.command('nameserver')
    .description('run the NameServer (namespace and block map) in the foreground')
    .action(async (_opts: unknown, cmd: Command) => {
      const { config } = cmd.optsWithGlobals<{ config?: string }>()
      const code = await runDaemon({
        role: 'nameserver',
        configFlag: config,
        defaultConfigName: 'nameserver.json',
        async create (cfg, log) {
          // Loaded only here: client commands should not pay for SQLite and Express.
          const { NameServer } = await import('../../nameserver/nameserver.js')
          return new NameServer(cfg, { log })
        },
        banner: (_cfg, address) => `nameserver listening on ${address}`,
      })
      // Daemons end explicitly: background timers or pooled sockets must not keep a
      // stopped server's process alive.
      process.exit(code)
    })
}
