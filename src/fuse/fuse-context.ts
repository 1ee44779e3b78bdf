// Who is calling a FUSE op, as the patched fuse-native reports it, and the calling
// process's supplementary groups, so a root mount with allow_other can act for (and
// check permissions as) each local user.
//
// The patch (patches/fuse-native+2.2.6.patch, applied by `npm install`'s postinstall)
// changes fuse-native's JS API in three ways:
//
// 1. Every op gets the caller as ONE EXTRA LAST ARGUMENT, after its callback:
//      getattr (path, cb, caller)         readdir (path, cb, caller)
//      create (path, mode, cb, caller)    write (path, fd, buf, len, pos, cb, caller) ...
//    `caller` is a fresh CallerContext per call, copied from libfuse's
//    fuse_get_context() on the libfuse thread that is blocked on this op, so it is right
//    even with many ops in flight. `this` is unchanged (the ops object), so arrow
//    functions and bound methods work. uid/gid are the caller's fsuid/fsgid; for ops the
//    kernel sends on its own (e.g. release after the process exited) they may be 0 and
//    pid 0: never use those for permission decisions.
// 2. getattr/fgetattr/readdir stats may carry `atimeNs`/`mtimeNs`/`ctimeNs` (BigInt or
//    decimal string of ns since the epoch, e.g. FileStat's fields as they are); each
//    wins over the Date/ms field `atime`/`mtime`/`ctime`, which stays the fallback.
// 3. utimens (path, atimeNs, mtimeNs, cb, caller): each time is a BigInt of ns since the
//    epoch, or null for "leave this one unchanged" (touch -a / touch -m). "Now" arrives
//    already resolved to the current wall-clock time.
//
// Loading fuse-native throws if the addon in use is not the patched build.
import { readFile } from 'node:fs/promises'
import type { Clock } from '../common/clock.js'
import type { Identity } from '../client/types.js'

/** The caller of one FUSE op (the patched fuse-native's extra last argument). */
export interface CallerContext {
  readonly uid: number
  readonly gid: number
  readonly pid: number
}

/** A time for the patched fuse-native's stat: ns since the epoch. */
export type StatTimeNs = bigint | string

/** Stat fields the patched fuse-native reads for nanosecond times. */
export interface NsStatTimes {
  atimeNs?: StatTimeNs
  mtimeNs?: StatTimeNs
  ctimeNs?: StatTimeNs
}

/** A utimens time as the patched fuse-native passes it: ns, or null = leave unchanged. */
export type UtimeNs = bigint | null

/** A utimens time in the protocol's form (`SetattrRequest.atimeNs`): omitted when unchanged. */
export function utimeToProtocol (t: UtimeNs): string | undefined {
  return t === null ? undefined : t.toString()
}

/** Parses the `Groups:` line of /proc/<pid>/status (space-separated gids, may be empty). */
export function parseStatusGroups (status: string): number[] | undefined {
  const line = status.split('\n').find(l => l.startsWith('Groups:'))
  if (line === undefined) return undefined
  const out: number[] = []
  for (const word of line.slice('Groups:'.length).trim().split(/\s+/)) {
    if (word === '') continue
    const g = Number(word)
    if (Number.isSafeInteger(g) && g >= 0) out.push(g)
  }
  return out
}

export interface CallerIdentitiesOptions {
  clock: Clock
  /** How long one process's groups are reused (ms). Groups rarely change; pids get reused. */
  ttlMs?: number
  /** Entries kept at most; expired ones are swept when it is reached. */
  maxEntries?: number
  /** Where /proc is (tests). */
  procRoot?: string
}

interface Entry { at: number, groups: Promise<number[]> }

/**
 * Turns a CallerContext into the client library's Identity (uid, primary gid first, then
 * the supplementary groups read asynchronously from /proc/<pid>/status), with a short
 * TTL cache so a burst of ops from one process reads /proc once.
 */
export class CallerIdentities {
  private readonly clock: Clock
  private readonly ttlMs: number
  private readonly maxEntries: number
  private readonly procRoot: string
  private readonly cache = new Map<string, Entry>()

  constructor (opts: CallerIdentitiesOptions) {
    this.clock = opts.clock
    this.ttlMs = opts.ttlMs ?? 2000
    this.maxEntries = opts.maxEntries ?? 4096
    this.procRoot = opts.procRoot ?? '/proc'
  }

  /** Supplementary groups of the caller's process; [] when it is gone or unreadable. */
  callerGroups (caller: CallerContext): Promise<number[]> {
    if (caller.pid <= 0) return Promise.resolve([])
    // uid/gid are part of the key so a reused pid of another user never hits.
    const key = `${caller.pid}:${caller.uid}:${caller.gid}`
    const now = this.clock.now()
    const hit = this.cache.get(key)
    if (hit !== undefined && now - hit.at < this.ttlMs) return hit.groups
    if (this.cache.size >= this.maxEntries) this.sweep(now)
    const groups = this.readGroups(caller.pid)
    this.cache.set(key, { at: now, groups })
    return groups
  }

  /** The Identity to send to the NameServer for this caller. */
  async identity (caller: CallerContext): Promise<Identity> {
    const groups = await this.callerGroups(caller)
    return { uid: caller.uid, gids: [caller.gid, ...groups.filter(g => g !== caller.gid)] }
  }

  private async readGroups (pid: number): Promise<number[]> {
    try {
      const status = await readFile(`${this.procRoot}/${pid}/status`, 'utf8')
      return parseStatusGroups(status) ?? []
    } catch {
      // The process may have exited already (or /proc is hidden): primary group only.
      return []
    }
  }

  private sweep (now: number): void {
    for (const [k, e] of this.cache) {
      if (now - e.at >= this.ttlMs) this.cache.delete(k)
    }
    // Still full (a burst of distinct live callers): drop the oldest half.
    if (this.cache.size >= this.maxEntries) {
      let n = Math.floor(this.cache.size / 2)
      for (const k of this.cache.keys()) {
        if (n-- <= 0) break
        this.cache.delete(k)
      }
    }
  }
}
