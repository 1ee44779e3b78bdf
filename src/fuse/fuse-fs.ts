// The file-system layer behind the FUSE ops: POSIX semantics over the client library.
// Namespace calls go out as the calling user (ClientPool); file data moves through the
// mount's own client, once the kernel has checked the caller's permission at open
// (default_permissions), as with any local file system's open file descriptions.
import type Fuse from 'fuse-native'
import type { Clock } from '../common/clock.js'
import type { HissConfig } from '../common/config.js'
import { HissError, isHissError } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import { joinPath, parentOf } from '../common/paths.js'
import type { FileStat, LocatedBlock } from '../common/protocol.js'
import type { HissFs } from '../client/types.js'
import { AttrCache } from './attr-cache.js'
import { BlockCache } from './block-cache.js'
import type { ClientPool, OpContext } from './client-pool.js'
import { HandleTable, O_ACCMODE, O_RDWR, O_WRONLY } from './handles.js'
import { OpenFile, type OpenFileDeps } from './open-file.js'
import type { Spool } from './spool.js'
import { S_IFMT, S_IFREG, toFuseStat, toFuseStatfs } from './stat-convert.js'

export type { OpContext } from './client-pool.js'

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

export class HissFuseFs {
  readonly attrs: AttrCache
  readonly cache: BlockCache
  readonly handles = new HandleTable()
  private readonly files = new Map<number, OpenFile>()
  private readonly lookups = new Map<string, { gen: number, p: Promise<FileStat> }>()
  private readonly fileDeps: OpenFileDeps
  private readonly client: HissFs
  private readonly log: Logger

  constructor (private readonly deps: HissFuseFsDeps) {
    this.client = deps.client
    this.log = deps.log
    this.attrs = new AttrCache(deps.clock, deps.cfg['fuse.attr.timeout.ms'])
    this.cache = new BlockCache(deps.client, { capacityBytes: deps.cfg['fuse.cache.bytes'], log: deps.log })
    this.fileDeps = {
      client: deps.client,
      cache: this.cache,
      spool: deps.spool,
      clock: deps.clock,
      log: deps.log,
      readaheadBytes: deps.cfg['fuse.readahead.bytes'],
      onCommit: stat => { this.attrs.updateIno(stat) },
    }
  }

  /** Open inodes (for tests and diagnostics). */
  get openFiles (): number { return this.files.size }

  // ------------------------------------------------------------ attributes

  private async lookup (path: string): Promise<FileStat> {
    const hit = this.attrs.get(path)
    if (hit !== undefined) return hit
    const gen = this.attrs.generation
    const pending = this.lookups.get(path)
    // Join a lookup already in flight only if nothing changed since it started.
    if (pending !== undefined && pending.gen === gen) return pending.p
    const p = this.client.stat(path, { nofollow: true }).then(st => {
      this.attrs.set(path, st, gen)
      return st
    }).finally(() => {
      if (this.lookups.get(path)?.p === p) this.lookups.delete(path)
    })
    this.lookups.set(path, { gen, p })
    return p
  }

  /** A name was added or removed: its own entry and its directory's times are stale. */
  private entryChanged (path: string): void {
    this.attrs.delete(path)
    this.attrs.delete(parentOf(path))
  }

  private view (st: FileStat): FileStat {
    const of = this.files.get(st.ino)
    return of === undefined ? st : of.localStat(st)
  }

  async getattr (path: string, _ctx?: OpContext): Promise<Fuse.Stat> {
    return toFuseStat(this.view(await this.lookup(path)))
  }

  async readdir (path: string, _ctx?: OpContext): Promise<{ names: string[], stats: Fuse.Stat[] }> {
    const gen = this.attrs.generation
    const [self, entries] = await Promise.all([this.lookup(path), this.client.list(path)])
    const names = ['.', '..']
    const selfStat = toFuseStat(self)
    const stats = [selfStat, selfStat]
    for (const e of entries) {
      const { name, ...st } = e
      this.attrs.set(joinPath(path, name), st, gen)
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
    const st = await c.mkdir(path, { mode: mode & 0o7777 })
    this.entryChanged(path)
    this.attrs.set(path, st)
  }

  async rmdir (path: string, ctx?: OpContext): Promise<void> {
    const st = await this.lookup(path)
    if (st.type !== 'dir') throw HissError.ENOTDIR(path)
    const c = await this.deps.pool.forCaller(ctx)
    try {
      await c.delete(path, { recursive: false })
    } finally {
      this.attrs.deleteTree(path)
      this.entryChanged(path)
    }
  }

  async unlink (path: string, ctx?: OpContext): Promise<void> {
    const st = await this.lookup(path)
    if (st.type === 'dir') throw HissError.EISDIR(path)
    const c = await this.deps.pool.forCaller(ctx)
    try {
      await c.delete(path, { recursive: false })
    } finally {
      this.entryChanged(path)
    }
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
    } finally {
      this.attrs.deleteTree(src)
      this.attrs.deleteTree(dst)
      this.entryChanged(src)
      this.entryChanged(dst)
    }
    this.attrs.set(dst, st)
    const of = this.files.get(st.ino)
    if (of !== undefined) of.path = dst
  }

  async symlink (target: string, path: string, ctx?: OpContext): Promise<void> {
    const c = await this.deps.pool.forCaller(ctx)
    const st = await c.symlink(target, path)
    this.entryChanged(path)
    this.attrs.set(path, st)
  }

  async link (_src: string, _dst: string, _ctx?: OpContext): Promise<void> {
    // What file systems without hard links answer (tar and cp report it; git falls back to rename).
    throw HissError.EPERM('hard links are not supported')
  }

  /** Every acknowledged namespace change is already durable on the NameServer. */
  async fsyncdir (_path: string): Promise<void> {}

  async chmod (path: string, mode: number, ctx?: OpContext): Promise<void> {
    await this.setattr(path, { mode: mode & 0o7777 }, ctx)
  }

  async chown (path: string, uid: number, gid: number, ctx?: OpContext): Promise<void> {
    const attrs: { uid?: number, gid?: number } = {}
    if (uid !== UNCHANGED_ID && uid >= 0) attrs.uid = uid
    if (gid !== UNCHANGED_ID && gid >= 0) attrs.gid = gid
    if (attrs.uid === undefined && attrs.gid === undefined) return
    await this.setattr(path, attrs, ctx)
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
    if ((flags & O_ACCMODE) === O_WRONLY) {
      stat = await this.client.stat(path)
    } else {
      ({ stat, blocks } = await this.client.getBlocks({ path }))
    }
    if (stat.type === 'dir') throw HissError.EISDIR(path)
    this.attrs.set(path, stat, gen)
    const of = this.fileFor(stat, path)
    of.applyRemote(stat, blocks)
    return this.handles.open(of, flags).fd
  }

  async create (path: string, mode: number, ctx?: OpContext): Promise<number> {
    const c = await this.deps.pool.forCaller(ctx)
    let stat: FileStat
    try {
      stat = await c.create(path, { mode: mode & 0o7777, exclusive: true })
    } catch (err) {
      // Lost a race with another creator: O_CREAT without O_EXCL opens the winner.
      if (isHissError(err) && err.code === 'EEXIST') return this.open(path, O_RDWR, ctx)
      throw err
    }
    this.entryChanged(path)
    this.attrs.set(path, stat)
    const of = this.fileFor(stat, path)
    of.applyRemote(stat, [])
    return this.handles.open(of, O_RDWR).fd
  }

  async mknod (path: string, mode: number, _dev: number, ctx?: OpContext): Promise<void> {
    const type = mode & S_IFMT
    if (type !== 0 && type !== S_IFREG) throw HissError.EPERM('only regular files can be created')
    const c = await this.deps.pool.forCaller(ctx)
    const st = await c.create(path, { mode: mode & 0o7777, exclusive: true })
    this.entryChanged(path)
    this.attrs.set(path, st)
  }

  async read (fd: number, buf: Buffer, len: number, pos: number): Promise<number> {
    const h = this.handles.get(fd)
    return h.file.read(buf, len, pos, h)
  }

  async write (fd: number, buf: Buffer, len: number, pos: number, _ctx?: OpContext): Promise<number> {
    const h = this.handles.get(fd)
    if (!h.writable) throw HissError.from('EBADF', 'handle not open for writing')
    // fuse-native reuses its buffer once we answer; OpenFile.write is done with it by
    // then (it only copies it into the spool), so no private copy is made here.
    return h.file.write(buf.subarray(0, len), pos, h.append)
  }

  async flush (fd: number): Promise<void> {
    await this.handles.get(fd).file.flush()
  }

  async fsync (fd: number, _datasync?: number): Promise<void> {
    await this.handles.get(fd).file.fsync()
  }

  async release (fd: number): Promise<void> {
    const h = this.handles.close(fd)
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
      throw err
    }
    if (of.refs === 0 && !of.hasLocalState) {
      if (this.files.get(of.ino) === of) this.files.delete(of.ino)
      await of.dispose()
    }
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
    await this.deps.spool.destroy()
  }
}
