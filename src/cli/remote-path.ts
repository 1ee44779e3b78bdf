// REMOTE paths on the command line: absolute, or taken relative to "/" (the cluster
// has no notion of a caller's working directory).
import { basename } from 'node:path'
import { normalizePath, joinPath } from '../common/paths.js'
import { HissError } from '../common/errors.js'

export function toRemotePath (p: string): string {
  return normalizePath(p.startsWith('/') ? p : '/' + p)
}

/** `dir` + the last component of `from` (a local or remote path), for "put/mv into a directory". */
export function intoDirectory (dir: string, from: string): string {
  const name = basename(from)
  if (name === '' || name === '.' || name === '..' || name === '/') throw HissError.EINVAL(`cannot take a file name from ${JSON.stringify(from)}`)
  return normalizePath(joinPath(dir, name))
}

/** The path to name in an error line: normalised when it can be, else as typed. */
export function displayPath (raw: string): string {
  try { return toRemotePath(raw) } catch { return raw }
}
