// The durable namespace: inodes, each file's block list and the id counters, in SQLite
// (WAL). Every mutation the NameServer acknowledges runs inside one transaction of this
// store, so it is on disk before the reply.
// Group commit: mutations made while no fsync is running share one SQLite transaction
// (each is its own SAVEPOINT, so a failing one rolls back alone); the transaction is
// committed after the current event-loop turn (setImmediate), or, when an fsync is
// still running then, as soon as it ends. Durability under sync=full: SQLite runs with
// synchronous=NORMAL (commits are written to the WAL but not fsync'd; checkpoints still
// fsync the WAL before copying it back and the database after, and the WAL header when
// the WAL is reused, so the files stay consistent), and the store itself fdatasyncs the
// WAL after each commit on libuv's thread pool, off the event loop: the equivalent of
// synchronous=FULL, but the event loop keeps serving requests (whose own commit then
// shares the next fsync) while the disk syncs. Replies wait for the fsync covering every
// change they could show (whenDurable), so nothing is acknowledged before it is on disk.
// Lazy transactions (lazyTransaction) are the exception: they are committed with the
// batch (so in the WAL, which a kill -9 does not touch) and fsync'd with it, but no reply
// waits for that fsync on their account (the record of a write's allocated blocks; a
// counter range they reserve still makes the batch strict).
// Startup work here is synchronous, as is every call: better-sqlite3 is synchronous and
// the NameServer's state changes are meant to be atomic with respect to the event loop.
import { closeSync, fdatasync, fdatasyncSync, fsyncSync, mkdirSync, openSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { BlockRef, FileType } from '../common/protocol.js'
import { HissError, fromNodeError } from '../common/errors.js'
import { blockRef } from '../common/block-ref.js'

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
  /**
   * Files: bytes of the blocks that are not sparse zeros (BlockRef.zero); null when that
   * is `size`. Derivable from the block rows, kept here so that a stat reads none.
   */
  allocated?: number | null
}

export type NewInode = Omit<InodeRow, 'ino'>

/** A row of the blocks table as read back (zero is 0 or 1). */
interface BlockRow { id: number, gen: number, length: number, zero: number }

function toBlockRef (r: BlockRow): BlockRef { return blockRef(r.id, r.gen, r.length, r.zero !== 0) }

/** A referenced block with what the block map needs to judge its replicas. */
export interface StoredBlock extends BlockRef { ino: number, replication: number }

/**
 * A block being patched in place (block-updates.ts): its committed generation, the range
 * of generations handed out for it, and the write session patching it with the
 * generations handed to that session (null in rows written before these were stored).
 */
export interface BlockUpdateRow { id: number, base: number, first: number, last: number, owner: string | null, tried: number[] }
/** A write session as stored (write-sessions.ts): its fields as JSON, and its uncommitted blocks. */
export interface StoredSession { writeId: string, state: string, allocs: Array<[number, number]> }

type Counter = 'next_ino' | 'next_block' | 'next_gen'

/** Inode rows cached by default (a few hundred bytes each). */
export const DEFAULT_CACHE_ROWS = 65536

/**
 * Bring a namespace written by an older version up to SCHEMA (CREATE TABLE IF NOT
 * EXISTS adds whole tables, not columns): block_updates gained owner and tried, blocks
 * gained zero and inodes allocated (rows written before are dense: 0 and null).
 */
function migrate (db: Database.Database): void {
  const columns = (table: string): Set<string> => new Set((db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>).map(c => c.name))
  const updates = columns('block_updates')
  if (!updates.has('owner')) db.exec('ALTER TABLE block_updates ADD COLUMN owner TEXT')
  if (!updates.has('tried')) db.exec('ALTER TABLE block_updates ADD COLUMN tried TEXT')
  if (!columns('blocks').has('zero')) db.exec('ALTER TABLE blocks ADD COLUMN zero INTEGER NOT NULL DEFAULT 0')
  if (!columns('inodes').has('allocated')) db.exec('ALTER TABLE inodes ADD COLUMN allocated INTEGER')
}

/** A name never holds '/', so this key is unambiguous. */
function dentryKey (parent: number, name: string): string { return `${parent}/${name}` }

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
  allocated INTEGER,
  UNIQUE (parent, name)
);
CREATE INDEX IF NOT EXISTS inodes_parent_type ON inodes (parent, type);
CREATE TABLE IF NOT EXISTS blocks (
  ino INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  id INTEGER NOT NULL UNIQUE,
  gen INTEGER NOT NULL,
  length INTEGER NOT NULL,
  zero INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (ino, idx)
);
CREATE TABLE IF NOT EXISTS block_updates (
  id INTEGER PRIMARY KEY,
  base INTEGER NOT NULL,
  first INTEGER NOT NULL,
  last INTEGER NOT NULL,
  owner TEXT,
  tried TEXT
);
CREATE TABLE IF NOT EXISTS write_sessions (
  write_id TEXT PRIMARY KEY,
  state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS write_allocs (
  block_id INTEGER PRIMARY KEY,
  write_id TEXT NOT NULL,
  gen INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS write_allocs_write ON write_allocs (write_id);
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
  /** How many inode rows the cache keeps (default DEFAULT_CACHE_ROWS). */
  cacheRows?: number
  /** The WAL fsync (tests inject a slow or failing one); fs.fdatasync by default. */
  fdatasync?: (fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => void
}

/** Called once the changes it waits for are durable (err undefined) or lost (err set). */
export type DurableCallback = (err: HissError | undefined) => void

function isSqliteError (err: unknown): boolean {
  const code = (err as { code?: unknown })?.code
  return typeof code === 'string' && code.startsWith('SQLITE_')
}

export class NamespaceStore {
  private readonly db: Database.Database
  private readonly counters: Record<Counter, number> = { next_ino: 0, next_block: 0, next_gen: 0 }
  /** Per counter, the value on disk: every value below it may have been handed out. */
  private readonly ceilings: Record<Counter, number> = { next_ino: 0, next_block: 0, next_gen: 0 }
  private readonly st: ReturnType<NamespaceStore['prepare']>
  /** Runs a function as a (nested: SAVEPOINT) transaction; built once, not per call. */
  private readonly runTx: (fn: () => unknown) => unknown
  /** The open group-commit batch: counters at its start and the replies waiting on it. */
  private batch: { counters: Record<Counter, number>, ceilings: Record<Counter, number>, waiters: DurableCallback[], strict: boolean, onCommit: DurableCallback[] } | undefined
  /** The last commit holding a strict (not lazy) change: replies wait for its fsync. */
  private strictCommitted = 0
  /** Inside lazyTransaction: what runs now does not make the batch strict. */
  private lazy = false
  /** sync=full: the WAL, opened for our own fdatasync; undefined under sync=normal. */
  private walFd: number | undefined
  private readonly fdatasync: NonNullable<StoreOptions['fdatasync']>
  /** Commits made, and how many of them a finished fsync covers. */
  private committed = 0
  private synced = 0
  private syncing = false
  /** Set by close() while an fsync runs: its callback closes the WAL fd. */
  private closeFdAfterSync = false
  private flushScheduled = false
  /** Replies waiting for an fsync, in commit order, each with the commit it needs. */
  private unsynced: Array<{ seq: number, cb: DurableCallback }> = []
  /** Set when a group commit failed: the in-memory state can no longer be trusted. */
  private failed: HissError | undefined
  private readonly onFatal: (err: HissError) => void
  private readonly cacheMax: number
  private readonly rows = new Map<number, InodeRow>()
  private readonly names = new Map<string, number>()
  private readonly subdirs = new Map<number, number>()

  constructor (rootDir: string, opts: StoreOptions) {
    let walFd: number | undefined
    try {
      mkdirSync(rootDir, { recursive: true })
      // A second NameServer on the same directory should fail fast, not wait 5 s for the lock.
      this.db = new Database(join(rootDir, DB_FILE), { timeout: 1000 })
    } catch (err) {
      throw fromNodeError(err, `opening the namespace in ${rootDir}`)
    }
    try {
      this.db.pragma('journal_mode = WAL')
      // NORMAL in both modes: under sync=full the store fdatasyncs the WAL itself after
      // each commit, before any reply (see the top of this file).
      this.db.pragma('synchronous = NORMAL')
      // One NameServer per directory: a second process must fail, not share the counters.
      this.db.pragma('locking_mode = EXCLUSIVE')
      this.db.pragma('foreign_keys = OFF')
      this.db.exec('BEGIN EXCLUSIVE; COMMIT')
      this.db.exec(SCHEMA)
      migrate(this.db)
      // The WAL exists from the first transaction on and, with the exclusive lock, stays
      // the same file until close (SQLite reuses it from its start after a checkpoint).
      if (opts.sync === 'full') walFd = openSync(join(rootDir, `${DB_FILE}-wal`), 'r+')
    } catch (err) {
      if (walFd !== undefined) closeSync(walFd)
      this.db.close()
      const code = (err as { code?: string }).code
      if (code === 'SQLITE_BUSY') throw new HissError('CONFIG', `namespace in ${rootDir} is in use by another NameServer`)
      throw fromNodeError(err, `opening the namespace in ${rootDir}`)
    }
    this.st = this.prepare()
    this.runTx = this.db.transaction((fn: () => unknown) => fn())
    this.onFatal = opts.onFatal ?? (() => {})
    this.fdatasync = opts.fdatasync ?? fdatasync
    this.cacheMax = Math.max(1, opts.cacheRows ?? DEFAULT_CACHE_ROWS)
    try {
      this.init(opts)
    } catch (err) {
      if (walFd !== undefined) closeSync(walFd)
      throw err
    }
    this.flush()
    if (walFd !== undefined) {
      // Startup: the schema, root and counters, and the WAL's directory entry, on disk.
      try {
        fdatasyncSync(walFd)
        const dirFd = openSync(rootDir, 'r')
        try { fsyncSync(dirFd) } finally { closeSync(dirFd) }
      } catch (err) {
        closeSync(walFd)
        this.db.close()
        throw fromNodeError(err, `syncing the namespace in ${rootDir}`)
      }
      this.walFd = walFd
    }
    this.synced = this.committed
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
      childrenPage: db.prepare<[number, number], InodeRow>('SELECT * FROM inodes WHERE parent = ? ORDER BY name LIMIT ?'),
      childrenAfter: db.prepare<[number, string, number], InodeRow>('SELECT * FROM inodes WHERE parent = ? AND name > ? ORDER BY name LIMIT ?'),
      childrenFrom: db.prepare<[number, string, number], InodeRow>('SELECT * FROM inodes WHERE parent = ? AND name >= ? ORDER BY name LIMIT ?'),
      anyChild: db.prepare<[number], { ino: number }>('SELECT ino FROM inodes WHERE parent = ? LIMIT 1'),
      subdirs: db.prepare<[number], { n: number }>("SELECT COUNT(*) AS n FROM inodes WHERE parent = ? AND type = 'dir'"),
      insert: db.prepare<[number, number, string, string, number, number, number, number, string, string, string, number, number, string | null]>(
        'INSERT INTO inodes (ino, parent, name, type, mode, uid, gid, size, atime, mtime, ctime, replication, block_size, target) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      del: db.prepare<[number]>('DELETE FROM inodes WHERE ino = ?'),
      move: db.prepare<[number, string, string, number]>('UPDATE inodes SET parent = ?, name = ?, ctime = ? WHERE ino = ?'),
      setAttrs: db.prepare<[number, number, number, string, string, string, number]>('UPDATE inodes SET mode = ?, uid = ?, gid = ?, atime = ?, mtime = ?, ctime = ? WHERE ino = ?'),
      touchDir: db.prepare<[string, string, number]>('UPDATE inodes SET mtime = ?, ctime = ? WHERE ino = ?'),
      setContent: db.prepare<[number, number | null, string, string, number]>('UPDATE inodes SET size = ?, allocated = ?, mtime = ?, ctime = ? WHERE ino = ?'),
      setRep: db.prepare<[number, string, number]>('UPDATE inodes SET replication = ?, ctime = ? WHERE ino = ?'),
      blocksOf: db.prepare<[number], BlockRow>('SELECT id, gen, length, zero FROM blocks WHERE ino = ? ORDER BY idx'),
      delBlocks: db.prepare<[number]>('DELETE FROM blocks WHERE ino = ?'),
      addBlock: db.prepare<[number, number, number, number, number, number]>('INSERT INTO blocks (ino, idx, id, gen, length, zero) VALUES (?, ?, ?, ?, ?, ?)'),
      allBlocks: db.prepare<[], BlockRow & { ino: number, replication: number }>('SELECT b.id, b.gen, b.length, b.zero, b.ino, i.replication FROM blocks b JOIN inodes i ON i.ino = b.ino'),
      countType: db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM inodes WHERE type = ?'),
      countAll: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM inodes'),
      pendingUpdates: db.prepare<[], { id: number, base: number, first: number, last: number, owner: string | null, tried: string | null }>('SELECT id, base, first, last, owner, tried FROM block_updates'),
      setUpdate: db.prepare<[number, number, number, number, string | null, string]>('INSERT INTO block_updates (id, base, first, last, owner, tried) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET base = excluded.base, first = excluded.first, last = excluded.last, owner = excluded.owner, tried = excluded.tried'),
      clearUpdate: db.prepare<[number]>('DELETE FROM block_updates WHERE id = ?'),
      sessions: db.prepare<[], { write_id: string, state: string }>('SELECT write_id, state FROM write_sessions'),
      allocs: db.prepare<[], { block_id: number, write_id: string, gen: number }>('SELECT block_id, write_id, gen FROM write_allocs'),
      putSession: db.prepare<[string, string]>('INSERT INTO write_sessions (write_id, state) VALUES (?, ?) ON CONFLICT(write_id) DO UPDATE SET state = excluded.state'),
      deleteSession: db.prepare<[string]>('DELETE FROM write_sessions WHERE write_id = ?'),
      deleteAllocsOf: db.prepare<[string]>('DELETE FROM write_allocs WHERE write_id = ?'),
      putAlloc: db.prepare<[number, string, number]>('INSERT INTO write_allocs (block_id, write_id, gen) VALUES (?, ?, ?)'),
      deleteAlloc: db.prepare<[number]>('DELETE FROM write_allocs WHERE block_id = ?'),
      blockRow: db.prepare<[number], { ino: number, gen: number, length: number }>('SELECT ino, gen, length FROM blocks WHERE id = ?'),
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
        this.counters[name] = row?.value ?? defaults[name]
        this.ceilings[name] = row?.value ?? defaults[name]
      }
      if (this.st.getIno.get(ROOT_INO) === undefined) {
        this.st.insert.run(ROOT_INO, 0, '', 'dir', 0o755, 0, 0, 0, opts.nowNs, opts.nowNs, opts.nowNs, opts.defaultReplication, opts.defaultBlockSize, null)
      }
    })
  }

  /**
   * Like transaction(), but no reply waits for the fsync on its account: it is in the WAL
   * once the batch commits (a kill -9 keeps it), on disk after the next fsync (a power
   * loss before that may lose it). A counter range reserved inside is still strict.
   */
  lazyTransaction<T> (fn: () => T): T {
    if (this.lazy) return this.transaction(fn)
    this.lazy = true
    try {
      return this.transaction(fn)
    } finally {
      this.lazy = false
    }
  }

  /** Run `fn` in one transaction: all of it reaches the disk, or none of it. */
  transaction<T> (fn: () => T): T {
    if (this.failed !== undefined) throw this.failed
    if (this.batch === undefined) this.beginBatch()
    if (!this.lazy) this.batch!.strict = true
    const before = { ...this.counters }
    const beforeCeilings = { ...this.ceilings }
    try {
      return this.runTx(fn) as T
    } catch (err) {
      // The in-memory counter and inode caches must roll back with the database.
      this.clearCache()
      Object.assign(this.counters, before)
      Object.assign(this.ceilings, beforeCeilings)
      // SQLite's own failures (a full disk: SQLITE_FULL) keep their meaning; anything
      // else is a HissError of the namespace logic or a bug, and passes unchanged.
      throw isSqliteError(err) ? fromNodeError(err, 'namespace store') : err
    }
  }

  private beginBatch (): void {
    this.st.begin.run()
    this.batch = { counters: { ...this.counters }, ceilings: { ...this.ceilings }, waiters: [], strict: false, onCommit: [] }
    // setImmediate, not a Clock timer: this is "after the current I/O turn", not a delay,
    // and must run under a ManualClock too.
    if (!this.flushScheduled) {
      this.flushScheduled = true
      setImmediate(this.onTurnEnd)
    }
  }

  /** After the turn: commit, unless an fsync runs (its end commits what gathered meanwhile). */
  private readonly onTurnEnd = (): void => {
    this.flushScheduled = false
    if (!this.syncing) this.flush()
  }

  /**
   * Undefined when every change is on disk; otherwise a promise that settles when all
   * changes made so far are (rejects if their commit or fsync failed).
   */
  whenDurable (): Promise<void> | undefined {
    if (this.failed !== undefined) return Promise.reject(this.failed)
    let settle: DurableCallback | undefined
    const p = new Promise<void>((resolve, reject) => { settle = err => { if (err === undefined) resolve(); else reject(err) } })
    return this.afterDurable(settle!) ? p : undefined
  }

  /**
   * The callback form of whenDurable, without a promise per reply: false when every
   * change is already on disk (cb is not called); otherwise true, and cb is called once
   * all changes made so far are durable, or with the error that lost them.
   */
  afterDurable (cb: DurableCallback): boolean {
    const failed = this.failed
    if (failed !== undefined) {
      queueMicrotask(() => { cb(failed) })
      return true
    }
    const b = this.batch
    // A lazy-only batch is still in this process's memory: a reply waits for its commit
    // (the WAL write a kill -9 keeps), not for the fsync.
    if (b !== undefined) (b.strict ? b.waiters : b.onCommit).push(cb)
    else if (this.synced < this.strictCommitted) this.unsynced.push({ seq: this.strictCommitted, cb })
    else return false
    return true
  }

  /** Commit the open batch and start its fsync (sync=full), or release its replies (normal). */
  flush (): void {
    const b = this.batch
    if (b === undefined) return
    this.batch = undefined
    try {
      this.st.commit.run()
    } catch (err) {
      try { if (this.db.inTransaction) this.st.rollback.run() } catch { /* already rolled back */ }
      Object.assign(this.counters, b.counters)
      Object.assign(this.ceilings, b.ceilings)
      this.fail(fromNodeError(err, 'committing the namespace'), [...b.waiters, ...b.onCommit])
      return
    }
    const seq = ++this.committed
    if (b.strict) this.strictCommitted = seq
    for (const cb of b.onCommit) cb(undefined)
    if (this.walFd === undefined) {
      this.synced = seq
      for (const cb of b.waiters) cb(undefined)
      return
    }
    for (const cb of b.waiters) this.unsynced.push({ seq, cb })
    this.startSync()
  }

  private startSync (): void {
    const fd = this.walFd
    if (this.syncing || fd === undefined || this.synced >= this.committed || this.failed !== undefined) return
    const target = this.committed
    this.syncing = true
    this.fdatasync(fd, err => {
      this.syncing = false
      if (this.closeFdAfterSync) {
        this.closeFdAfterSync = false
        closeSync(fd)
        return
      }
      if (err !== null) {
        this.fail(fromNodeError(err, 'syncing the namespace'), [])
        return
      }
      if (target > this.synced) this.synced = target
      this.release()
      // What gathered during this fsync: commit it now, and sync it.
      if (this.batch !== undefined) this.flush()
      else this.startSync()
    })
  }

  /** Resolve the replies whose commit a finished fsync covers. */
  private release (): void {
    const q = this.unsynced
    let i = 0
    while (i < q.length && q[i]!.seq <= this.synced) q[i++]!.cb(undefined)
    if (i === q.length) this.unsynced = []
    else if (i > 0) this.unsynced = q.slice(i)
  }

  /** A commit or fsync failed: the in-memory state can no longer be trusted. */
  private fail (he: HissError, waiters: DurableCallback[]): void {
    this.failed = he
    this.clearCache()
    for (const cb of waiters) cb(he)
    // Changes gathered during a failed fsync: never committed, never acknowledged.
    const open = this.batch
    if (open !== undefined) {
      this.batch = undefined
      try { if (this.db.inTransaction) this.st.rollback.run() } catch { /* already rolled back */ }
      for (const cb of [...open.waiters, ...open.onCommit]) cb(he)
    }
    for (const u of this.unsynced) u.cb(he)
    this.unsynced = []
    this.onFatal(he)
  }

  close (): void {
    if (!this.db.open) return
    this.flush()
    const fd = this.walFd
    if (fd !== undefined) {
      this.walFd = undefined
      if (this.failed === undefined && this.synced < this.committed) {
        try {
          fdatasyncSync(fd)
          this.synced = this.committed
          this.release()
        } catch (err) {
          this.fail(fromNodeError(err, 'syncing the namespace'), [])
        }
      }
      // An fsync still running on the thread pool uses the fd: it closes it when done.
      if (this.syncing) this.closeFdAfterSync = true
      else closeSync(fd)
    }
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
    const v = this.counters[name]
    const ceiling = this.ceilings[name]
    if (v + 1 > ceiling) {
      this.st.setCounter.run(name, v + COUNTER_RESERVE)
      this.ceilings[name] = v + COUNTER_RESERVE
      // A value handed out must never come again: the new ceiling is on disk before any reply.
      if (this.batch !== undefined) this.batch.strict = true
    }
    this.counters[name] = v + 1
    return v
  }

  /** Allocate a block id and a generation stamp, durably (callers wrap in a transaction). */
  allocateBlock (): { id: number, gen: number } {
    return { id: this.next('next_block'), gen: this.next('next_gen') }
  }

  /** A new generation stamp for an existing block (a patch; callers wrap in a transaction). */
  allocateGen (): number { return this.next('next_gen') }

  /** Durable record of blocks being patched in place (block-updates.ts). */
  pendingUpdates (): BlockUpdateRow[] {
    return this.st.pendingUpdates.all().map(r => ({ ...r, tried: r.tried === null ? [] : JSON.parse(r.tried) as number[] }))
  }

  setPendingUpdate (u: BlockUpdateRow): void { this.st.setUpdate.run(u.id, u.base, u.first, u.last, u.owner, JSON.stringify(u.tried)) }
  clearPendingUpdate (id: number): void { this.st.clearUpdate.run(id) }
  // Write sessions (leases) and the blocks they allocated, so that a restart keeps the
  // writes in flight (write-sessions.ts). Callers wrap these in a transaction.
  storedSessions (): StoredSession[] {
    const byId = new Map<string, StoredSession>()
    for (const r of this.st.sessions.all()) byId.set(r.write_id, { writeId: r.write_id, state: r.state, allocs: [] })
    for (const a of this.st.allocs.all()) byId.get(a.write_id)?.allocs.push([a.block_id, a.gen])
    return [...byId.values()]
  }

  putSession (writeId: string, state: string): void { this.st.putSession.run(writeId, state) }
  /** The session and the record of its uncommitted blocks. */
  deleteSession (writeId: string): void {
    this.st.deleteSession.run(writeId)
    this.st.deleteAllocsOf.run(writeId)
  }

  putAlloc (writeId: string, block: { id: number, gen: number }): void { this.st.putAlloc.run(block.id, writeId, block.gen) }
  /** Blocks a session allocated that a commit made part of the file. */
  deleteAllocs (ids: Iterable<number>): void { for (const id of ids) this.st.deleteAlloc.run(id) }

  /** The file holding block `id`, and the block's committed generation and length. */
  blockRow (id: number): { ino: number, gen: number, length: number } | undefined { return this.st.blockRow.get(id) }

  // --- inode cache -------------------------------------------------------
  // A bounded write-through cache of inode rows, of (parent, name) -> ino and of each
  // directory's subdirectory count, so path resolution and stat mostly skip SQLite.
  // Only the methods below change the inodes table, and each updates the cache with
  // exactly what it wrote; a rolled-back transaction (or a failed commit) empties the
  // cache, as the rows it may hold were never committed. Cached rows are frozen: a
  // caller changing one in place would otherwise change the cache.

  private remember (row: InodeRow): InodeRow {
    if (this.rows.size >= this.cacheMax) this.evict()
    Object.freeze(row)
    this.rows.set(row.ino, row)
    this.names.set(dentryKey(row.parent, row.name), row.ino)
    return row
  }

  /** Drop the oldest eighth of the cache (insertion order). */
  private evict (): void {
    let n = Math.max(1, this.cacheMax >> 3)
    for (const row of this.rows.values()) {
      if (n-- <= 0) break
      this.rows.delete(row.ino)
      this.names.delete(dentryKey(row.parent, row.name))
    }
    if (this.subdirs.size >= this.cacheMax) this.subdirs.clear()
  }

  private forget (ino: number): void {
    const row = this.rows.get(ino)
    if (row === undefined) return
    this.rows.delete(ino)
    this.names.delete(dentryKey(row.parent, row.name))
  }

  /** Replace a cached row's fields with what was just written to the table. */
  private patch (ino: number, fields: Partial<InodeRow>): void {
    const row = this.rows.get(ino)
    if (row !== undefined) this.rows.set(ino, Object.freeze({ ...row, ...fields }))
  }

  private clearCache (): void {
    this.rows.clear()
    this.names.clear()
    this.subdirs.clear()
  }

  /** How many inode rows the cache holds (tests). */
  get cachedRows (): number { return this.rows.size }

  get (ino: number): InodeRow | undefined {
    const hit = this.rows.get(ino)
    if (hit !== undefined) return hit
    const row = this.st.getIno.get(ino)
    return row === undefined ? undefined : this.remember(row)
  }

  lookup (parent: number, name: string): InodeRow | undefined {
    const ino = this.names.get(dentryKey(parent, name))
    if (ino !== undefined) {
      const hit = this.rows.get(ino)
      if (hit !== undefined) return hit
    }
    const row = this.st.lookup.get(parent, name)
    return row === undefined ? undefined : this.remember(row)
  }

  children (parent: number): InodeRow[] { return this.st.children.all(parent) }

  /**
   * At most `limit` children in name order (SQLite's byte order, which the UNIQUE
   * (parent, name) index already holds): those after `after`, or from `from` on when
   * given (inclusive), else from the first.
   */
  childrenPage (parent: number, limit: number, start?: { after: string } | { from: string }): InodeRow[] {
    if (start === undefined) return this.st.childrenPage.all(parent, limit)
    return 'after' in start ? this.st.childrenAfter.all(parent, start.after, limit) : this.st.childrenFrom.all(parent, start.from, limit)
  }
  hasChildren (parent: number): boolean { return this.st.anyChild.get(parent) !== undefined }

  subdirCount (parent: number): number {
    const hit = this.subdirs.get(parent)
    if (hit !== undefined) return hit
    const n = this.st.subdirs.get(parent)?.n ?? 0
    if (this.subdirs.size >= this.cacheMax) this.subdirs.clear()
    this.subdirs.set(parent, n)
    return n
  }

  insert (row: NewInode): InodeRow {
    const ino = this.next('next_ino')
    this.st.insert.run(ino, row.parent, row.name, row.type, row.mode, row.uid, row.gid, row.size, row.atime, row.mtime, row.ctime, row.replication, row.block_size, row.target)
    if (row.type === 'dir') this.subdirs.delete(row.parent)
    return this.remember({ ino, ...row })
  }

  /** Remove one inode and its block list; returns the blocks it referenced. */
  remove (ino: number): BlockRef[] {
    const row = this.get(ino)
    const blocks = this.blocksOf(ino)
    this.st.delBlocks.run(ino)
    this.st.del.run(ino)
    this.forget(ino)
    if (row?.type === 'dir') {
      this.subdirs.delete(row.parent)
      this.subdirs.delete(ino)
    }
    return blocks
  }

  move (ino: number, parent: number, name: string, ctime: string): void {
    const row = this.get(ino)
    this.st.move.run(parent, name, ctime, ino)
    this.forget(ino)
    if (row !== undefined) {
      this.remember({ ...row, parent, name, ctime })
      if (row.type === 'dir') {
        this.subdirs.delete(row.parent)
        this.subdirs.delete(parent)
      }
    }
  }

  setAttrs (r: InodeRow): void {
    this.st.setAttrs.run(r.mode, r.uid, r.gid, r.atime, r.mtime, r.ctime, r.ino)
    this.patch(r.ino, { mode: r.mode, uid: r.uid, gid: r.gid, atime: r.atime, mtime: r.mtime, ctime: r.ctime })
  }

  touchDir (ino: number, now: string): void {
    this.st.touchDir.run(now, now, ino)
    this.patch(ino, { mtime: now, ctime: now })
  }

  setReplication (ino: number, replication: number, ctime: string): void {
    this.st.setRep.run(replication, ctime, ino)
    this.patch(ino, { replication, ctime })
  }

  blocksOf (ino: number): BlockRef[] { return this.st.blocksOf.all(ino).map(toBlockRef) }

  /**
   * Replace a file's block list and size. Its allocated bytes follow from the list: the
   * blocks flagged `zero` are not counted.
   */
  setContent (ino: number, blocks: readonly BlockRef[], size: number, mtime: string, ctime: string): void {
    this.st.delBlocks.run(ino)
    let zeros = 0
    blocks.forEach((b, idx) => {
      if (b.zero === true) zeros += b.length
      this.st.addBlock.run(ino, idx, b.id, b.gen, b.length, b.zero === true ? 1 : 0)
    })
    const allocated = zeros === 0 ? null : Math.max(0, size - zeros)
    this.st.setContent.run(size, allocated, mtime, ctime, ino)
    this.patch(ino, { size, allocated, mtime, ctime })
  }

  /**
   * Move a committed block to a patched generation and length; the file's size follows
   * and its times stay (recovery of a patch whose writer is gone, see block-updates.ts).
   * Through setContent, the one path that writes a file's block list and size, so the
   * inode cache follows as for any commit. Rare: rewriting the block list is fine.
   */
  setBlockGeneration (id: number, gen: number, length: number): void {
    const at = this.st.blockRow.get(id)
    if (at === undefined) return
    const inode = this.get(at.ino)
    if (inode === undefined) return
    const blocks = this.blocksOf(at.ino).map(b => b.id === id ? { id, gen, length } : b)
    this.setContent(at.ino, blocks, inode.size + length - at.length, inode.mtime, inode.ctime)
  }

  * allBlocks (): IterableIterator<StoredBlock> {
    for (const r of this.st.allBlocks.iterate()) yield { ...toBlockRef(r), ino: r.ino, replication: r.replication }
  }
  count (type?: FileType): number {
    return type === undefined ? this.st.countAll.get()!.n : this.st.countType.get(type)!.n
  }
}
