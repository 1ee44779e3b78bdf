// Short-lived attribute cache (path -> FileStat) so `ls -l`, path lookups and the
// kernel's getattr storms do not each cost a NameServer round trip. Entries expire after
// `fuse.attr.timeout.ms`; this mount's own mutations invalidate or replace them at once.
// A generation counter keeps a slow lookup that raced with a mutation from re-inserting
// what the mutation just invalidated.
import type { Clock } from '../common/clock.js'
import { trimOldest } from '../common/map-evict.js'
import type { FileStat } from '../common/protocol.js'

export const DEFAULT_MAX_ATTR_ENTRIES = 100_000

interface Entry { stat: FileStat, at: number }

/**
 * A copy of some of this cache's entries kept elsewhere (the patched fuse-native's
 * native table, which answers the kernel's getattr without calling into JS): told of
 * every such entry stored, with the time it has left, and of every removal, so it never
 * answers what this cache would not.
 */
export interface AttrMirror {
  set (path: string, stat: FileStat, ttlMs: number): void
  delete (path: string): void
  clear (): void
}

export class AttrCache {
  private readonly entries = new Map<string, Entry>()
  /** ino -> paths cached for it, so a commit on an inode refreshes every name of it. */
  private readonly byIno = new Map<number, Set<string>>()
  private gen = 0
  private mirror: AttrMirror | undefined
  /** Which entries the mirror may hold (it answers for them without asking us). */
  private mirrorable: (st: FileStat) => boolean = st => st.type === 'dir'

  constructor (
    private readonly clock: Clock,
    private readonly ttlMs: number,
    private readonly maxEntries = DEFAULT_MAX_ATTR_ENTRIES,
  ) {}

  /**
   * Mirror the entries `mirrorable` accepts (default: directories) from now on
   * (undefined: stop); starts from an empty mirror. `mirrorable` must be asked again
   * for an inode whose answer changes: see unmirrorIno and remirrorIno.
   */
  setMirror (mirror: AttrMirror | undefined, mirrorable?: (st: FileStat) => boolean): void {
    this.mirror?.clear()
    this.mirror = mirror
    if (mirrorable !== undefined) this.mirrorable = mirrorable
    if (mirror === undefined) return
    mirror.clear()
    const now = this.clock.now()
    for (const [path, e] of this.entries) this.mirrorSet(path, e, now)
  }

  /** Take every name of `ino` out of the mirror (it is no longer mirrorable). */
  unmirrorIno (ino: number): void {
    if (this.mirror === undefined) return
    for (const p of this.byIno.get(ino) ?? []) this.mirror.delete(p)
  }

  /** Offer every cached name of `ino` to the mirror again (it may be mirrorable now). */
  remirrorIno (ino: number): void {
    if (this.mirror === undefined) return
    const now = this.clock.now()
    for (const p of this.byIno.get(ino) ?? []) {
      const e = this.entries.get(p)
      if (e !== undefined) this.mirrorSet(p, e, now)
    }
  }

  private mirrorSet (path: string, e: Entry, now: number): void {
    if (this.mirror === undefined) return
    if (!this.mirrorable(e.stat)) { this.mirror.delete(path); return }
    const left = this.ttlMs - (now - e.at)
    if (left > 0) this.mirror.set(path, e.stat, left)
  }

  /** Bumped by every invalidation; pass it back to set() after an async lookup. */
  get generation (): number { return this.gen }

  get size (): number { return this.entries.size }

  get (path: string): FileStat | undefined {
    const e = this.entries.get(path)
    if (e === undefined) return undefined
    if (this.clock.now() - e.at >= this.ttlMs) {
      this.remove(path)
      return undefined
    }
    return e.stat
  }

  /** Cache `stat` for `path` unless something was invalidated since `generation`. */
  set (path: string, stat: FileStat, generation = this.gen): void {
    if (generation !== this.gen || this.ttlMs === 0) return
    this.remove(path)
    const e = { stat, at: this.clock.now() }
    this.entries.set(path, e)
    this.mirrorSet(path, e, e.at)
    let paths = this.byIno.get(stat.ino)
    if (paths === undefined) { paths = new Set(); this.byIno.set(stat.ino, paths) }
    paths.add(path)
    trimOldest(this.entries, this.maxEntries, p => { this.remove(p) })
  }

  /**
   * Our own change to a directory's entries: adjust its cached stat in place (times,
   * link count) instead of dropping it. The entry keeps its age, so it still expires on
   * time; nothing happens when `path` is not cached.
   */
  patch (path: string, change: (st: FileStat) => FileStat): void {
    this.gen++
    const e = this.entries.get(path)
    if (e === undefined) return
    const next = change(e.stat)
    if (next.ino !== e.stat.ino) { this.remove(path); return }
    e.stat = next
    this.mirrorSet(path, e, this.clock.now())
  }

  delete (path: string): void {
    this.gen++
    this.remove(path)
  }

  /** Drop `path` and everything below it (rename or removal of a directory). */
  deleteTree (path: string): void {
    this.gen++
    this.remove(path)
    const prefix = path === '/' ? '/' : path + '/'
    for (const p of [...this.entries.keys()]) if (p.startsWith(prefix)) this.remove(p)
  }

  /** Replace the cached stat of every path naming `stat.ino` (after a commit/setattr). */
  updateIno (stat: FileStat): void {
    this.gen++
    const paths = this.byIno.get(stat.ino)
    if (paths === undefined) return
    const now = this.clock.now()
    for (const p of paths) {
      const e = { stat, at: now }
      this.entries.set(p, e)
      this.mirrorSet(p, e, now)
    }
  }

  deleteIno (ino: number): void {
    this.gen++
    const paths = this.byIno.get(ino)
    if (paths === undefined) return
    for (const p of [...paths]) this.remove(p)
  }

  clear (): void {
    this.gen++
    this.entries.clear()
    this.byIno.clear()
    this.mirror?.clear()
  }

  private remove (path: string): void {
    const e = this.entries.get(path)
    if (e === undefined) return
    this.entries.delete(path)
    this.mirror?.delete(path)
    const paths = this.byIno.get(e.stat.ino)
    if (paths !== undefined) {
      paths.delete(path)
      if (paths.size === 0) this.byIno.delete(e.stat.ino)
    }
  }
}
