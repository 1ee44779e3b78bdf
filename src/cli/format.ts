// Human formatting for listings and reports: `ls -l` mode strings, times, sizes, tables.
import type { FileType } from '../common/protocol.js'

const TYPE_CHAR: Record<FileType, string> = { file: '-', dir: 'd', symlink: 'l' }

/** `-rw-r--r--`, `drwxr-xr-x`, `lrwxrwxrwx`, with setuid/setgid/sticky as s/S/t/T. */
export function modeString (type: FileType, mode: number): string {
  const bit = (mask: number, ch: string): string => (mode & mask) !== 0 ? ch : '-'
  const special = (xMask: number, sMask: number, set: string, unset: string): string => {
    const x = (mode & xMask) !== 0
    if ((mode & sMask) !== 0) return x ? set : unset
    return x ? 'x' : '-'
  }
  return TYPE_CHAR[type] +
    bit(0o400, 'r') + bit(0o200, 'w') + special(0o100, 0o4000, 's', 'S') +
    bit(0o040, 'r') + bit(0o020, 'w') + special(0o010, 0o2000, 's', 'S') +
    bit(0o004, 'r') + bit(0o002, 'w') + special(0o001, 0o1000, 't', 'T')
}

/** Octal permission bits, 4 digits: `0644`. */
export function octalMode (mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0')
}

export function nsToMs (ns: string): number {
  try { return Number(BigInt(ns) / 1000000n) } catch { return 0 }
}

const two = (n: number): string => String(n).padStart(2, '0')

/** `2026-01-31 14:05` in local time (ls -l / hdfs dfs -ls style). */
export function shortTime (ns: string): string {
  const d = new Date(nsToMs(ns))
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}`
}

/** `2026-01-31 14:05:09.123456789 +0100`: full precision, as stat(1) prints. */
export function longTime (ns: string): string {
  let big: bigint
  try { big = BigInt(ns) } catch { return ns }
  const ms = Number(big / 1000000n)
  const frac = (big % 1000000000n).toString().padStart(9, '0')
  const d = new Date(ms)
  const off = -d.getTimezoneOffset()
  const sign = off >= 0 ? '+' : '-'
  const tz = `${sign}${two(Math.floor(Math.abs(off) / 60))}${two(Math.abs(off) % 60)}`
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${frac} ${tz}`
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']

/** `1.5 GiB`; exact bytes under 1 KiB. */
export function humanBytes (n: number): string {
  let v = n
  let u = 0
  while (Math.abs(v) >= 1024 && u < UNITS.length - 1) { v /= 1024; u++ }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${UNITS[u]}`
}

/**
 * Align columns: `right` lists the column indexes that are right-aligned (numbers).
 * The last column is never padded (it holds names, which may contain anything).
 */
export function table (rows: readonly string[][], right: readonly number[] = []): string[] {
  const widths: number[] = []
  for (const r of rows) r.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, c.length) })
  return rows.map(r => r.map((c, i) => {
    if (i === r.length - 1) return c
    const w = widths[i] ?? 0
    return right.includes(i) ? c.padStart(w) : c.padEnd(w)
  }).join(' '))
}
