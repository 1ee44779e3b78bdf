// The file-system layer behind the FUSE ops: POSIX semantics over the client library.
// Namespace calls go out as the calling user (ClientPool); file data moves through the
// mount's own client, once the kernel has checked the caller's permission at open
// (default_permissions), as with any local file system's open file descriptions.
import type Fuse from 'fuse-native'
import type { Clock } from '../common/clock.js'
import type { HissConfig } from '../common/config.js'
import { HissError, isHissError } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import { trimOldest } from '../common/map-evict.js'
import { joinPath, nameOf, parentOf } from '../common/paths.js'
import { LIST_PAGE_ENTRIES, type DirEntry, type FileStat, type LocatedBlock } from '../common/protocol.js'
import type { HissFs, WriteGrant } from '../client/types.js'
import { AttrCache, type AttrMirror } from './attr-cache.js'
import { BlockCache, type PieceMirror } from './block-cache.js'
import { DirCache, RELIST_MAX_NAMES } from './dir-cache.js'
import type { ClientPool, OpContext } from './client-pool.js'
import { HandleTable, O_ACCMODE, O_APPEND, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, type Handle } from './handles.js'
import { OpenFile, type OpenFileDeps } from './open-file.js'
import type { Spool } from './spool.js'
import { S_IFMT, S_IFREG, toFuseStat, toFuseStatfs } from './stat-convert.js'

export type { OpContext } from './client-pool.js'

/**
 * The mount's native read path (the patched fuse-native): it answers a handle's reads
 * from the block cache's pieces (mirrored to it) while the handle has a read map.
 */
export interface NativeReads {
  /** Give handle `fd` its file's committed layout (see OpenFile.readLayout), or take it away. */
  map (fd: number, file: { size: number, pieceBytes: number, layout: Float64Array } | null): void
  /** End of the last read of `fd` answered natively since the previous call, or -1. */
  progress (fd: number): number
  pieces: PieceMirror
}

/**
 * The mount's asynchronous writes (the patched fuse-native): a handle marked on has its
 * writes copied and answered by the addon at once, and queued for asyncWrite.
 */
export interface AsyncWrites {
  set (fd: number, on: boolean): void
}

export interface HissFuseFsDeps {
  /** The mount's own client: reads, block data, write sessions. */
  client: HissFs
  /** Per-caller clients for namespace mutations. */
  pool: ClientPool
  cfg: HissConfig
  clock: Clock
  log: Logger
  spool: Spool
}

/** chown(2) passes -1 (as an unsigned 32-bit value) for "leave unchanged". */
const UNCHANGED_ID = 0xffffffff
/**
 * Entries one lookup miss in a large directory fetches (from the missed name on): `ls -l`
 * of 200,000 names then costs 200 round trips, not one per name.
 */
const LOOKUP_WINDOW_ENTRIES = LIST_PAGE_ENTRIES
/** Large directories remembered for windowed lookups. */
const MAX_BIG_DIRS = 256
/** A large directory's lookup misses ask for windows (see HissFuseFs.bigDirs). */
const WINDOWS = -1
/** Stats in a row that must find their names before lookups there ask for windows again. */
export const WINDOW_AFTER_FOUND = 4

/** A listing entry's stat, without its name. */
function statOf (e: DirEntry): FileStat {
  const { name: _name, ...st } = e
  return st
}

export class HissFuseFs {
  readonly attrs: AttrCache
  /** Complete directory listings: lookups of absent names answered without a round trip. */
  readonly dirs: DirCache
  readonly cache: BlockCache
  readonly handles = new HandleTable()
  private readonly files = new Map<number, OpenFile>()
  private readonly lookups = new Map<string, { gen: number, p: Promise<FileStat> }>()
  private readonly listings = new Map<string, Promise<boolean>>()
  /**
   * Directories whose last listing held more than RELIST_MAX_NAMES names, and how a
   * lookup miss there asks: WINDOWS (a window of names), or else (after a window missed)
   * one stat, the value counting the stats in a row that found their name.
   */
  private readonly bigDirs = new Map<string, number>()
  private readonly fileDeps: OpenFileDeps
  private readonly client: HissFs
  private readonly log: Logger

  constructor (private readonly deps: HissFuseFsDeps) {
    this.client = deps.client
    this.log = deps.log
    this.attrs = new AttrCache(deps.clock, deps.cfg['fuse.attr.timeout.ms'])
    this.dirs = new DirCache(deps.clock, deps.cfg['fuse.attr.timeout.ms'])
    this.cache = new BlockCache(deps.client, { capacityBytes: deps.cfg['fuse.cache.bytes'], log: deps.log, clock: deps.clock })
    this.fileDeps = {
      client: deps.client,
      cache: this.cache,
      spool: deps.spool,
      clock: deps.clock,
      log: deps.log,
      readaheadBytes: deps.cfg['fuse.readahead.bytes'],
      leaseWaitMs: deps.cfg['client.retry.ms'],
      onCommit: stat => { this.attrs.updateIno(stat) },
      onLayoutChange: ino => { this.unmapReads(ino) },
      onViewChange: ino => { this.viewChanged(ino) },
      // The attribute mirror needs nothing here: hasLocalState turning true is a view
      // change (onViewChange) like any other.
      onLocalState: ino => {
        this.unmapReads(ino)
        // Its flush may have work to do from now on: every handle's flush goes to JS.
        const mark = this.flushFree
        if (mark !== undefined) for (const h of this.handles.all()) if (h.file.ino === ino && !h.writable) mark(h.fd, false)
      },
    }
  }

  /**
   * Let `mirror` answer the kernel's getattr for what the attribute cache holds, as this
   * mount shows it (view: a file being written here shows its local size, mtime and
   * deferred ownership); undefined: stop. Every change of a file's view takes its
   * names out of the mirror synchronously and puts them back once the code that changed
   * it has run to its next await (viewChanged), so the mirror never answers an old view.
   */
  mirrorAttrs (mirror: AttrMirror | undefined): void {
    this.attrs.setMirror(mirror === undefined
      ? undefined
      : {
          set: (path, st, ttlMs) => { mirror.set(path, this.view(st), ttlMs) },
          delete: path => { mirror.delete(path) },
          clear: () => { mirror.clear() },
        }, () => true)
  }

  /** Inodes whose view changed, to offer to the mirror again (see viewChanged). */
  private readonly viewsToMirror = new Set<number>()

  /**
   * `ino`'s view changed (OpenFileDeps.onViewChange): out of the mirror now, back with
   * the new view in a microtask, i.e. before any op that made the change can reply.
   */
  private viewChanged (ino: number): void {
    // Its write session ended (a commit): later writes take the ordinary way until one
    // has the lease again (a wait for it must not hold queued work up).
    if (this.asyncOn > 0 && this.files.get(ino)?.hasLocalState === false) this.asyncOff(ino)
    this.attrs.unmirrorIno(ino)
    if (this.viewsToMirror.size === 0) {
      queueMicrotask(() => {
        const inos = [...this.viewsToMirror]
        this.viewsToMirror.clear()
        for (const i of inos) this.attrs.remirrorIno(i)
      })
    }
    this.viewsToMirror.add(ino)
  }

  /**
   * Marks a handle flush-free (answered without calling flush()) or not; undefined:
   * nothing is marked. A handle is marked only while flush() would do nothing for it:
   * read-only, and its file without local state (see open, release, onLocalState).
   */
  private flushFree: ((fd: number, on: boolean) => void) | undefined

  setFlushFree (mark: ((fd: number, on: boolean) => void) | undefined): void {
    this.flushFree = mark
  }

  /**
   * Let `reads` answer reads of handles whose file is committed blocks only, from the
   * block cache's pieces (which the cache mirrors to it); undefined: stop.
   */
  setNativeReads (reads: NativeReads | undefined): void {
    const old = this.nativeReads
    if (old !== undefined) {
      for (const h of this.handles.all()) {
        if (h.mapped) { old.map(h.fd, null); h.mapped = false }
      }
    }
    this.nativeReads = reads
    this.cache.setMirror(reads?.pieces)
  }

  private nativeReads: NativeReads | undefined

  private asyncWrites: AsyncWrites | undefined
  /** Handles marked async (a fast check for viewChanged). */
  private asyncOn = 0
  /**
   * Queued writes not yet run, per inode: the promise of the last (they run one after
   * another, in the order the kernel sent them); gone once the last has run.
   */
  private readonly queued = new Map<number, Promise<void>>()

  /** Let `a` answer writes of the handles we mark (see AsyncWrites); undefined: stop. */
  setAsyncWrites (a: AsyncWrites | undefined): void {
    if (this.asyncWrites !== undefined) {
      for (const h of this.handles.all()) if (h.async) this.asyncMark(h, false)
    }
    this.asyncWrites = a
  }

  private asyncMark (h: Handle, on: boolean): void {
    if (h.async === on) return
    h.async = on
    this.asyncOn += on ? 1 : -1
    this.asyncWrites?.set(h.fd, on)
  }

  /** Unmark every handle of `ino`. */
  private asyncOff (ino: number): void {
    for (const h of this.handles.all()) if (h.async && h.file.ino === ino) this.asyncMark(h, false)
  }

  /**
   * A write the addon already answered (handle `fd` was marked async). Runs after the
   * queued writes before it; an error is kept for the handle's next write, flush or
   * fsync (as the kernel reports writeback errors) and the handle goes back to ordinary
   * writes. Never rejects. `buf` is the addon's memory, taken back (and emptied) once the
   * returned promise settles: OpenFile.write copies what it keeps before it returns.
   */
  asyncWrite (fd: number, pos: number, buf: Buffer): Promise<void> {
    const h = this.handles.find(fd)
    if (h === undefined) {
      // The kernel sends release only after the handle's writes, and release waits for
      // what is queued: a write for a closed handle is a bug, not a user error.
      this.log.error('queued write for a handle that is not open', { fd, pos, bytes: buf.length })
      return Promise.resolve()
    }
    const ino = h.file.ino
    const run = (this.queued.get(ino) ?? Promise.resolve()).then(async () => {
      try {
        await h.file.write(buf, pos, h.append)
      } catch (err) {
        h.asyncError ??= err
        this.asyncMark(h, false)
      }
    })
    this.queued.set(ino, run)
    void run.then(() => { if (this.queued.get(ino) === run) this.queued.delete(ino) })
    return run
  }

  /**
   * Resolves once every queued write that came in before now has run; undefined when
   * none is queued. Ops on a handle wait for their own file's (afterFd); ops on a path
   * wait for all of them, because a path may reach a queued file by a name we do not
   * know (a renamed parent) and directory listings show file sizes.
   */
  afterQueued (): Promise<unknown> | undefined {
    if (this.queued.size === 0) return undefined
    return Promise.all(this.queued.values())
  }

  afterFd (fd: number): Promise<unknown> | undefined {
    if (this.queued.size === 0) return undefined
    const h = this.handles.find(fd)
    return h === undefined ? undefined : this.queued.get(h.file.ino)
  }

  /** The kept error of a queued write of `h`, once. */
  private throwAsyncError (h: Handle): void {
    const err = h.asyncError
    if (err === undefined) return
    h.asyncError = undefined
    throw err
  }

  /** Take the native read maps of `ino`'s handles away (their layout no longer holds). */
  private unmapReads (ino: number): void {
    const nr = this.nativeReads
    if (nr === undefined) return
    for (const h of this.handles.all()) {
      if (h.mapped && h.file.ino === ino) { nr.map(h.fd, null); h.mapped = false }
    }
  }

  /** Open inodes (for tests and diagnostics). */
  get openFiles (): number { return this.files.size }

  // ------------------------------------------------------------ attributes

  private async lookup (path: string): Promise<FileStat> {
    const hit = this.attrs.get(path)
    if (hit !== undefined) return hit
    if (path !== '/') {
      const dir = parentOf(path)
      const big = this.bigDirs.get(dir)
      if (big !== undefined) {
        const st = await this.lookupInLargeDir(path, dir, big)
        if (st !== undefined) return st
      }
      // A small directory listed before: list it again, which answers this lookup and
      // those of its other entries that usually follow. A listing this lookup asked for
      // is as fresh as a stat, so it also answers "absent"; knowledge from an earlier
      // listing never does (close-to-open: a name another mount made and closed must be
      // found at once, as MooseFS finds it: its negative entry cache is off by default).
      if (this.dirs.worthRelisting(dir)) {
        const listed = await this.relist(dir)
        if (listed !== false) {
          const again = this.attrs.get(path)
          if (again !== undefined) return again
          if (listed === 'started' && this.dirs.knowsAbsent(dir, nameOf(path))) throw HissError.ENOENT(path)
        }
      }
    }
    return await this.statInto(path)
  }

  /** Ask the NameServer for one name (joining the same question in flight) and cache it. */
  private statInto (path: string): Promise<FileStat> {
    const gen = this.attrs.generation
    const pending = this.lookups.get(path)
    // Join a lookup already in flight only if nothing changed since it started.
    if (pending !== undefined && pending.gen === gen) return pending.p
    const p = this.client.stat(path, { nofollow: true }).then(st => {
      this.attrs.set(path, st, gen)
      this.files.get(st.ino)?.remoteStatSeen(st)
      return st
    }).finally(() => {
      if (this.lookups.get(path)?.p === p) this.lookups.delete(path)
    })
    this.lookups.set(path, { gen, p })
    return p
  }

  /**
   * List `dir` into the caches (one listing in flight per directory): 'started' when this
   * call asked for the listing, 'joined' when it waited for one already in flight (which
   * may predate the caller's operation), false if that failed.
   */
  private async relist (dir: string): Promise<'started' | 'joined' | false> {
    const inFlight = this.listings.get(dir)
    if (inFlight !== undefined) return await inFlight && 'joined'
    const p = this.listInto(dir).then(() => true, err => {
      // Gone or no longer a directory: ask for the name itself, and not again.
      this.log.debug('re-listing failed', { dir, err })
      this.dirs.forget(dir)
      return false
    }).finally(() => { this.listings.delete(dir) })
    this.listings.set(dir, p)
    return await p && 'started'
  }

  /**
   * A lookup miss in a large directory listed before (ls -l, find, rsync walk one after
   * readdir): ask for the window of names from this one on, which answers the lookups
   * that follow in name order, and this one too, present or absent, as freshly as a stat
   * would. While the names looked up are absent (files being created there), a window is
   * wasted on each: plain stats then, until WINDOW_AFTER_FOUND in a row find their names
   * (so that a mix of present and absent names stays with stats). Undefined when the
   * window could not be listed: the caller asks for the name itself.
   */
  private async lookupInLargeDir (path: string, dir: string, mode: number): Promise<FileStat | undefined> {
    if (mode === WINDOWS) {
      const found = await this.lookupWindow(dir, nameOf(path))
      if (found !== 'absent') return found
      this.setLargeDirMode(dir, 0)
      throw HissError.ENOENT(path)
    }
    const st = await this.statInto(path).catch((err: unknown) => {
      this.setLargeDirMode(dir, 0)
      throw err
    })
    this.setLargeDirMode(dir, mode + 1 >= WINDOW_AFTER_FOUND ? WINDOWS : mode + 1)
    return st
  }

  /** Unless a listing or a failed window dropped `dir` from bigDirs meanwhile. */
  private setLargeDirMode (dir: string, mode: number): void {
    if (this.bigDirs.has(dir)) this.bigDirs.set(dir, mode)
  }

  /**
   * A lookup miss in a large directory: fetch up to LOOKUP_WINDOW_ENTRIES entries from
   * `name` on into the attribute cache. The stat of `name`, 'absent' when the window
   * shows it is not there, or undefined when the listing failed (the caller then asks
   * for the name itself, and this directory is no longer treated as large).
   */
  private async lookupWindow (dir: string, name: string): Promise<FileStat | 'absent' | undefined> {
    const gen = this.attrs.generation
    let page
    try {
      page = await this.client.listPage(dir, { from: name, limit: LOOKUP_WINDOW_ENTRIES })
    } catch (err) {
      this.log.debug('window listing failed', { dir, err })
      this.bigDirs.delete(dir)
      return undefined
    }
    this.cacheEntries(dir, page.entries, gen)
    const found = page.entries.find(e => e.name === name)
    return found === undefined ? 'absent' : statOf(found)
  }

  /** Remember that `dir` is large (bounded, most recent last). */
  private noteBigDir (dir: string, entries: number): void {
    this.bigDirs.delete(dir)
    if (entries <= RELIST_MAX_NAMES) return
    this.bigDirs.set(dir, WINDOWS)
    trimOldest(this.bigDirs, MAX_BIG_DIRS)
  }

  /** Read a directory's entries into the attribute cache and its names into the listing cache. */
  private async listInto (dir: string): Promise<DirEntry[]> {
    const gen = this.attrs.generation
    const dirGen = this.dirs.generation
    const entries = await this.client.list(dir)
    this.noteBigDir(dir, entries.length)
    this.dirs.set(dir, entries.map(e => e.name), dirGen)
    this.cacheEntries(dir, entries, gen)
    return entries
  }

  /** A listing's entries into the attribute cache (unless something changed since `gen`), and to their open files. */
  private cacheEntries (dir: string, entries: readonly DirEntry[], gen: number): void {
    for (const e of entries) {
      const st = statOf(e)
      this.attrs.set(joinPath(dir, e.name), st, gen)
      this.files.get(st.ino)?.remoteStatSeen(st)
    }
  }

  /** A name was added or removed: its own entry and its directory's times are stale. */
  private entryChanged (path: string): void {
    this.attrs.delete(path)
    this.attrs.delete(parentOf(path))
  }

  /** An operation on `path` failed: forget what we knew of it and of its directory. */
  private entryUnknown (path: string): void {
    this.entryChanged(path)
    this.dirs.forget(parentOf(path))
  }

  /**
   * This mount added `path` (create, mkdir, symlink) and the NameServer answered with its
   * stat: cache it, add the name to its directory's listing, and update the directory's
   * cached stat as the NameServer did (mtime and ctime become the new entry's ctime; a
   * new subdirectory adds a link), so the next path walk needs no round trip.
   */
  private entryAdded (path: string, st: FileStat): void {
    const dir = parentOf(path)
    this.dirs.added(dir, nameOf(path))
    this.attrs.patch(dir, d => ({ ...d, mtimeNs: st.ctimeNs, ctimeNs: st.ctimeNs, nlink: d.nlink + (st.type === 'dir' ? 1 : 0) }))
    this.attrs.delete(path)
    this.attrs.set(path, st)
  }

  /** This mount removed `path`; `parent` is its directory's stat after that, when known. */
  private entryRemoved (path: string, parent: FileStat | undefined): void {
    const dir = parentOf(path)
    this.dirs.removed(dir, nameOf(path))
    this.attrs.delete(path)
    if (parent === undefined) this.attrs.delete(dir)
    else this.attrs.patch(dir, () => parent)
  }

  private view (st: FileStat): FileStat {
    const of = this.files.get(st.ino)
    return of === undefined ? st : of.localStat(st)
  }

  async getattr (path: string, _ctx?: OpContext): Promise<Fuse.Stat> {
    return toFuseStat(this.view(await this.lookup(path)))
  }

  async readdir (path: string, _ctx?: OpContext): Promise<{ names: string[], stats: Fuse.Stat[] }> {
    const [self, entries] = await Promise.all([this.lookup(path), this.listInto(path)])
    const names = ['.', '..']
    const selfStat = toFuseStat(self)
    const stats = [selfStat, selfStat]
    for (const e of entries) {
      const { name, ...st } = e
      names.push(name)
      stats.push(toFuseStat(st))
    }
    return { names, stats }
  }

  async access (path: string, _mode: number, _ctx?: OpContext): Promise<void> {
    // The kernel checks mode bits itself (default_permissions); existence is ours.
    await this.lookup(path)
  }

  async statfs (_path: string, _ctx?: OpContext): Promise<Fuse.Statfs> {
    return toFuseStatfs(await this.client.statfs())
  }

  async readlink (path: string, _ctx?: OpContext): Promise<string> {
    const st = await this.lookup(path)
    if (st.type !== 'symlink') throw HissError.EINVAL(`not a symlink: ${path}`)
    return st.target ?? await this.client.readlink(path)
  }

  // ------------------------------------------------------------ namespace

  async mkdir (path: string, mode: number, ctx?: OpContext): Promise<void> {
    const c = await this.deps.pool.forCaller(ctx)
    let st: FileStat
    try {
      st = await c.mkdir(path, { mode: mode & 0o7777 })
    } catch (err) {
      this.entryUnknown(path)
      throw err
    }
    this.entryAdded(path, st)
    // A directory we just made is empty: knowing that makes it "listed before", so once
    // the knowledge expires a lookup miss in it re-lists it (see lookup).
    this.dirs.set(path, [])
  }

  async rmdir (path: string, ctx?: OpContext): Promise<void> {
    const st = await this.lookup(path)
    if (st.type !== 'dir') throw HissError.ENOTDIR(path)
    const c = await this.deps.pool.forCaller(ctx)
    let parent: FileStat | undefined
    try {
      ({ parent } = await c.delete(path, { recursive: false, parent: true }))
    } catch (err) {
      this.attrs.deleteTree(path)
      this.dirs.forgetTree(path)
      this.entryUnknown(path)
      throw err
    }
    this.attrs.deleteTree(path)
    this.dirs.forgetTree(path)
    this.entryRemoved(path, parent)
  }

  async unlink (path: string, ctx?: OpContext): Promise<void> {
    const st = await this.lookup(path)
    if (st.type === 'dir') throw HissError.EISDIR(path)
    const c = await this.deps.pool.forCaller(ctx)
    let parent: FileStat | undefined
    try {
      ({ parent } = await c.delete(path, { recursive: false, parent: true }))
    } catch (err) {
      this.entryUnknown(path)
      throw err
    }
    this.entryRemoved(path, parent)
    this.attrs.deleteIno(st.ino)
    const of = this.files.get(st.ino)
    if (of !== undefined && of.refs === 0) {
      this.files.delete(st.ino)
      await of.dispose()
    }
  }

  async rename (src: string, dst: string, ctx?: OpContext): Promise<void> {
    const c = await this.deps.pool.forCaller(ctx)
    let st: FileStat
    try {
      st = await c.rename(src, dst)
    } catch (err) {
      this.attrs.deleteTree(src)
      this.attrs.deleteTree(dst)
      this.dirs.forgetTree(src)
      this.dirs.forgetTree(dst)
      this.entryUnknown(src)
      this.entryUnknown(dst)
      throw err
    }
    this.attrs.deleteTree(src)
    this.attrs.deleteTree(dst)
    this.dirs.forgetTree(src)
    this.dirs.forgetTree(dst)
    this.dirs.removed(parentOf(src), nameOf(src))
    this.dirs.added(parentOf(dst), nameOf(dst))
    if (st.type !== 'dir' && src !== dst) {
      // Both directories got the moved entry's new ctime as mtime and ctime; a file
      // changes no link count.
      for (const dir of new Set([parentOf(src), parentOf(dst)])) {
        this.attrs.patch(dir, d => ({ ...d, mtimeNs: st.ctimeNs, ctimeNs: st.ctimeNs }))
      }
    } else {
      this.attrs.delete(parentOf(src))
      this.attrs.delete(parentOf(dst))
    }
    this.attrs.set(dst, st)
    const of = this.files.get(st.ino)
    if (of !== undefined) of.path = dst
  }

  async symlink (target: string, path: string, ctx?: OpContext): Promise<void> {
    const c = await this.deps.pool.forCaller(ctx)
    let st: FileStat
    try {
      st = await c.symlink(target, path)
    } catch (err) {
      this.entryUnknown(path)
      throw err
    }
    this.entryAdded(path, st)
  }

  async link (_src: string, _dst: string, _ctx?: OpContext): Promise<void> {
    // What file systems without hard links answer (tar and cp report it; git falls back to rename).
    throw HissError.EPERM('hard links are not supported')
  }

  /** Every acknowledged namespace change is already durable on the NameServer. */
  async fsyncdir (_path: string): Promise<void> {}

  async chmod (path: string, mode: number, ctx?: OpContext): Promise<void> {
    const m = mode & 0o7777
    // Deferred only for the mount's own identity (root, for tar x as root): the commit
    // runs as the mount, so the NameServer checks it exactly as this setattr.
    const of = this.deps.pool.actsAsSelf(ctx) ? await this.dirtyFileAt(path) : undefined
    if (of !== undefined && await of.deferOwnership({ mode: m })) return
    await this.setattr(path, { mode: m }, ctx)
  }

  async chown (path: string, uid: number, gid: number, ctx?: OpContext): Promise<void> {
    const attrs: { uid?: number, gid?: number } = {}
    if (uid !== UNCHANGED_ID && uid >= 0) attrs.uid = uid
    if (gid !== UNCHANGED_ID && gid >= 0) attrs.gid = gid
    if (attrs.uid === undefined && attrs.gid === undefined) return
    // Deferred only for the mount's own identity (then the commit is checked exactly as
    // this setattr would be) and only to the ids the file has as seen here (tar's fchown
    // of a file it just wrote): a real change, which may fail, goes out now.
    const of = this.deps.pool.actsAsSelf(ctx) ? await this.dirtyFileAt(path) : undefined
    if (of !== undefined && (attrs.uid ?? of.uid) === of.uid && (attrs.gid ?? of.gid) === of.gid && await of.deferOwnership(attrs)) return
    await this.setattr(path, attrs, ctx)
  }

  /** The file open here at `path` with uncommitted writes, if any. */
  private async dirtyFileAt (path: string): Promise<OpenFile | undefined> {
    const of = this.files.get((await this.lookup(path)).ino)
    return of?.dirty === true ? of : undefined
  }

  async utimens (path: string, atime: bigint | null, mtime: bigint | null, ctx?: OpContext): Promise<void> {
    const attrs: { atimeNs?: string, mtimeNs?: string } = {}
    if (atime !== null) attrs.atimeNs = atime.toString()
    if (mtime !== null) attrs.mtimeNs = mtime.toString()
    if (attrs.atimeNs === undefined && attrs.mtimeNs === undefined) return
    if (attrs.atimeNs === undefined && attrs.mtimeNs !== undefined) {
      // Only the mtime of a file with uncommitted writes here (tar sets it before
      // closing): its commit carries the time, which saves a round trip per file.
      const of = this.files.get((await this.lookup(path)).ino)
      if (of !== undefined && of.dirty && await of.deferMtime(attrs.mtimeNs)) return
    }
    const st = await this.setattr(path, attrs, ctx)
    // An open file's next commit must carry the time just set, not its own.
    if (attrs.mtimeNs !== undefined) this.files.get(st.ino)?.setMtime(attrs.mtimeNs)
  }

  private async setattr (path: string, attrs: { mode?: number, uid?: number, gid?: number, atimeNs?: string, mtimeNs?: string }, ctx?: OpContext): Promise<FileStat> {
    const c = await this.deps.pool.forCaller(ctx)
    let st: FileStat
    try {
      // The kernel resolved every symlink already: a final symlink here is the one to
      // change (lchown, utimensat with AT_SYMLINK_NOFOLLOW).
      st = await c.setattr(path, { ...attrs, nofollow: true })
    } catch (err) {
      this.attrs.delete(path)
      throw err
    }
    this.attrs.updateIno(st)
    this.attrs.set(path, st)
    return st
  }

  // ------------------------------------------------------------ files

  private fileFor (stat: FileStat, path: string): OpenFile {
    let of = this.files.get(stat.ino)
    if (of === undefined) {
      of = new OpenFile(this.fileDeps, stat, path)
      this.files.set(stat.ino, of)
    } else {
      of.path = path
    }
    return of
  }

  async open (path: string, flags: number, _ctx?: OpContext): Promise<number> {
    const gen = this.attrs.generation
    let stat: FileStat
    let blocks: LocatedBlock[] | undefined
    // Close-to-open: every open asks the NameServer for the current attributes (and the
    // block list, when the handle can read), so a file closed on another mount is seen
    // in full. Cached pieces of blocks the file no longer has are dropped.
    const cached = this.attrs.get(path) !== undefined
    try {
      if ((flags & O_ACCMODE) === O_WRONLY) {
        stat = await this.client.stat(path)
      } else {
        ({ stat, blocks } = await this.client.getBlocks({ path }))
      }
    } catch (err) {
      // The kernel found the name through our cache, but another mount removed or renamed
      // it: forget it and have the kernel look it up again (so `rm` on one mount then
      // `echo >> f` on another creates the file instead of failing).
      if (cached && isHissError(err) && err.code === 'ENOENT') {
        this.entryUnknown(path)
        throw new HissError('STALE_ENTRY', `${path}: removed by another client`)
      }
      throw err
    }
    if (stat.type === 'dir') throw HissError.EISDIR(path)
    this.attrs.set(path, stat, gen)
    const of = this.fileFor(stat, path)
    of.applyRemote(stat, blocks)
    if ((flags & O_ACCMODE) !== O_RDONLY && (flags & (O_APPEND | O_TRUNC)) !== 0) {
      // Opened to append or to truncate (>> and >), so a change is coming: wait for the
      // write lease here (see OpenFile.prepareWrite), pinned so that no last close of
      // another handle disposes the file meanwhile. Other opens for writing take it at
      // their first change: `touch` opens O_WRONLY only to set times, which needs no lease.
      of.refs++
      try {
        await of.prepareWrite()
      } catch (err) {
        if (--of.refs === 0) await this.lastClose(of).catch(() => {})
        throw err
      }
      of.refs--
    }
    const h = this.handles.open(of, flags)
    if (!h.writable && !of.hasLocalState) this.flushFree?.(h.fd, true)
    this.mapReads(h)
    return h.fd
  }

  /**
   * open(O_CREAT) of a name the lookup found absent. `flags` are the caller's open flags:
   * O_APPEND must reach the handle (writes go to the end as the NameServer has it, not
   * where this kernel last saw the end: another mount may append meanwhile).
   */
  async create (path: string, mode: number, flags = 0, ctx?: OpContext): Promise<number> {
    const c = await this.deps.pool.forCaller(ctx)
    let stat: FileStat
    let grant: WriteGrant | undefined
    try {
      // One round trip: the file, its write lease (held by the mount's own client, which
      // writes the data) and its first block.
      ({ stat, grant } = await c.createOpen(path, { mode: mode & 0o7777, leaseHolder: this.client.clientId }))
    } catch (err) {
      this.entryUnknown(path)
      // Lost a race: another client made the name after the kernel's lookup. ESTALE has
      // the kernel walk the path again; its fresh lookup finds that file and the kernel
      // opens it as for any existing file: O_EXCL fails, permissions are checked,
      // O_TRUNC truncates, O_APPEND reaches open().
      if (isHissError(err) && err.code === 'EEXIST') throw new HissError('STALE_ENTRY', `${path}: made by another client meanwhile`)
      throw err
    }
    this.entryAdded(path, stat)
    const of = this.fileFor(stat, path)
    of.applyRemote(stat, [])
    if (grant !== undefined) of.adoptSession(this.client.adoptWrite(grant))
    const h = this.handles.open(of, O_RDWR | (flags & O_APPEND))
    // With its lease already here, even the first write can be answered by the addon.
    if (this.asyncWrites !== undefined && of.hasLocalState) this.asyncMark(h, true)
    return h.fd
  }

  async mknod (path: string, mode: number, _dev: number, ctx?: OpContext): Promise<void> {
    const type = mode & S_IFMT
    if (type !== 0 && type !== S_IFREG) throw HissError.EPERM('only regular files can be created')
    const c = await this.deps.pool.forCaller(ctx)
    let st: FileStat
    try {
      st = await c.create(path, { mode: mode & 0o7777, exclusive: true })
    } catch (err) {
      this.entryUnknown(path)
      throw err
    }
    this.entryAdded(path, st)
  }

  async read (fd: number, buf: Buffer, len: number, pos: number): Promise<number> {
    const h = this.handles.get(fd)
    const nr = this.nativeReads
    if (nr === undefined) return h.file.read(buf, len, pos, h)
    if (h.mapped) {
      const end = nr.progress(fd)
      if (end >= 0) h.file.readOutsideTo(end, h)
    }
    const n = await h.file.read(buf, len, pos, h)
    // The read may have loaded the block list: from now on reads of what the cache holds
    // are answered without coming here.
    if (this.handles.find(fd) === h) this.mapReads(h)
    return n
  }

  /** Give `h` a native read map if its file is committed blocks only (see NativeReads). */
  private mapReads (h: Handle): void {
    const nr = this.nativeReads
    if (nr === undefined || h.mapped) return
    const l = h.file.readLayout()
    if (l === undefined) return
    nr.map(h.fd, { size: l.size, pieceBytes: this.cache.pieceBytes, layout: l.layout })
    h.mapped = true
  }

  async write (fd: number, buf: Buffer, len: number, pos: number, _ctx?: OpContext): Promise<number> {
    const h = this.handles.get(fd)
    if (!h.writable) throw HissError.from('EBADF', 'handle not open for writing')
    this.throwAsyncError(h)
    // fuse-native reuses its buffer once we answer; OpenFile.write is done with it by
    // then (it only copies it into the spool), so no private copy is made here.
    const n = await h.file.write(buf.subarray(0, len), pos, h.append)
    // Written under the file's lease: the next writes of this handle can be answered by
    // the addon (until the session ends, an error, or release).
    if (this.asyncWrites !== undefined && !h.async && h.file.hasLocalState && this.handles.find(fd) === h) this.asyncMark(h, true)
    return n
  }

  async flush (fd: number): Promise<void> {
    const h = this.handles.get(fd)
    this.throwAsyncError(h)
    await h.file.flush()
  }

  async fsync (fd: number, _datasync?: number): Promise<void> {
    const h = this.handles.get(fd)
    this.throwAsyncError(h)
    await h.file.fsync()
  }

  async release (fd: number): Promise<void> {
    // Before the number can be handed out again.
    this.flushFree?.(fd, false)
    const h0 = this.handles.find(fd)
    if (h0 !== undefined) this.asyncMark(h0, false)
    if (h0?.mapped === true) { this.nativeReads?.map(fd, null); h0.mapped = false }
    const h = this.handles.close(fd)
    if (h.writable) h.file.writersGone()
    if (h.file.refs === 0) await this.lastClose(h.file)
  }

  async ftruncate (fd: number, size: number): Promise<void> {
    await this.handles.get(fd).file.truncate(size)
  }

  async truncate (path: string, size: number, _ctx?: OpContext): Promise<void> {
    const stat = await this.client.stat(path)
    if (stat.type === 'dir') throw HissError.EISDIR(path)
    const existing = this.files.get(stat.ino)
    if (existing === undefined && stat.size === size) return
    const of = existing ?? this.fileFor(stat, path)
    if (existing === undefined) of.applyRemote(stat)
    // Pin the open file while we work, so a concurrent open shares it.
    of.refs++
    try {
      await of.truncate(size)
      // truncate(2) is immediate: commit now (keeping the lease if others write).
      if (of.refs > 1) await of.fsync()
      else await of.flush()
    } finally {
      of.refs--
      if (of.refs === 0) await this.lastClose(of)
    }
  }

  private async lastClose (of: OpenFile): Promise<void> {
    try {
      await of.closeLast()
    } catch (err) {
      this.log.error('commit on close failed', { ino: of.ino, path: of.path, err })
      if (isHissError(err) && err.code === 'LEASE_EXPIRED' && of.refs === 0) await this.sessionLost(of)
      throw err
    }
    if (of.refs === 0 && !of.hasLocalState) {
      // Without local state its view is its committed stat, so the mirror is current.
      if (this.files.get(of.ino) === of) this.files.delete(of.ino)
      await of.dispose()
    }
  }

  /**
   * The file's write session is gone for good (its lease lapsed: the mount did not renew
   * it for lease.timeout.ms): what it stored can never be committed, and what is still local
   * would be the commit of a write that no longer exists. The close has reported the
   * error; the file goes back to what the NameServer has, instead of showing a size no
   * read can serve until the mount ends.
   */
  private async sessionLost (of: OpenFile): Promise<void> {
    this.log.warn('write session lost: uncommitted changes dropped', { ino: of.ino, path: of.path })
    if (this.files.get(of.ino) === of) this.files.delete(of.ino)
    await of.dispose()
    this.attrs.deleteIno(of.ino)
  }

  /** Commit every file with local changes (shutdown). Errors are logged, not thrown. */
  async flushAll (): Promise<number> {
    let failed = 0
    await Promise.all([...this.files.values()].map(async of => {
      try {
        await of.closeLast()
      } catch (err) {
        failed++
        this.log.error('commit at unmount failed', { ino: of.ino, path: of.path, err })
      }
    }))
    return failed
  }

  async close (): Promise<void> {
    await this.flushAll()
    for (const of of this.files.values()) await of.dispose()
    this.files.clear()
    this.cache.clear()
    this.attrs.clear()
    this.dirs.clear()
    await this.deps.spool.destroy()
  }
}
