// The `hissdfs` command line: one file per command under commands/.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Command } from 'commander'
import { packageRoot } from '../common/config-path.js'
import { registerNameserver } from './commands/nameserver.js'
import { registerDataserver } from './commands/dataserver.js'
import { registerPing } from './commands/ping.js'
import { registerExists } from './commands/exists.js'
import { registerLs } from './commands/ls.js'
import { registerTouch } from './commands/touch.js'
import { registerPut } from './commands/put.js'
import { registerCat } from './commands/cat.js'
import { registerGet } from './commands/get.js'
import { registerRm } from './commands/rm.js'
import { registerMkdir } from './commands/mkdir.js'
import { registerMv } from './commands/mv.js'
import { registerStat } from './commands/stat.js'
import { registerDu } from './commands/du.js'
import { registerSetrep } from './commands/setrep.js'
import { registerLn } from './commands/ln.js'
import { registerReport } from './commands/report.js'
import { registerFsck } from './commands/fsck.js'
import { registerChmod } from './commands/chmod.js'
import { registerChown } from './commands/chown.js'

function version (): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: string }).version ?? '0.0.0'
  } catch {
    return '0.0.0'
  }
}

export function buildProgram (): Command {
  const program = new Command()
  program
    .name('hissdfs')
    .description('HissDFS: a GFS/HDFS-style distributed file system.\n' +
      'Remote paths are absolute, or taken relative to "/".\n' +
      'Exit codes: 0 ok, 1 failed, 2 usage or configuration error.')
    .version(version(), '-V, --version')
    .option('-c, --config <file>', 'config file (default: $HISSDFS_CONFIG, else ./configs/client.json, else the package\'s configs/client.json)')
    .showHelpAfterError('(run hissdfs --help for usage)')
    .configureOutput({
      outputError: (str, write) => { write(`hissdfs: ${str.replace(/^error: /, '')}`) },
    })
    .exitOverride()
  for (const register of [
    registerNameserver, registerDataserver,
    registerPing, registerExists, registerLs, registerStat, registerDu, registerTouch, registerMkdir,
    registerPut, registerCat, registerGet, registerRm, registerMv, registerLn, registerSetrep, registerChmod, registerChown,
    registerReport, registerFsck,
  ]) register(program)
  // Subcommands inherit the error/exit handling of the program.
  for (const c of program.commands) {
    c.exitOverride().configureOutput(program.configureOutput()).showHelpAfterError('(run hissdfs help ' + c.name() + ' for usage)')
  }
  return program
}
