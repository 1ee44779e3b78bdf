// The durable namespace: inodes, each file's block list and the id counters, in SQLite
// (WAL). Every mutation the NameServer acknowledges runs inside one transaction of this
// store, so it is on disk (synchronous=FULL fsyncs the WAL on commit) before the reply.
// Group commit: mutations made in the same event-loop turn share one SQLite transaction
// (each is its own SAVEPOINT, so a failing one rolls back alone) and one fsync, done in
// a setImmediate after the turn. Replies wait for that commit (whenDurable), so nothing
// is acknowledged before it is on disk, while concurrent clients share the fsync cost.
// Startup work here is synchronous, as is every call: better-sqlite3 is synchronous and
// the NameServer's state changes are meant to be atomic with respect to the event loop.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { BlockRef, FileType } from '../common/protocol.js'
import { HissError, fromNodeError } from '../common/errors.js'

export const ROOT_INO = 1
export const DB_FILE = 'namespace.db'

export interface InodeRow {
  ino: number
  parent: number
  name: string
  type: FileType
  mode: number
  uid: number
  gid: number
  size: number
  atime: string
  mtime: string
  ctime: string
  replication: number
  block_size: number
  target: string | null
}

export type NewInode = Omit<InodeRow, 'ino'>

/** A referenced block with what the block map needs to judge its replicas. */
export interface StoredBlock extends BlockRef { ino: number, replication: number }

/** A block being patched in place: committed generation `base`, attempts in [first, last]. */
export interface BlockUpdateRow { id: number, base: number, first: number, last: number }

type Counter = 'next_ino' | 'next_block' | 'next_gen'

/** How many ids a counter write reserves (see next()). */
export const COUNTER_RESERVE = 1024

const SCHEMA = `
CREATE TABLE IF NOT EXISTS inodes (
  ino INTEGER PRIMARY KEY,
  parent INTEGER NOT NULL,
  name TEXT NOT NULL,
  type TEXT NOT NULL CHECK (type IN ('file', 'dir', 'symlink')),
  mode INTEGER NOT NULL,
  uid INTEGER NOT NULL,
  gid INTEGER NOT NULL,
  size INTEGER NOT NULL DEFAULT 0,
  atime TEXT NOT NULL,
  mtime TEXT NOT NULL,
  ctime TEXT NOT NULL,
  replication INTEGER NOT NULL,
  block_size INTEGER NOT NULL,
  target TEXT,
  UNIQUE (parent, name)
);
CREATE INDEX IF NOT EXISTS inodes_parent_type ON inodes (parent, type);
CREATE TABLE IF NOT EXISTS blocks (
  ino INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  id INTEGER NOT NULL UNIQUE,
  gen INTEGER NOT NULL,
  length INTEGER NOT NULL,
  PRIMARY KEY (ino, idx)
);
CREATE TABLE IF NOT EXISTS block_updates (
  id INTEGER PRIMARY KEY,
  base INTEGER NOT NULL,
  first INTEGER NOT NULL,
  last INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
`

export interface StoreOptions {
  sync: 'full' | 'normal'
  /** Wall time as ns string, for the root inode created at the first start. */
  nowNs: string
  defaultReplication: number
  defaultBlockSize: number
  /**
   * Called when a group commit fails (disk error): the replies waiting on it get the
   * error, the store refuses further mutations, and the owner should stop (as an HDFS
   * NameNode does when it cannot sync its edit log) and restart from the disk state.
   */
  onFatal?: (err: HissError) => void
}

function isSqliteError (err: unknown): boolean {
  const code = (err as { code?: unknown })?.code
  return typeof code === 'string' && code.startsWith('SQLITE_')
}

export class NamespaceStore {
  private readonly db: Database.Database
  private readonly counters = new Map<Counter, number>()
  /** Per counter, the value on disk: every value below it may have been handed out. */
  private readonly ceilings = new Map<Counter, number>()
  private readonly st: ReturnType<NamespaceStore['prepare']>
  /** Runs a function as a (nested: SAVEPOINT) transaction; built once, not per call. */
  private readonly runTx: (fn: () => unknown) => unknown
  /** The open group-commit batch: counters at its start and the replies waiting on it. */
  private batch: { counters: Map<Counter, number>, ceilings: Map<Counter, number>, waiters: Array<{ resolve: () => void, reject: (e: unknown) => void }> } | undefined
  /** Set when a group commit failed: the in-memory state can no longer be trusted. */
  private failed: HissError | undefined
  private readonly onFatal: (err: HissError) => void

  constructor (rootDir: string, opts: StoreOptions) {
    try {
      mkdirSync(rootDir, { recursive: true })
      // A second NameServer on the same directory should fail fast, not wait 5 s for the lock.
      this.db = new Database(join(rootDir, DB_FILE), { timeout: 1000 })
    } catch (err) {
      throw fromNodeError(err, `opening the namespace in ${rootDir}`)
    }
    try {
      this.db.pragma('journal_mode = WAL')
      this.db.pragma(`synchronous = ${opts.sync === 'full' ? 'FULL' : 'NORMAL'}`)
      // One NameServer per directory: a second process must fail, not share the counters.
      this.db.pragma('locking_mode = EXCLUSIVE')
      this.db.pragma('foreign_keys = OFF')
      this.db.exec('BEGIN EXCLUSIVE; COMMIT')
      this.db.exec(SCHEMA)
    } catch (err) {
      this.db.close()
      const code = (err as { code?: string }).code
      if (code === 'SQLITE_BUSY') throw new HissError('CONFIG', `namespace in ${rootDir} is in use by another NameServer`)
      throw fromNodeError(err, `opening the namespace in ${rootDir}`)
    }
    this.st = this.prepare()
    this.runTx = this.db.transaction((fn: () => unknown) => fn())
    this.onFatal = opts.onFatal ?? (() => {})
    this.init(opts)
    this.flush()
  }

  private prepare () {
    const db = this.db
    return {
      begin: db.prepare('BEGIN'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      getIno: db.prepare<[number], InodeRow>('SELECT * FROM inodes WHERE ino = ?'),
      lookup: db.prepare<[number, string], InodeRow>('SELECT * FROM inodes WHERE parent = ? AND name = ?'),
      children: db.prepare<[number], InodeRow>('SELECT * FROM inodes WHERE parent = ? ORDER BY name'),
      anyChild: db.prepare<[number], { ino: number }>('SELECT ino FROM inodes WHERE parent = ? LIMIT 1'),
      subdirs: db.prepare<[number], { n: number }>("SELECT COUNT(*) AS n FROM inodes WHERE parent = ? AND type = 'dir'"),
      insert: db.prepare<[number, number, string, string, number, number, number, number, string, string, string, number, number, string | null]>(
        'INSERT INTO inodes (ino, parent, name, type, mode, uid, gid, size, atime, mtime, ctime, replication, block_size, target) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      del: db.prepare<[number]>('DELETE FROM inodes WHERE ino = ?'),
      move: db.prepare<[number, string, string, number]>('UPDATE inodes SET parent = ?, name = ?, ctime = ? WHERE ino = ?'),
      setAttrs: db.prepare<[number, number, number, string, string, string, number]>('UPDATE inodes SET mode = ?, uid = ?, gid = ?, atime = ?, mtime = ?, ctime = ? WHERE ino = ?'),
      touchDir: db.prepare<[string, string, number]>('UPDATE inodes SET mtime = ?, ctime = ? WHERE ino = ?'),
      setContent: db.prepare<[number, string, string, number]>('UPDATE inodes SET size = ?, mtime = ?, ctime = ? WHERE ino = ?'),
      setRep: db.prepare<[number, string, number]>('UPDATE inodes SET replication = ?, ctime = ? WHERE ino = ?'),
      blocksOf: db.prepare<[number], BlockRef>('SELECT id, gen, length FROM blocks WHERE ino = ? ORDER BY idx'),
      delBlocks: db.prepare<[number]>('DELETE FROM blocks WHERE ino = ?'),
      addBlock: db.prepare<[number, number, number, number, number]>('INSERT INTO blocks (ino, idx, id, gen, length) VALUES (?, ?, ?, ?, ?)'),
      allBlocks: db.prepare<[], StoredBlock>('SELECT b.id, b.gen, b.length, b.ino, i.replication FROM blocks b JOIN inodes i ON i.ino = b.ino'),
      countType: db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM inodes WHERE type = ?'),
      countAll: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM inodes'),
      pendingUpdates: db.prepare<[], BlockUpdateRow>('SELECT id, base, first, last FROM block_updates'),
      setUpdate: db.prepare<[number, number, number, number]>('INSERT INTO block_updates (id, base, first, last) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET base = excluded.base, first = excluded.first, last = excluded.last'),
      clearUpdate: db.prepare<[number]>('DELETE FROM block_updates WHERE id = ?'),
      blockRow: db.prepare<[number], { ino: number, gen: number, length: number }>('SELECT ino, gen, length FROM blocks WHERE id = ?'),
      setBlockGen: db.prepare<[number, number, number]>('UPDATE blocks SET gen = ?, length = ? WHERE id = ?'),
      growSize: db.prepare<[number, number]>('UPDATE inodes SET size = size + ? WHERE ino = ?'),
      getCounter: db.prepare<[string], { value: number }>('SELECT value FROM counters WHERE name = ?'),
      setCounter: db.prepare<[string, number]>('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value'),
    }
  }

  private init (opts: StoreOptions): void {
    this.transaction(() => {
      const defaults: Record<Counter, number> = { next_ino: ROOT_INO + 1, next_block: 1, next_gen: 1000 }
      for (const name of Object.keys(defaults) as Counter[]) {
        const row = this.st.getCounter.get(name)
        if (row === undefined) this.st.setCounter.run(name, defaults[name])
        this.counters.set(name, row?.value ?? defaults[name])
        this.ceilings.set(name, row?.value ?? defaults[name])
      }
      if (this.st.getIno.get(ROOT_INO) === undefined) {
        this.st.insert.run(ROOT_INO, 0, '', 'dir', 0o755, 0, 0, 0, opts.nowNs, opts.nowNs, opts.nowNs, opts.defaultReplication, opts.defaultBlockSize, null)
      }
    })
  }

  /** Run `fn` in one transaction: all of it reaches the disk, or none of it. */
  transaction<T> (fn: () => T): T {
    if (this.failed !== undefined) throw this.failed
    if (this.batch === undefined) this.beginBatch()
    const before = new Map(this.counters)
    const beforeCeilings = new Map(this.ceilings)
    try {
      return this.runTx(fn) as T
    } catch (err) {
      // The in-memory counter cache must roll back with the database.
      for (const [k, v] of before) this.counters.set(k, v)
      for (const [k, v] of beforeCeilings) this.ceilings.set(k, v)
      // SQLite's own failures (a full disk: SQLITE_FULL) keep their meaning; anything
      // else is a HissError of the namespace logic or a bug, and passes unchanged.
      throw isSqliteError(err) ? fromNodeError(err, 'namespace store') : err
    }
  }

  private beginBatch (): void {
    this.st.begin.run()
    this.batch = { counters: new Map(this.counters), ceilings: new Map(this.ceilings), waiters: [] }
    // setImmediate, not a Clock timer: this is "after the current I/O turn", not a delay,
    // and must run under a ManualClock too.
    setImmediate(() => { this.flush() })
  }

  /**
   * Undefined when every change is on disk; otherwise a promise that settles when the
   * open batch has been committed (rejects if that commit failed).
   */
  whenDurable (): Promise<void> | undefined {
    const b = this.batch
    if (b === undefined) return this.failed === undefined ? undefined : Promise.reject(this.failed)
    return new Promise((resolve, reject) => { b.waiters.push({ resolve, reject }) })
  }

  /** Commit the open batch (one fsync for all of it) and release the replies waiting on it. */
  flush (): void {
    const b = this.batch
    if (b === undefined) return
    this.batch = undefined
    try {
      this.st.commit.run()
    } catch (err) {
      try { if (this.db.inTransaction) this.st.rollback.run() } catch { /* already rolled back */ }
      for (const [k, v] of b.counters) this.counters.set(k, v)
      for (const [k, v] of b.ceilings) this.ceilings.set(k, v)
      const he = fromNodeError(err, 'committing the namespace')
      this.failed = he
      for (const w of b.waiters) w.reject(he)
      this.onFatal(he)
      return
    }
    for (const w of b.waiters) w.resolve()
  }

  close (): void {
    if (!this.db.open) return
    this.flush()
    this.db.close()
  }

  /**
   * The next value of a counter. The disk holds a reserved ceiling (HDFS-style id
   * ranges), not the exact next value: only when the in-memory value reaches it is a new
   * range of COUNTER_RESERVE written, so most allocations (addblock) write nothing and
   * need no fsync. After a crash the counters resume at the ceiling: values are skipped,
   * never reused. Callers wrap this in a transaction.
   */
  private next (name: Counter): number {
    const v = this.counters.get(name)!
    const ceiling = this.ceilings.get(name)!
    if (v + 1 > ceiling) {
      this.st.setCounter.run(name, v + COUNTER_RESERVE)
      this.ceilings.set(name, v + COUNTER_RESERVE)
    }
    this.counters.set(name, v + 1)
    return v
  }

  /** Allocate a block id and a generation stamp, durably (callers wrap in a transaction). */
  allocateBlock (): { id: number, gen: number } {
    return { id: this.next('next_block'), gen: this.next('next_gen') }
  }

  /** A new generation stamp for an existing block (a patch; callers wrap in a transaction). */
  allocateGen (): number { return this.next('next_gen') }

  /** Durable record of blocks being patched in place (block-updates.ts). */
  pendingUpdates (): BlockUpdateRow[] { return this.st.pendingUpdates.all() }
  setPendingUpdate (u: BlockUpdateRow): void { this.st.setUpdate.run(u.id, u.base, u.first, u.last) }
  clearPendingUpdate (id: number): void { this.st.clearUpdate.run(id) }
  /** The file holding block `id`, and the block's committed generation and length. */
  blockRow (id: number): { ino: number, gen: number, length: number } | undefined { return this.st.blockRow.get(id) }

  /** Move a committed block to a patched generation and length; the file's size follows. */
  setBlockGeneration (id: number, gen: number, length: number): void {
    const row = this.st.blockRow.get(id)
    if (row === undefined) return
    this.st.setBlockGen.run(gen, length, id)
    if (length !== row.length) this.st.growSize.run(length - row.length, row.ino)
  }

  get (ino: number): InodeRow | undefined { return this.st.getIno.get(ino) }
  lookup (parent: number, name: string): InodeRow | undefined { return this.st.lookup.get(parent, name) }
  children (parent: number): InodeRow[] { return this.st.children.all(parent) }
  hasChildren (parent: number): boolean { return this.st.anyChild.get(parent) !== undefined }
  subdirCount (parent: number): number { return this.st.subdirs.get(parent)?.n ?? 0 }

  insert (row: NewInode): InodeRow {
    const ino = this.next('next_ino')
    this.st.insert.run(ino, row.parent, row.name, row.type, row.mode, row.uid, row.gid, row.size, row.atime, row.mtime, row.ctime, row.replication, row.block_size, row.target)
    return { ino, ...row }
  }

  /** Remove one inode and its block list; returns the blocks it referenced. */
  remove (ino: number): BlockRef[] {
    const blocks = this.st.blocksOf.all(ino)
    this.st.delBlocks.run(ino)
    this.st.del.run(ino)
    return blocks
  }

  move (ino: number, parent: number, name: string, ctime: string): void { this.st.move.run(parent, name, ctime, ino) }
  setAttrs (r: InodeRow): void { this.st.setAttrs.run(r.mode, r.uid, r.gid, r.atime, r.mtime, r.ctime, r.ino) }
  touchDir (ino: number, now: string): void { this.st.touchDir.run(now, now, ino) }
  setReplication (ino: number, replication: number, ctime: string): void { this.st.setRep.run(replication, ctime, ino) }
  blocksOf (ino: number): BlockRef[] { return this.st.blocksOf.all(ino) }

  /** Replace a file's block list and size. */
  setContent (ino: number, blocks: readonly BlockRef[], size: number, mtime: string, ctime: string): void {
    this.st.delBlocks.run(ino)
    blocks.forEach((b, idx) => { this.st.addBlock.run(ino, idx, b.id, b.gen, b.length) })
    this.st.setContent.run(size, mtime, ctime, ino)
  }

  allBlocks (): IterableIterator<StoredBlock> { return this.st.allBlocks.iterate() }
  count (type?: FileType): number {
    return type === undefined ? this.st.countAll.get()!.n : this.st.countType.get(type)!.n
  }
}
