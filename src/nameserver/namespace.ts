// The namespace operations with POSIX semantics and permission checks, over the SQLite
// store. Each mutation is one transaction; effects on the block map (blocks freed,
// replication changed) are handed to the hooks only after the transaction committed.
import { MAX_LIST_LIMIT, type BlockRef, type DirEntry, type FileStat, type FileType, type ListReply } from '../common/protocol.js'
import { HissError } from '../common/errors.js'
import { nowNs, splitPath } from '../common/paths.js'
import type { Clock } from '../common/clock.js'
import { ROOT_INO, type InodeRow, type NamespaceStore } from './namespace-store.js'
import { resolvePath, type Resolved } from './path-resolver.js'
import { NOBODY, R, S_ISGID, S_ISUID, W, X, type Identity, type Permissions } from './permissions.js'

export const DEFAULT_FILE_MODE = 0o644
export const DEFAULT_DIR_MODE = 0o755

export interface NamespaceHooks {
  /** Blocks no longer referenced by any file. */
  blocksFreed (blocks: readonly BlockRef[]): void
  /** A file's target replication changed. */
  replicationChanged (blocks: readonly BlockRef[], replication: number): void
}

export interface NamespaceOptions {
  perms: Permissions
  clock: Clock
  defaultReplication: number
  defaultBlockSize: number
  hooks: NamespaceHooks
}

export interface SetattrInput { mode?: number | undefined, uid?: number | undefined, gid?: number | undefined, atimeNs?: string | undefined, mtimeNs?: string | undefined }
export interface DuReply { files: number, dirs: number, bytes: number, spaceConsumed: number }

export class Namespace {
  readonly perms: Permissions
  private readonly hooks: NamespaceHooks

  constructor (readonly store: NamespaceStore, private readonly opts: NamespaceOptions) {
    this.perms = opts.perms
    this.hooks = opts.hooks
  }

  now (): string { return nowNs(this.opts.clock.wallNow()) }

  toStat (row: InodeRow): FileStat {
    const st: FileStat = {
      ino: row.ino,
      type: row.type,
      mode: row.mode,
      uid: row.uid,
      gid: row.gid,
      size: row.size,
      nlink: row.type === 'dir' ? 2 + this.store.subdirCount(row.ino) : 1,
      atimeNs: row.atime,
      mtimeNs: row.mtime,
      ctimeNs: row.ctime,
      replication: row.replication,
      blockSize: row.block_size,
    }
    if (row.type === 'symlink' && row.target !== null) st.target = row.target
    if (row.allocated !== undefined && row.allocated !== null && row.allocated < row.size) st.allocated = row.allocated
    return st
  }

  resolve (path: string, who: Identity, followFinal: boolean): Resolved {
    return resolvePath(this.store, this.perms, path, who, followFinal)
  }

  /** Resolve to an existing inode or throw ENOENT. */
  lookup (path: string, who: Identity, followFinal = true): InodeRow {
    const r = this.resolve(path, who, followFinal)
    if (r.node === undefined) throw HissError.ENOENT(path)
    return r.node
  }

  stat (path: string, who: Identity, nofollow = false): FileStat {
    return this.toStat(this.lookup(path, who, !nofollow))
  }

  list (path: string, who: Identity): DirEntry[] {
    return this.listPage(path, who, {}).entries
  }

  /**
   * A directory's entries in name order: all of them (from `start` on), or with `limit`
   * one page (see ListReply) of at most MAX_LIST_LIMIT, whatever was asked. SQLite is
   * asked for one row more than the page, to learn whether more follow.
   */
  listPage (path: string, who: Identity, page: { start?: { after: string } | { from: string } | undefined, limit?: number | undefined }): ListReply {
    const dir = this.lookup(path, who)
    if (dir.type !== 'dir') throw HissError.ENOTDIR(path)
    this.perms.require(dir, who, R, `read permission on ${path}`)
    const limit = page.limit === undefined ? undefined : Math.min(page.limit, MAX_LIST_LIMIT)
    // LIMIT -1 is SQLite's "no limit".
    const rows = this.store.childrenPage(dir.ino, limit === undefined ? -1 : limit + 1, page.start)
    const more = limit !== undefined && rows.length > limit
    if (more) rows.pop()
    const entries = rows.map((row): DirEntry => ({ name: row.name, ...this.toStat(row) }))
    return more ? { entries, more } : { entries }
  }

  readlink (path: string, who: Identity): string {
    const node = this.lookup(path, who, false)
    if (node.type !== 'symlink' || node.target === null) throw HissError.EINVAL(`not a symbolic link: ${path}`)
    return node.target
  }

  /** A new inode's row: owner is the caller; a setgid directory passes on its group. */
  newRow (parent: InodeRow, name: string, type: FileType, mode: number, who: Identity, extra: Partial<InodeRow> = {}): Omit<InodeRow, 'ino'> {
    const now = this.now()
    const inheritGroup = (parent.mode & S_ISGID) !== 0
    let m = mode & 0o7777
    if (type === 'dir' && inheritGroup) m |= S_ISGID
    return {
      parent: parent.ino,
      name,
      type,
      mode: m,
      uid: who.uid,
      gid: inheritGroup ? parent.gid : (who.gids[0] ?? NOBODY),
      size: 0,
      atime: now,
      mtime: now,
      ctime: now,
      replication: this.opts.defaultReplication,
      block_size: this.opts.defaultBlockSize,
      target: null,
      ...extra,
    }
  }

  private requireParentWrite (parent: InodeRow, who: Identity, path: string): void {
    this.perms.require(parent, who, W | X, `write permission on the directory of ${path}`)
  }

  mkdir (path: string, who: Identity, mode = DEFAULT_DIR_MODE, parents = false): FileStat {
    if (!parents) {
      const r = this.resolve(path, who, false)
      if (r.node !== undefined) throw HissError.EEXIST(path)
      const parent = r.parent!
      this.requireParentWrite(parent, who, path)
      const row = this.store.transaction(() => {
        const created = this.store.insert(this.newRow(parent, r.name, 'dir', mode, who))
        this.store.touchDir(parent.ino, created.ctime)
        return created
      })
      return this.toStat(row)
    }
    // mkdir -p: create each missing component; intermediate ones stay writable by
    // their owner so the next level can be made (as mkdir(1) does).
    const parts = splitPath(path)
    let node = this.lookup('/', who)
    for (let i = 0; i < parts.length; i++) {
      const prefix = '/' + parts.slice(0, i + 1).join('/')
      const r = this.resolve(prefix, who, true)
      if (r.node !== undefined) {
        if (r.node.type !== 'dir') throw i === parts.length - 1 ? HissError.EEXIST(prefix) : HissError.ENOTDIR(prefix)
        node = r.node
        continue
      }
      const parent = r.parent!
      this.requireParentWrite(parent, who, prefix)
      const m = i === parts.length - 1 ? mode : (mode | 0o300)
      node = this.store.transaction(() => {
        const created = this.store.insert(this.newRow(parent, r.name, 'dir', m, who))
        this.store.touchDir(parent.ino, created.ctime)
        return created
      })
    }
    return this.toStat(node)
  }

  create (path: string, who: Identity, mode = DEFAULT_FILE_MODE, exclusive = false): FileStat {
    const r = this.resolve(path, who, true)
    if (r.node !== undefined) {
      if (exclusive) throw HissError.EEXIST(path)
      if (r.node.type === 'dir') throw HissError.EISDIR(path)
      return this.toStat(r.node)
    }
    const parent = r.parent!
    this.requireParentWrite(parent, who, path)
    const row = this.store.transaction(() => {
      const created = this.store.insert(this.newRow(parent, r.name, 'file', mode, who))
      this.store.touchDir(parent.ino, created.ctime)
      return created
    })
    return this.toStat(row)
  }

  symlink (path: string, target: string, who: Identity): FileStat {
    const r = this.resolve(path, who, false)
    if (r.node !== undefined) throw HissError.EEXIST(path)
    const parent = r.parent!
    this.requireParentWrite(parent, who, path)
    const row = this.store.transaction(() => {
      const created = this.store.insert(this.newRow(parent, r.name, 'symlink', 0o777, who, { target, size: Buffer.byteLength(target) }))
      this.store.touchDir(parent.ino, created.ctime)
      return created
    })
    return this.toStat(row)
  }

  /**
   * Collect a directory's subtree for a recursive delete, checking that `who` may empty
   * every directory in it (read, write and search) and remove every entry (sticky bit).
   */
  private collectSubtree (dir: InodeRow, who: Identity, out: InodeRow[]): void {
    const children = this.store.children(dir.ino)
    if (children.length === 0) return
    this.perms.require(dir, who, R | W | X, `permission to empty directory ino ${dir.ino}`)
    for (const child of children) {
      this.perms.requireSticky(dir, child, who, `removing ${child.name}`)
      if (child.type === 'dir') this.collectSubtree(child, who, out)
      out.push(child)
    }
  }

  delete (path: string, who: Identity, recursive = false): void {
    const r = this.resolve(path, who, false)
    if (r.node === undefined) throw HissError.ENOENT(path)
    if (r.parent === undefined || r.node.ino === ROOT_INO) throw HissError.from('EBUSY', 'the root directory cannot be deleted')
    const node = r.node
    const parent = r.parent
    this.requireParentWrite(parent, who, path)
    this.perms.requireSticky(parent, node, who, `removing ${path}`)
    const doomed: InodeRow[] = []
    if (node.type === 'dir' && this.store.hasChildren(node.ino)) {
      if (!recursive) throw HissError.ENOTEMPTY(path)
      this.collectSubtree(node, who, doomed)
    }
    doomed.push(node)
    const freed: BlockRef[] = []
    this.store.transaction(() => {
      for (const row of doomed) freed.push(...this.store.remove(row.ino))
      this.store.touchDir(parent.ino, this.now())
    })
    if (freed.length > 0) this.hooks.blocksFreed(freed)
  }

  private isAncestor (ancestor: number, ino: number): boolean {
    let cur: number | undefined = ino
    for (let guard = 0; cur !== undefined && cur !== 0 && guard < 100000; guard++) {
      if (cur === ancestor) return true
      if (cur === ROOT_INO) return false
      cur = this.store.get(cur)?.parent
    }
    return false
  }

  rename (src: string, dst: string, who: Identity, noReplace = false): FileStat {
    const s = this.resolve(src, who, false)
    if (s.node === undefined) throw HissError.ENOENT(src)
    if (s.parent === undefined) throw HissError.from('EBUSY', 'the root directory cannot be renamed')
    const d = this.resolve(dst, who, false)
    if (d.parent === undefined) throw HissError.from('EBUSY', 'cannot rename over the root directory')
    const node = s.node
    const srcParent = s.parent
    const dstParent = d.parent
    if (d.node !== undefined && d.node.ino === node.ino) return this.toStat(node)
    this.requireParentWrite(srcParent, who, src)
    this.requireParentWrite(dstParent, who, dst)
    this.perms.requireSticky(srcParent, node, who, `renaming ${src}`)
    if (node.type === 'dir') {
      if (this.isAncestor(node.ino, dstParent.ino)) throw HissError.EINVAL(`cannot move ${src} into its own subtree`)
      // Moving a directory elsewhere rewrites its "..": write permission on it.
      if (dstParent.ino !== srcParent.ino) this.perms.require(node, who, W, `write permission on ${src}`)
    }
    const victim = d.node
    if (victim !== undefined) {
      if (noReplace) throw HissError.EEXIST(dst)
      if (node.type === 'dir' && victim.type !== 'dir') throw HissError.ENOTDIR(dst)
      if (node.type !== 'dir' && victim.type === 'dir') throw HissError.EISDIR(dst)
      if (victim.type === 'dir' && this.store.hasChildren(victim.ino)) throw HissError.ENOTEMPTY(dst)
      this.perms.requireSticky(dstParent, victim, who, `replacing ${dst}`)
    }
    const freed: BlockRef[] = []
    const now = this.now()
    this.store.transaction(() => {
      if (victim !== undefined) freed.push(...this.store.remove(victim.ino))
      this.store.move(node.ino, dstParent.ino, d.name, now)
      this.store.touchDir(srcParent.ino, now)
      if (dstParent.ino !== srcParent.ino) this.store.touchDir(dstParent.ino, now)
    })
    if (freed.length > 0) this.hooks.blocksFreed(freed)
    return this.toStat(this.store.get(node.ino)!)
  }

  /**
   * `node` after a chown and then a chmod by `who` (setattr, or a commit carrying them;
   * chown first, as tar does), or EPERM: only the superuser may give the file away; the
   * owner may change its group to one of theirs; ids that stay the same need no
   * permission; a non-superuser's change of ownership clears setuid/setgid of a file;
   * only the owner or the superuser may change the mode, and, as Linux does, a
   * non-member of the file's group cannot leave the setgid bit on.
   */
  withOwnership (node: InodeRow, who: Identity, a: { mode?: number | undefined, uid?: number | undefined, gid?: number | undefined }, what: string): InodeRow {
    const next: InodeRow = { ...node }
    const superuser = !this.perms.enabled || this.perms.isSuperuser(who)
    let ownershipChanged = false
    if (a.uid !== undefined && a.uid !== node.uid) {
      if (!superuser) throw HissError.EPERM(`only the superuser may change the owner of ${what}`)
      next.uid = a.uid
      ownershipChanged = true
    }
    if (a.gid !== undefined && a.gid !== node.gid) {
      if (!superuser && !(who.uid === node.uid && who.gids.includes(a.gid))) throw HissError.EPERM(`cannot change the group of ${what} to ${a.gid}`)
      next.gid = a.gid
      ownershipChanged = true
    }
    if (ownershipChanged && !superuser && node.type === 'file') next.mode &= ~(S_ISUID | S_ISGID)
    if (a.mode !== undefined) {
      if (!superuser && who.uid !== next.uid) throw HissError.EPERM(`only the owner may change the mode of ${what}`)
      let m = a.mode & 0o7777
      if (!superuser && !who.gids.includes(next.gid)) m &= ~S_ISGID
      next.mode = m
    }
    return next
  }

  setattr (path: string, who: Identity, a: SetattrInput, followFinal = true): FileStat {
    const node = this.lookup(path, who, followFinal)
    const next = this.withOwnership(node, who, a, path)
    const owner = !this.perms.enabled || this.perms.isSuperuser(who) || who.uid === node.uid
    if (a.atimeNs !== undefined || a.mtimeNs !== undefined) {
      if (!owner && !this.perms.can(node, who, W)) throw HissError.EACCES(`permission to change the times of ${path}`)
      if (a.atimeNs !== undefined) next.atime = a.atimeNs
      if (a.mtimeNs !== undefined) next.mtime = a.mtimeNs
    }
    next.ctime = this.now()
    this.store.transaction(() => { this.store.setAttrs(next) })
    return this.toStat(next)
  }

  /** Files in the subtree at `node` (the node itself when it is a file). */
  private filesUnder (node: InodeRow, out: InodeRow[]): void {
    if (node.type === 'file') { out.push(node); return }
    if (node.type !== 'dir') return
    for (const child of this.store.children(node.ino)) this.filesUnder(child, out)
  }

  setrep (path: string, who: Identity, replication: number): number {
    const node = this.lookup(path, who, true)
    const files: InodeRow[] = []
    this.filesUnder(node, files)
    for (const f of files) {
      if (!this.perms.isOwner(f, who) && !this.perms.can(f, who, W)) throw HissError.EACCES(`write permission on ino ${f.ino}`)
    }
    const changed = files.filter(f => f.replication !== replication)
    const now = this.now()
    this.store.transaction(() => {
      for (const f of changed) this.store.setReplication(f.ino, replication, now)
    })
    for (const f of changed) {
      const blocks = this.store.blocksOf(f.ino)
      if (blocks.length > 0) this.hooks.replicationChanged(blocks, replication)
    }
    return files.length
  }

  du (path: string, who: Identity): DuReply {
    const node = this.lookup(path, who, true)
    const out: DuReply = { files: 0, dirs: 0, bytes: 0, spaceConsumed: 0 }
    const walk = (n: InodeRow): void => {
      if (n.type === 'dir') {
        out.dirs++
        for (const c of this.store.children(n.ino)) walk(c)
      } else if (n.type === 'file') {
        out.files++
        out.bytes += n.size
        // Disk held by the replicas: blocks of zeros are stored sparse (FileStat.allocated).
        out.spaceConsumed += (n.allocated ?? n.size) * n.replication
      }
    }
    walk(node)
    return out
  }

  /** Every file under `path` with its canonical path (for fsck). */
  walkFiles (path: string, who: Identity, visit: (path: string, row: InodeRow) => void): void {
    const r = this.resolve(path, who, true)
    if (r.node === undefined) throw HissError.ENOENT(path)
    const walk = (p: string, n: InodeRow): void => {
      if (n.type === 'file') visit(p, n)
      else if (n.type === 'dir') for (const c of this.store.children(n.ino)) walk(p === '/' ? `/${c.name}` : `${p}/${c.name}`, c)
    }
    walk(r.path, r.node)
  }
}
