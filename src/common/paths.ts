// Namespace path rules, shared by every part so a path means the same everywhere.
import { HissError } from './errors.js'

export const MAX_NAME_BYTES = 255
export const MAX_PATH_BYTES = 4095

/**
 * Normalise an absolute namespace path: collapses repeated and trailing slashes and
 * "." components. Refuses relative paths, NUL bytes, ".." components (never resolved
 * silently: the NameServer has no notion of a caller's cwd), names over 255 bytes and
 * paths over 4095 bytes.
 */
export function normalizePath (p: unknown): string {
  if (typeof p !== 'string') throw HissError.EINVAL('path must be a string')
  if (!p.startsWith('/')) throw HissError.EINVAL(`path must be absolute: ${JSON.stringify(p.slice(0, 200))}`)
  if (p.includes('\0')) throw HissError.EINVAL('path contains a NUL byte')
  if (Buffer.byteLength(p) > MAX_PATH_BYTES) throw HissError.from('ENAMETOOLONG', 'path longer than 4095 bytes')
  const parts: string[] = []
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue
    if (c === '..') throw HissError.EINVAL('path contains a ".." component')
    if (Buffer.byteLength(c) > MAX_NAME_BYTES) throw HissError.from('ENAMETOOLONG', `name longer than 255 bytes: ${c.slice(0, 40)}...`)
    parts.push(c)
  }
  return '/' + parts.join('/')
}

export function splitPath (p: string): string[] {
  return p === '/' ? [] : p.slice(1).split('/')
}

export function parentOf (p: string): string {
  const i = p.lastIndexOf('/')
  return i <= 0 ? '/' : p.slice(0, i)
}

/** The last component of a normalized path ('' for '/'). */
export function nameOf (p: string): string {
  return p.slice(p.lastIndexOf('/') + 1)
}

export function joinPath (dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`
}

/** Block ids and generation stamps on the wire: decimal, no sign, safe integers. */
export function parseBlockNumber (v: unknown, what = 'block id'): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v
  if (typeof v === 'string' && /^[0-9]{1,15}$/.test(v)) return Number(v)
  throw HissError.EINVAL(`bad ${what}`)
}

export function nowNs (wallMs: number): string {
  return (BigInt(Math.floor(wallMs)) * 1000000n).toString()
}
