// Which config file a command reads: `--config F`, else $HISSDFS_CONFIG, else
// configs/<name> under the current directory, else configs/<name> of the installed
// package (so `hissdfs` works from anywhere against the local development cluster).
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Repository / package root: this file is dist/src/common/config-path.js. */
export function packageRoot (): string {
  return fileURLToPath(new URL('../../../', import.meta.url))
}

export function resolveConfigPath (explicit: string | undefined, env: NodeJS.ProcessEnv, defaultName: string): string {
  if (explicit !== undefined && explicit !== '') return explicit
  const fromEnv = env.HISSDFS_CONFIG
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv
  const local = join(process.cwd(), 'configs', defaultName)
  if (existsSync(local)) return local
  return join(packageRoot(), 'configs', defaultName)
}
