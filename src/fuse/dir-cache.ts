// What this mount knows about the complete contents of a directory: the set of names
// it held when the mount last listed it (readdir) or created it (a new directory is
// empty), kept up to date with this mount's own creates, renames and removals.
//
// It is not used to answer a lookup "absent" on its own: a name another mount created
// and closed must be found at once (close-to-open), so a lookup of a name we do not
// hold asks the NameServer, as MooseFS does with its negative entry cache off (its
// default). The one exception is a listing the lookup itself asked for (see
// FuseFs.relist): that is as fresh as a stat, and knowsAbsent then answers from it.
// Knowledge is never refreshed by our own changes, only replaced by a new listing, so it
// always expires on time. A generation counter keeps a listing that raced with one of
// our own changes from being stored.
//
// Expired knowledge is kept (bounded, LRU) as a hint: a lookup that misses in a small
// directory we listed before re-lists it (one round trip that answers the lookups of
// its other entries too, as `ls -l`, `rm -r`, `diff -r` go on to need) instead of
// asking for the one name.
import type { Clock } from '../common/clock.js'
import { trimOldest } from '../common/map-evict.js'

export const DEFAULT_MAX_DIRS = 4096
/** Directories larger than this are not tracked (a listing that big is not kept). */
export const MAX_TRACKED_NAMES = 100_000
/** A lookup miss re-lists a directory known to hold at most this many names. */
export const RELIST_MAX_NAMES = 1024

interface Entry { names: Set<string>, at: number }

export class DirCache {
  private readonly dirs = new Map<string, Entry>()
  private gen = 0

  constructor (
    private readonly clock: Clock,
    private readonly ttlMs: number,
    private readonly maxDirs = DEFAULT_MAX_DIRS,
  ) {}

  /** Bumped by every change of ours; pass it back to set() after an async listing. */
  get generation (): number { return this.gen }

  get size (): number { return this.dirs.size }

  /** The complete listing of `dir` (names only), as read when `generation` was current. */
  set (dir: string, names: Iterable<string>, generation = this.gen): void {
    if (generation !== this.gen || this.ttlMs === 0) return
    const set = new Set(names)
    this.dirs.delete(dir)
    if (set.size > MAX_TRACKED_NAMES) return
    this.dirs.set(dir, { names: set, at: this.clock.now() })
    trimOldest(this.dirs, this.maxDirs)
  }

  /** True only when `name` is known not to be in `dir` (fresh knowledge, name absent). */
  knowsAbsent (dir: string, name: string): boolean {
    const e = this.fresh(dir)
    return e !== undefined && !e.names.has(name)
  }

  /** A lookup in `dir` missed: is re-listing it the better round trip (listed before, small, knowledge expired)? */
  worthRelisting (dir: string): boolean {
    const e = this.dirs.get(dir)
    return e !== undefined && e.names.size <= RELIST_MAX_NAMES && this.clock.now() - e.at >= this.ttlMs
  }

  /** We added `name` to `dir` (create, mkdir, symlink, rename target). */
  added (dir: string, name: string): void {
    this.gen++
    const e = this.dirs.get(dir)
    if (e === undefined) return
    e.names.add(name)
    if (e.names.size > MAX_TRACKED_NAMES) this.dirs.delete(dir)
  }

  /** We removed `name` from `dir` (unlink, rmdir, rename source). */
  removed (dir: string, name: string): void {
    this.gen++
    this.dirs.get(dir)?.names.delete(name)
  }

  /** Forget `dir` (an operation on it failed in a way that says our picture was wrong). */
  forget (dir: string): void {
    this.gen++
    this.dirs.delete(dir)
  }

  /** Forget `dir` and every directory below it (it was removed or renamed). */
  forgetTree (dir: string): void {
    this.gen++
    this.dirs.delete(dir)
    const prefix = dir === '/' ? '/' : dir + '/'
    for (const d of [...this.dirs.keys()]) if (d.startsWith(prefix)) this.dirs.delete(d)
  }

  clear (): void {
    this.gen++
    this.dirs.clear()
  }

  private fresh (dir: string): Entry | undefined {
    const e = this.dirs.get(dir)
    if (e === undefined || this.clock.now() - e.at >= this.ttlMs) return undefined
    return e
  }
}
