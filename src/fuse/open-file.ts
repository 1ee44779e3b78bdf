// The state of one open inode in this mount, shared by every handle on it (so two
// handles see each other's writes). A file is a list of immutable blocks; this keeps a
// working copy of that list as slots:
//
//   base    a block of the committed content, reused as is by the next commit
//   stored  a new block already on the DataServers, not yet committed
//   zero    a hole (truncate up, write past the end): reads as zeros, uploaded as zeros
//   local   a block being written, in a spool file: appended to by sequential writes
//           (a BlockUpload follows behind and streams it to the DataServers as it grows)
//           or copied-on-write for random writes, truncates and appends to a partial
//           last block, and uploaded at flush/fsync/close
//   patch   a committed block with a few small changes: the changed bytes sit at their
//           block offsets in a (sparse) spool file, with a bounded list of dirty
//           ranges; reads overlay them on the committed block. Flush/fsync/close sends
//           only the ranges to the block's replicas, which patch it in place to a new
//           generation (patch-ranges.ts); too many or too large changes, a shrink, or a
//           failed patch turn it into a local copy stored anew, as before.
//
// Every slot but the last holds exactly blockSize bytes when this mount wrote it. A
// commit (flush on close, fsync with keepOpen) uploads what is pending and makes the
// whole list the file's content in one NameServer transaction.
import { HissError, isHissError } from '../common/errors.js'
import { sleep, type Clock } from '../common/clock.js'
import type { Logger } from '../common/log.js'
import { nowNs } from '../common/paths.js'
import type { BlockRef, FileStat, LocatedBlock } from '../common/protocol.js'
import type { HissFs, WriteSession } from '../client/types.js'
import { withRetry } from '../client/retry.js'
import type { BlockCache } from './block-cache.js'
import { BlockUpload, zeroSource, type UploadSource } from './block-upload.js'
import { BufferPool, type PooledChunk } from '../common/buffer-pool.js'
import { Mutex } from './mutex.js'
import { settleAll } from '../common/settle-all.js'
import { DirtyRanges, patchLimits, rangeSource } from './patch-ranges.js'
import type { Spool, SpoolFile } from './spool.js'
import { bareBlockRef } from '../common/block-ref.js'

/** How far (bytes) a streaming upload may lag behind the writer before write() waits. */
export const MAX_UPLOAD_LAG_BYTES = 4 * 1024 * 1024
/** Completed blocks of one file still uploading before the writer waits for them. */
export const MAX_SEALED_UPLOADS = 2
/** Size of the recycled buffers a sequential write is copied into (the FUSE max_write). */
export const WRITE_BUFFER_BYTES = 128 * 1024
/** Recycled write buffers kept while unused, for all files of the mount (8 MiB). */
export const WRITE_POOL_MAX_FREE = 64
/**
 * Appends of at least this many bytes use a pooled buffer; smaller ones a buffer of
 * their size (a pooled one would hold 128 KiB for a few bytes in the spool queue).
 */
export const POOLED_WRITE_MIN_BYTES = WRITE_BUFFER_BYTES / 2
/** Parallel block uploads during a commit. */
export const COMMIT_UPLOAD_PARALLEL = 2
/** Attempts per pending block at commit (each re-reads the spool)... */
export const UPLOAD_ATTEMPTS = 5
/** ...with this pause before the second, doubling after (transient NO_DATASERVERS, a pipeline cut). */
export const UPLOAD_RETRY_BASE_MS = 250
/**
 * After a streaming upload fails, appends go on into the spool without starting another
 * one until this pause is over (doubling with each failure in a row, up to the cap). A
 * new upload per append would otherwise allocate a block on the NameServer and try the
 * dead pipeline once per write, thousands of times a second; the commit uploads what is
 * left, with its own retries.
 */
export const STREAM_RETRY_MAX_MS = 8000

/** The pause before retry `n` (1, 2, ...) of an upload: UPLOAD_RETRY_BASE_MS doubling, at most `maxMs`. */
function retryPauseMs (n: number, maxMs = Number.POSITIVE_INFINITY): number {
  return Math.min(maxMs, UPLOAD_RETRY_BASE_MS * 2 ** (n - 1))
}

export interface OpenFileDeps {
  /** The data-path client (the mount's own identity: the kernel checked the caller at open). */
  client: Pick<HissFs, 'getBlocks' | 'openWrite'>
  cache: BlockCache
  spool: Spool
  clock: Clock
  log: Logger
  readaheadBytes: number
  /** After every commit, with the committed stat (attribute cache refresh). */
  onCommit?: (stat: FileStat) => void
  /**
   * The file has just got local state (a write session or uncommitted changes): from now
   * on its attributes are localStat's, not the committed ones. Called synchronously when
   * hasLocalState turns true, before any change is made under it.
   */
  onLocalState?: (ino: number) => void
  /**
   * The file's block list or size changed (or it may have: re-read from the NameServer,
   * disposed): what readLayout returned before no longer holds. Synchronous.
   */
  onLayoutChange?: (ino: number) => void
  /**
   * What localStat returns may have changed (size, mtime, deferred ownership, or whether
   * there is local state at all). Called synchronously by every such change, before
   * anything else can see it.
   */
  onViewChange?: (ino: number) => void
  /** Buffers for appended data (default: one pool shared by the process). */
  writePool?: BufferPool
  /**
   * How long a write waits for another client's write lease on the file to end (it is
   * asked again with growing pauses) before failing with EBUSY; 0 fails at once.
   */
  leaseWaitMs?: number
}

const sharedWritePool = new BufferPool(WRITE_BUFFER_BYTES, WRITE_POOL_MAX_FREE)

/**
 * Per-handle read state: where the last read ended, how far read-ahead was asked for,
 * and the current sequential run (reads each starting near where the previous ended).
 */
export interface ReadCursor {
  lastEnd: number
  raUntil: number
  /** Where the current run began (the reader's last jump). */
  runStart: number
  /** Reads in the current run; 0 before the first read. */
  runReads: number
  /** The run's bytes below this were released from the block cache already. */
  released: number
}

export function newReadCursor (): ReadCursor {
  return { lastEnd: 0, raUntil: 0, runStart: 0, runReads: 0, released: 0 }
}

interface BaseSlot { kind: 'base', ref: BlockRef, located?: LocatedBlock }
/** `located`: set when the block was patched (its new generation, readable once committed). */
interface StoredSlot { kind: 'stored', ref: BlockRef, located?: LocatedBlock }
interface ZeroSlot { kind: 'zero', length: number, upload?: BlockUpload }
interface LocalSlot { kind: 'local', spool: SpoolFile, length: number, upload?: BlockUpload }
/** `ref`/`located`: the committed block; bytes past ref.length read from the spool (zeros unless written). */
interface PatchSlot { kind: 'patch', ref: BlockRef, located: LocatedBlock, spool: SpoolFile, length: number, dirty: DirtyRanges }
type Slot = BaseSlot | StoredSlot | ZeroSlot | LocalSlot | PatchSlot
type PendingSlot = ZeroSlot | LocalSlot

interface Segment { slot: Slot, slotOff: number, n: number, dstOff: number }

/** The file was rewritten elsewhere and its new block list applied: plan again. */
class FileChanged extends Error {}

function slotLength (s: Slot): number {
  return s.kind === 'base' || s.kind === 'stored' ? s.ref.length : s.length
}

/** Where each byte of a read of a patch slot comes from: the committed block, or the spool. */
function patchPieces (s: PatchSlot, off: number, n: number): Array<{ from: 'base' | 'spool', off: number, n: number }> {
  const out: Array<{ from: 'base' | 'spool', off: number, n: number }> = []
  const end = off + n
  // Unchanged bytes: the committed block's below its length, the spool's zeros past it.
  const unchanged = (a: number, b: number): void => {
    const mid = Math.min(Math.max(a, s.ref.length), b)
    if (mid > a) out.push({ from: 'base', off: a, n: mid - a })
    if (b > mid) out.push({ from: 'spool', off: mid, n: b - mid })
  }
  let p = off
  for (const [a, b] of s.dirty.overlapping(off, end)) {
    const da = Math.max(a, off)
    const db = Math.min(b, end)
    if (da > p) unchanged(p, da)
    out.push({ from: 'spool', off: da, n: db - da })
    p = db
  }
  if (end > p) unchanged(p, end)
  return out
}

export class OpenFile {
  /** Open handles on this inode in this mount. */
  refs = 0
  /** Of those, the ones open for writing. */
  writers = 0
  private slots: Slot[] = []
  private offsets: number[] = []
  private blockSizeBytes: number
  private loaded = false
  private stat: FileStat
  // What localStat is made of. Each is an accessor whose setter tells onViewChange, so no
  // change of the attributes this mount shows can slip past the native attribute table.
  private sizeValue = 0
  private sessionValue: WriteSession | undefined
  private dirtyValue = false
  private mtimeValue: string
  /** A chmod/chown deferred to the next commit (see deferOwnership). */
  private ownershipValue: { mode?: number, uid?: number, gid?: number } = {}
  private readonly lock = new Mutex()
  private readonly sealed: BlockUpload[] = []
  private disposed = false
  /** The wait for this file's write lease, run outside the lock (see changeLocked). */
  private leaseWait: Promise<void> | undefined
  /**
   * A write session that wait obtained, not installed yet, with the count of this file's
   * commits when it was opened: its base content is current only if none came since.
   */
  private readySession: { session: WriteSession, commits: number } | undefined
  /** Commits made through this file (see readySession). */
  private commits = 0
  /** Streaming uploads failed in a row, and until when (clock.now) appends start none. */
  private streamFailures = 0
  private streamRetryAt = 0

  constructor (private readonly deps: OpenFileDeps, stat: FileStat, public path: string) {
    this.stat = stat
    this.blockSizeBytes = stat.blockSize > 0 ? stat.blockSize : 64 * 1024 * 1024
    this.mtimeValue = stat.mtimeNs
    this.sizeValue = stat.size
  }

  private get sizeBytes (): number { return this.sizeValue }
  private set sizeBytes (v: number) { this.sizeValue = v; this.viewChanged() }
  private get session (): WriteSession | undefined { return this.sessionValue }
  private set session (v: WriteSession | undefined) { this.sessionValue = v; this.viewChanged() }
  private get dirtyFlag (): boolean { return this.dirtyValue }
  private set dirtyFlag (v: boolean) { this.dirtyValue = v; this.viewChanged() }
  private get mtimeNs (): string { return this.mtimeValue }
  private set mtimeNs (v: string) { this.mtimeValue = v; this.viewChanged() }
  private get ownership (): { mode?: number, uid?: number, gid?: number } { return this.ownershipValue }
  private set ownership (v: { mode?: number, uid?: number, gid?: number }) { this.ownershipValue = v; this.viewChanged() }

  /** Synchronously, on every change of what localStat returns (see onViewChange). */
  private viewChanged (): void { this.deps.onViewChange?.(this.ino) }

  get ino (): number { return this.stat.ino }
  get size (): number { return this.sizeBytes }
  get dirty (): boolean { return this.dirtyFlag }
  /** Local changes or an open write session: sizes come from here, not the NameServer. */
  get hasLocalState (): boolean { return this.dirtyFlag || this.session !== undefined }
  get blockCount (): number { return this.slots.length }

  /** `stat` as this mount sees it: size and mtime from local state while writing. */
  localStat (stat: FileStat): FileStat {
    if (!this.hasLocalState) return stat
    // The NameServer's allocated bytes are of its content, not of this local one.
    const { allocated: _committed, ...rest } = stat
    return { ...rest, size: this.sizeBytes, mtimeNs: this.mtimeNs, ...this.ownership }
  }

  /** Owner and group as last seen here (a deferred chown included). */
  get uid (): number { return this.ownership.uid ?? this.stat.uid }
  get gid (): number { return this.ownership.gid ?? this.stat.gid }

  /**
   * Fresh attributes (and block list, when read) from the NameServer, on open: ignored
   * while this mount has local changes, which are newer.
   */
  applyRemote (stat: FileStat, blocks?: LocatedBlock[]): void {
    if (this.hasLocalState || this.disposed) return
    this.stat = stat
    this.mtimeNs = stat.mtimeNs
    if (stat.blockSize > 0) this.blockSizeBytes = stat.blockSize
    if (blocks !== undefined) {
      this.applyBlocks(blocks)
    } else {
      this.loaded = false
      this.sizeBytes = stat.size
      this.deps.onLayoutChange?.(this.ino)
    }
  }

  /**
   * A stat of this file fetched from the NameServer outside an open (a lookup or a
   * listing, e.g. the fstat of `tail -f`): when another client changed the content since
   * we loaded it (size or mtime differ from what we last applied or committed), take it,
   * so a handle that stays open reads what was appended elsewhere. Ignored while this
   * mount has local state, which is newer.
   */
  remoteStatSeen (stat: FileStat): void {
    if (this.hasLocalState || this.disposed || stat.ino !== this.stat.ino) return
    if (stat.size === this.stat.size && stat.mtimeNs === this.stat.mtimeNs) return
    this.applyRemote(stat)
  }

  /**
   * The file as committed blocks only, for reads answered outside JS (the mount's native
   * read path): its size and (offset, block id, generation) per block. Undefined unless
   * every byte is in a committed block with a location and nothing is pending here.
   * Valid until onLayoutChange or onLocalState.
   */
  readLayout (): { size: number, layout: Float64Array } | undefined {
    if (!this.loaded || this.hasLocalState || this.disposed) return undefined
    const n = this.slots.length
    if (n === 0) return undefined
    const layout = new Float64Array(n * 3)
    let off = 0
    for (let i = 0; i < n; i++) {
      const s = this.slots[i]!
      if (s.kind !== 'base' || s.located === undefined || this.offsets[i] !== off) return undefined
      layout[3 * i] = off
      layout[3 * i + 1] = s.located.id
      layout[3 * i + 2] = s.located.gen
      off += s.located.length
    }
    return off === this.sizeBytes ? { size: off, layout } : undefined
  }

  /**
   * Reads of this handle up to `end` were answered outside JS: the run goes on from
   * there, so the next read here is seen as sequential (read-ahead, release).
   */
  readOutsideTo (end: number, cursor: ReadCursor): void {
    if (cursor.runReads === 0) {
      // Only native reads so far: a run as if one read had ended there.
      cursor.runStart = cursor.released = cursor.lastEnd = end
      cursor.runReads = 1
    } else if (end > cursor.lastEnd) {
      cursor.lastEnd = end
      cursor.runReads++
    }
  }

  /**
   * The write session the NameServer opened together with creating this (new, empty)
   * file: the first write needs no round trip to open one.
   */
  adoptSession (session: WriteSession): void {
    if (this.session !== undefined || this.disposed || this.dirtyFlag) {
      void session.abort().catch(() => {})
      return
    }
    this.applyBlocks(session.baseBlocks)
    if (session.blockSize > 0) this.blockSizeBytes = session.blockSize
    this.session = session
    this.deps.onLocalState?.(this.ino)
  }

  /** The file's mtime was set explicitly (utimens) while it is open here. */
  setMtime (mtimeNs: string): void {
    this.mtimeNs = mtimeNs
  }

  /**
   * Set the mtime that the next commit carries, if there are uncommitted writes (under
   * the lock, so no commit is in flight). False: nothing pending, set it on the NameServer.
   */
  async deferMtime (mtimeNs: string): Promise<boolean> {
    return this.lock.run(async () => {
      if (!this.dirtyFlag) return false
      this.mtimeNs = mtimeNs
      return true
    })
  }

  /**
   * Carry a chmod/chown in the next commit, if there are uncommitted writes (under the
   * lock, so no commit is in flight): tar's fchown and fchmod before close then cost no
   * round trip. The caller decided that the NameServer would apply them for the commit's
   * identity exactly as for the setattr it saves. False: nothing pending, send it now.
   */
  async deferOwnership (a: { mode?: number, uid?: number, gid?: number }): Promise<boolean> {
    return this.lock.run(async () => {
      if (!this.dirtyFlag) return false
      this.ownership = { ...this.ownership, ...a }
      return true
    })
  }

  // ---------------------------------------------------------------- reads

  async read (dst: Buffer, len: number, pos: number, cursor?: ReadCursor): Promise<number> {
    for (let attempt = 0; attempt < 4; attempt++) {
      if (!this.loaded) await this.lock.run(() => this.loadLocked())
      const end = Math.min(pos + len, this.sizeBytes)
      if (pos >= end) return 0
      const segs = this.plan(pos, end)
      // Blocks not readable lock-free: uploaded but uncommitted (commit them), or
      // committed here without locations yet (ask the NameServer).
      if (segs.some(g => g.slot.kind === 'stored' || (g.slot.kind === 'base' && g.slot.located === undefined))) {
        try {
          await this.lock.run(() => this.prepareReadLocked(pos, end))
        } catch (err) {
          if (!(err instanceof FileChanged)) throw err
        }
        continue
      }
      await settleAll(segs.map(g => this.readSegment(g, dst)))
      if (cursor !== undefined) this.advance(pos, end, cursor)
      return end - pos
    }
    throw HissError.EIO(`file ${this.path} kept changing under a read`)
  }

  private plan (pos: number, end: number): Segment[] {
    const segs: Segment[] = []
    let i = this.slotIndex(pos)
    let p = pos
    while (p < end && i < this.slots.length) {
      const s = this.slots[i]!
      const start = this.offsets[i]!
      const slotOff = p - start
      const n = Math.min(end, start + slotLength(s)) - p
      if (n > 0) segs.push({ slot: s, slotOff, n, dstOff: p - pos })
      p += Math.max(n, 0)
      i++
    }
    return segs
  }

  private async readSegment (g: Segment, dst: Buffer): Promise<void> {
    const s = g.slot
    if (s.kind === 'zero') { dst.fill(0, g.dstOff, g.dstOff + g.n); return }
    if (s.kind === 'local') { await s.spool.read(dst, g.dstOff, g.n, g.slotOff); return }
    if (s.kind === 'patch') {
      await settleAll(patchPieces(s, g.slotOff, g.n).map(p => p.from === 'spool'
        ? s.spool.read(dst, g.dstOff + p.off - g.slotOff, p.n, p.off)
        : this.deps.cache.read(s.located, this.ino, p.off, p.n, dst, g.dstOff + p.off - g.slotOff)))
      return
    }
    if (s.kind === 'base' && s.located !== undefined) {
      await this.deps.cache.read(s.located, this.ino, g.slotOff, g.n, dst, g.dstOff)
      return
    }
    throw HissError.EIO('block not readable')
  }

  /**
   * Follow a handle's reads. A read starting within a piece of where the last one ended
   * continues the run (the kernel's read-ahead sends reads slightly out of order); any
   * other read starts a new one. A run of two reads or more (or a read from offset 0) is
   * sequential: it gets read-ahead, and the cache drops the pieces the run has left a
   * piece behind. A random reader's reads land near each other now and then, but such
   * a "run" never gets a whole piece behind it, so none of its cached pieces are dropped
   * (dropping them made every later read of them a 1 MiB fetch again).
   */
  private advance (pos: number, end: number, cursor: ReadCursor): void {
    const slack = this.deps.cache.pieceBytes
    if (cursor.runReads > 0 && Math.abs(pos - cursor.lastEnd) <= slack) {
      cursor.runReads++
      if (pos < cursor.runStart) cursor.runStart = pos
    } else {
      cursor.runStart = pos
      cursor.runReads = 1
      cursor.released = pos
    }
    cursor.lastEnd = end
    if (pos !== 0 && cursor.runReads < 2) { cursor.raUntil = end; return }
    // Pieces wholly inside [runStart, to) not released yet: each ends past `released`,
    // so starts less than a piece before it.
    const from = Math.max(cursor.released - slack, cursor.runStart)
    const to = pos - slack
    if (to > cursor.released) {
      cursor.released = to
      for (const g of this.plan(from, to)) {
        if (g.slot.kind === 'base' && g.slot.located !== undefined) this.deps.cache.release(g.slot.located, g.slotOff, g.slotOff + g.n)
      }
    }
    this.readahead(end, cursor)
  }

  private readahead (end: number, cursor: ReadCursor): void {
    const ra = this.deps.readaheadBytes
    if (ra <= 0) return
    // Keep the window at least half full: top it up once half of it has been consumed,
    // with one ranged read per block for the whole top-up (the DataServer reads ahead
    // within a request; a request per piece costs a round trip and a file open each).
    if (cursor.raUntil >= end + Math.max(ra / 2, this.deps.cache.pieceBytes)) return
    const from = Math.max(end, cursor.raUntil)
    const to = Math.min(this.sizeBytes, end + ra)
    cursor.raUntil = to
    if (from >= to) return
    for (const g of this.plan(from, to)) {
      if (g.slot.kind === 'base' && g.slot.located !== undefined) {
        this.deps.cache.prefetch(g.slot.located, this.ino, g.slotOff, g.n)
      }
    }
  }

  private async loadLocked (): Promise<void> {
    if (this.loaded) return
    const { stat, blocks } = await this.deps.client.getBlocks({ ino: this.ino })
    if (this.hasLocalState) { this.loaded = true; return }
    this.applyRemote(stat, blocks)
  }

  private async prepareReadLocked (pos: number, end: number): Promise<void> {
    if (this.plan(pos, end).some(g => g.slot.kind === 'stored')) await this.commitLocked(true)
    for (const g of this.plan(pos, end)) {
      if (g.slot.kind === 'base' && g.slot.located === undefined) await this.locate(g.slot)
    }
  }

  /** Give base slots their locations and read tokens (after a commit made them). */
  private async locate (slot: BaseSlot): Promise<LocatedBlock> {
    if (slot.located !== undefined) return slot.located
    const { stat, blocks } = await this.deps.client.getBlocks({ ino: this.ino })
    const byKey = new Map(blocks.map(b => [`${b.id}:${b.gen}`, b]))
    for (const s of this.slots) {
      if (s.kind === 'base') {
        const b = byKey.get(`${s.ref.id}:${s.ref.gen}`)
        if (b !== undefined) s.located = b
      }
    }
    if (slot.located !== undefined) return slot.located
    if (!this.hasLocalState) {
      // Someone else rewrote the file: take its new content.
      this.applyRemote(stat, blocks)
      throw new FileChanged()
    }
    throw HissError.EIO(`block ${slot.ref.id} of ${this.path} is no longer part of the file`)
  }

  // ---------------------------------------------------------------- writes

  /**
   * Write `data` at `pos`, or at the end when `append`. `data` is borrowed (the kernel's
   * buffer, reused once the write is answered): it is copied into the spool before the
   * returned promise settles, and no reference to it may outlive that.
   */
  async write (data: Buffer, pos: number, append: boolean): Promise<number> {
    return this.changeLocked(async () => {
      if (append) pos = this.sizeBytes
      if (pos > this.sizeBytes) await this.growLocked(pos)
      let done = 0
      while (done < data.length) {
        const p = pos + done
        const rest = data.subarray(done)
        done += p === this.sizeBytes ? await this.appendLocked(rest) : await this.overwriteLocked(p, rest)
      }
      return data.length
    })
  }

  async truncate (size: number): Promise<void> {
    if (!Number.isSafeInteger(size) || size < 0) throw HissError.EINVAL('bad size')
    await this.changeLocked(async () => {
      if (size < this.sizeBytes) await this.shrinkLocked(size)
      else if (size > this.sizeBytes) await this.growLocked(size)
    })
  }

  /**
   * Every change to the content goes through here: under the lock, with the lease, and
   * marked dirty *after* it is made. A change may commit the block list part-way
   * (copy-on-write must read a committed block back), which clears the dirty flag; what
   * the change does after that must still reach the next flush/fsync.
   */
  private async changeLocked<T> (fn: () => Promise<T>): Promise<T> {
    // Waiting for another client's lease can take up to client.retry.ms: wait before
    // taking the lock, so that reads, flushes and closes of this file on this mount go on
    // meanwhile (a `cat` must not hang behind an `echo >>` that waits for another host).
    await this.prepareWrite()
    return this.lock.run(async () => {
      await this.ensureSessionLocked()
      this.touch()
      const result = await fn()
      this.touch()
      return result
    })
  }

  private touch (): void {
    const fresh = !this.hasLocalState
    this.dirtyFlag = true
    if (fresh) this.deps.onLocalState?.(this.ino)
    this.mtimeNs = nowNs(this.deps.clock.wallNow())
  }

  /** Open a write session, waiting (bounded) while another client holds the lease. */
  private openWriteWaiting (): Promise<WriteSession> {
    // Most writers hold the lease for one open-write-close, as two hosts appending to
    // one log do; a writer that keeps the file open makes this fail with EBUSY.
    return withRetry(() => this.deps.client.openWrite({ ino: this.ino }), {
      clock: this.deps.clock,
      budgetMs: this.deps.leaseWaitMs ?? 0,
      log: this.deps.log,
      what: `write lease of inode ${this.ino}`,
      retriable: e => e.code === 'LEASE_HELD' && !this.disposed,
    })
  }

  /** Get a session into readySession, outside the lock; concurrent callers share one wait. */
  private waitForLease (): Promise<void> {
    this.leaseWait ??= (async () => {
      try {
        const commits = this.commits
        const session = await this.openWriteWaiting()
        if (this.disposed || this.session !== undefined || this.readySession !== undefined) {
          void session.abort().catch(() => {})
          return
        }
        this.readySession = { session, commits }
      } finally {
        this.leaseWait = undefined
      }
    })()
    return this.leaseWait
  }

  /** Give back a session obtained and never installed. */
  private dropReadySession (): void {
    const ready = this.readySession
    this.readySession = undefined
    if (ready !== undefined) void ready.session.abort().catch(err => { this.deps.log.debug('ending the write failed', { ino: this.ino, err }) })
  }

  private async ensureSessionLocked (): Promise<void> {
    if (this.session !== undefined) { this.dropReadySession(); return }
    if (this.disposed) throw HissError.EIO('file handle closed')
    let s: WriteSession | undefined
    const ready = this.readySession
    if (ready !== undefined && ready.commits === this.commits) {
      this.readySession = undefined
      s = ready.session
    } else {
      // None, or opened before a commit of ours: its base content is out of date.
      this.dropReadySession()
      s = await this.openWriteWaiting()
    }
    if (!this.dirtyFlag) {
      // The lease is ours now: start from the content as it is on the NameServer.
      this.applyBlocks(s.baseBlocks)
    }
    if (s.blockSize > 0) this.blockSizeBytes = s.blockSize
    this.session = s
    // Synchronously after the session is ours, before any change is made under it.
    this.deps.onLocalState?.(this.ino)
  }

  private async appendLocked (rest: Buffer): Promise<number> {
    const cap = this.blockSizeBytes
    let idx = this.slots.length - 1
    let last = this.slots[idx]
    let local: LocalSlot
    if (last === undefined || slotLength(last) >= cap) {
      await this.throttleSealed()
      local = { kind: 'local', spool: await this.deps.spool.create(), length: 0 }
      this.slots.push(local)
      this.reindex()
      idx = this.slots.length - 1
    } else {
      const patch = last.kind === 'patch' || last.kind === 'base' ? await this.toPatch(idx) : undefined
      if (patch !== undefined) {
        const n = Math.min(cap - patch.length, rest.length)
        if (patch.dirty.fits(patch.length, n)) {
          await patch.spool.queueWrite(rest.subarray(0, n), patch.length)
          patch.dirty.add(patch.length, patch.length + n)
          patch.length += n
          this.sizeBytes += n
          return n
        }
      }
      local = last.kind === 'local' ? last : await this.toLocal(idx)
    }
    last = local
    if (local.upload !== undefined && (local.upload.sealed || local.upload.aborted)) {
      local.upload.abort()
      local.upload = undefined
    }
    const n = Math.min(cap - local.length, rest.length)
    // A private copy of the kernel's buffer, queued for the spool (the copy a retry
    // reads) and handed to the upload, which sends it from memory: the write returns
    // without waiting for a disk write, and nothing is read back. Big writes go into a
    // recycled buffer that both holders release (spool: written; upload: sent).
    const pool = this.deps.writePool ?? sharedWritePool
    let own: Buffer
    let chunk: PooledChunk | undefined
    if (n >= POOLED_WRITE_MIN_BYTES && n <= pool.bufferBytes) {
      chunk = pool.copyOf(rest, n, 2)
      own = chunk.data
    } else {
      own = Buffer.allocUnsafe(n)
      rest.copy(own, 0, 0, n)
    }
    const release = chunk === undefined ? undefined : () => { chunk.release() }
    const at = local.length
    try {
      await local.spool.writeBehind(own, at, release)
    } catch (err) {
      // The spool let go of its reference; the upload never got one.
      release?.()
      throw err
    }
    local.length += n
    this.sizeBytes += n
    const up = local.upload ?? (this.streamingPaused() ? undefined : this.startUpload(local, false))
    if (up === undefined) {
      // The bytes stay in the spool for the commit (or a later upload): the upload's
      // share of the buffer is not needed.
      release?.()
      return n
    }
    up.feed(at, own, release)
    up.notify()
    if (local.length >= cap) {
      up.seal()
      this.sealed.push(up)
    }
    await up.waitLag(MAX_UPLOAD_LAG_BYTES)
    return n
  }

  private async overwriteLocked (p: number, rest: Buffer): Promise<number> {
    const idx = this.slotIndex(p)
    let s = this.slots[idx]!
    const off = p - this.offsets[idx]!
    const n = Math.min(rest.length, slotLength(s) - off)
    if (n <= 0) throw HissError.EIO('write planning error')
    const patch = s.kind === 'patch' || s.kind === 'base' ? await this.toPatch(idx) : undefined
    if (patch !== undefined && patch.dirty.fits(off, n)) {
      await patch.spool.queueWrite(rest.subarray(0, n), off)
      patch.dirty.add(off, off + n)
      return n
    }
    const local = s.kind === 'local' ? s : await this.toLocal(idx)
    s = local
    if (local.upload !== undefined && off < local.upload.claimed) {
      local.upload.abort()
      local.upload = undefined
    }
    // Bytes fed to the upload from memory may be the ones overwritten: it reads the spool.
    local.upload?.forget()
    await local.spool.queueWrite(rest.subarray(0, n), off)
    return n
  }

  /** Extend the file with zeros to `newSize`. */
  private async growLocked (newSize: number): Promise<void> {
    const cap = this.blockSizeBytes
    const idx = this.slots.length - 1
    const last = this.slots[idx]
    if (last !== undefined && slotLength(last) < cap) {
      const want = Math.min(cap, newSize - this.offsets[idx]!)
      if (last.kind === 'zero') {
        last.upload?.abort()
        last.upload = undefined
        last.length = want
      } else if ((last.kind === 'base' || last.kind === 'patch') && await this.toPatch(idx) !== undefined) {
        // The grown tail reads as zeros from the spool and is zero-filled by the patch.
        (this.slots[idx] as PatchSlot).length = want
      } else {
        const local = last.kind === 'local' ? last : await this.toLocal(idx)
        if (local.upload?.sealed === true) { local.upload.abort(); local.upload = undefined }
        await local.spool.truncate(want)
        local.length = want
        local.upload?.notify()
      }
      this.sizeBytes = this.offsets[idx]! + want
    }
    while (this.sizeBytes < newSize) {
      const n = Math.min(cap, newSize - this.sizeBytes)
      this.slots.push({ kind: 'zero', length: n })
      this.sizeBytes += n
    }
    this.reindex()
  }

  private async shrinkLocked (newSize: number): Promise<void> {
    if (newSize === 0) {
      for (const s of this.slots.splice(0)) this.dropSlot(s)
      this.reindex()
      this.sizeBytes = 0
      return
    }
    const cut = this.slotIndex(newSize - 1)
    const cutSlot = this.slots[cut]!
    if (cutSlot.kind === 'stored' && newSize - this.offsets[cut]! < slotLength(cutSlot)) {
      // Its head must be read back for the copy: commit while the list is still whole.
      await this.commitLocked(true)
    }
    const idx = this.slotIndex(newSize - 1)
    for (const s of this.slots.splice(idx + 1)) this.dropSlot(s)
    this.reindex()
    const s = this.slots[idx]!
    const keep = newSize - this.offsets[idx]!
    if (keep < slotLength(s)) {
      if (s.kind === 'zero') {
        s.upload?.abort()
        s.upload = undefined
        s.length = keep
      } else if (s.kind === 'local') {
        s.upload?.abort()
        s.upload = undefined
        await s.spool.truncate(keep)
        s.length = keep
      } else {
        await this.toLocal(idx, keep)
      }
    }
    this.sizeBytes = newSize
  }

  /**
   * Copy-on-write: turn slot idx into a local spool holding its first `keep` bytes (all
   * of it by default). A stored block is committed first so it can be read back.
   */
  private async toLocal (idx: number, keep?: number): Promise<LocalSlot> {
    let s = this.slots[idx]!
    if (s.kind === 'local') return s
    if (s.kind === 'stored') {
      await this.commitLocked(true)
      s = this.slots[idx]!
      if (s.kind === 'local') return s
    }
    if (s.kind === 'patch') {
      const local = await this.patchToLocal(s)
      if (keep !== undefined && keep < local.length) { await local.spool.truncate(keep); local.length = keep }
      return local
    }
    const length = Math.min(keep ?? slotLength(s), slotLength(s))
    const spool = await this.deps.spool.create()
    try {
      if (s.kind === 'zero') {
        s.upload?.abort()
        s.upload = undefined
        await spool.truncate(length)
      } else if (s.kind === 'base') {
        const located = await this.locate(s)
        await this.copyToSpool(located, length, spool)
      }
    } catch (err) {
      spool.discard()
      throw err
    }
    const local: LocalSlot = { kind: 'local', spool, length }
    const at = this.slots.indexOf(s)
    if (at < 0) { spool.discard(); throw HissError.EIO('block list changed during copy-on-write') }
    this.slots[at] = local
    return local
  }

  /** Download block bytes [start, length) into a spool file (same offsets), read-ahead window by window. */
  private async copyToSpool (block: LocatedBlock, length: number, spool: SpoolFile, start = 0): Promise<void> {
    const piece = this.deps.cache.pieceBytes
    const window = Math.max(piece, this.deps.readaheadBytes)
    let prefetched = start
    const buf = Buffer.allocUnsafe(Math.min(piece, Math.max(length - start, 1)))
    for (let off = start; off < length; off += piece) {
      if (off >= prefetched - window / 2) {
        const from = Math.max(off, prefetched)
        prefetched = Math.min(length, off + window)
        this.deps.cache.prefetch(block, this.ino, from, prefetched - from)
      }
      const n = Math.min(piece, length - off)
      await this.deps.cache.read(block, this.ino, off, n, buf, 0)
      await spool.write(buf.subarray(0, n), off)
    }
    if (length === 0) await spool.truncate(0)
  }

  /**
   * A committed block about to get a small change: its patch slot (made from a base
   * slot), or undefined when this block must be copied instead (no patch support, or it
   * is not a committed block).
   */
  private async toPatch (idx: number): Promise<PatchSlot | undefined> {
    const s = this.slots[idx]!
    if (s.kind === 'patch') return s
    if (s.kind !== 'base' || this.session?.patchBlock === undefined) return undefined
    const located = await this.locate(s)
    const spool = await this.deps.spool.create()
    const at = this.slots.indexOf(s)
    if (at < 0) { spool.discard(); throw HissError.EIO('block list changed while preparing a patch') }
    const slot: PatchSlot = { kind: 'patch', ref: s.ref, located, spool, length: s.ref.length, dirty: new DirtyRanges(patchLimits(this.blockSizeBytes)) }
    this.slots[at] = slot
    return slot
  }

  /** Give up patching: the slot becomes a full local copy (committed bytes + changes). */
  private async patchToLocal (s: PatchSlot): Promise<LocalSlot> {
    // The spool holds the changed bytes at their offsets: fill the gaps below the
    // committed length from the block itself.
    for (const [a, b] of s.dirty.gaps(0, Math.min(s.length, s.ref.length))) await this.copyToSpool(s.located, b, s.spool, a)
    const local: LocalSlot = { kind: 'local', spool: s.spool, length: s.length }
    const at = this.slots.indexOf(s)
    if (at < 0) throw HissError.EIO('block list changed during copy-on-write')
    this.slots[at] = local
    return local
  }

  /**
   * Send every patch slot's changed ranges to its replicas (in place, new generation);
   * a slot whose patch fails, or cannot be sent, falls back to a full copy stored anew.
   */
  private async patchPending (): Promise<void> {
    for (const s of this.slots) {
      if (s.kind !== 'patch') continue
      const session = this.session
      if (s.dirty.count === 0 && s.length === s.ref.length) {
        s.spool.discard()
        this.slots[this.slots.indexOf(s)] = { kind: 'base', ref: s.ref, located: s.located }
        continue
      }
      let patched: LocatedBlock | undefined
      if (session?.patchBlock !== undefined) {
        try {
          patched = await session.patchBlock(s.located, { length: s.length, ranges: s.dirty.toList(), body: () => rangeSource(s.spool, s.dirty.toList()) })
        } catch (err) {
          this.deps.log.info('block patch failed, storing the block anew', { ino: this.ino, block: s.ref.id, err })
        }
      }
      const at = this.slots.indexOf(s)
      if (at < 0) throw HissError.EIO('block list changed during a patch')
      if (patched === undefined) {
        await this.patchToLocal(s)
        continue
      }
      this.slots[at] = { kind: 'stored', ref: bareBlockRef(patched), located: patched }
      this.deps.cache.dropBlock(s.ref)
      s.spool.discard()
    }
  }

  private startUpload (slot: PendingSlot, sealed: boolean): BlockUpload {
    if (this.session === undefined) throw HissError.EIO('no write session')
    const source: UploadSource = slot.kind === 'zero'
      ? zeroSource(slot.length)
      : { length: () => slot.length, read: (dst, pos, len) => slot.spool.read(dst, 0, len, pos, true) }
    // A small new block goes into the read cache once stored: reading back what was just
    // written is common (build tools, tar's diff) and costs a DataServer round trip otherwise.
    const retainUpTo = slot.kind === 'local' ? this.deps.cache.pieceBytes : 0
    const up = new BlockUpload(this.session, source, { sealed, retainUpTo, ...(slot.kind === 'zero' ? { zeros: slot.length } : {}) })
    slot.upload = up
    up.result.then(ref => {
      this.streamFailures = 0
      if (up.aborted || slot.upload !== up) return
      const at = this.slots.indexOf(slot)
      if (at < 0 || ref.length !== slot.length) { slot.upload = undefined; return }
      this.slots[at] = { kind: 'stored', ref: bareBlockRef(ref) }
      const data = up.takeRetained()
      if (data !== undefined) this.deps.cache.seed(ref, data)
      if (slot.kind === 'local') slot.spool.discard()
    }, err => {
      if (slot.upload === up) slot.upload = undefined
      if (up.aborted) return
      this.deps.log.debug('block upload failed', { ino: this.ino, err })
      this.streamFailures++
      this.streamRetryAt = this.deps.clock.now() + retryPauseMs(this.streamFailures, STREAM_RETRY_MAX_MS)
    })
    return up
  }

  /** Whether an append must not start a streaming upload now (one failed recently). */
  private streamingPaused (): boolean {
    return this.deps.clock.now() < this.streamRetryAt
  }

  /** Keep at most MAX_SEALED_UPLOADS completed blocks in flight per file. */
  private async throttleSealed (): Promise<void> {
    for (;;) {
      while (this.sealed.length > 0 && (this.sealed[0]!.settled || this.sealed[0]!.aborted)) this.sealed.shift()
      if (this.sealed.length < MAX_SEALED_UPLOADS) return
      await this.sealed[0]!.result.catch(() => {})
    }
  }

  // ---------------------------------------------------------------- commit

  /** close(): commit local changes, ending the write session. */
  async flush (): Promise<void> {
    await this.lock.run(async () => {
      if (this.dirtyFlag) await this.commitLocked(false)
    })
  }

  /**
   * The last handle open for writing was released: give back a lease taken at open and
   * never used, now rather than at the last close (a reader may keep the file open for
   * long, as `tail -f` does). Not at flush: a shell's `>>` dups the descriptor and closes
   * the original (a flush) before it writes.
   */
  writersGone (): void {
    if (this.writers === 0) this.dropReadySession()
  }

  /**
   * Have the write lease, or a session ready to install, waiting for it outside the lock.
   * open() to append or truncate calls this too: it waits for another client's lease
   * there rather than in the first write. The kernel keeps the pages a write covers
   * locked until the write is answered, so a wait inside write() also stalls every reader
   * of those pages on this mount; a wait inside open() stalls only the opener.
   */
  async prepareWrite (): Promise<void> {
    if (this.session === undefined && this.readySession === undefined) await this.waitForLease()
  }

  /** fsync(): everything written so far durable on the DataServers and committed. */
  async fsync (): Promise<void> {
    await this.lock.run(async () => {
      if (this.dirtyFlag) await this.commitLocked(true)
    })
  }

  /** Last handle closed: commit anything left and give the lease back. */
  async closeLast (): Promise<void> {
    await this.lock.run(async () => {
      this.dropReadySession()
      if (this.session === undefined) return
      if (this.dirtyFlag) { await this.commitLocked(false); return }
      // Nothing to commit (created and never written, or all committed by fsync): just
      // end the lease. Should that fail, the lease expires on its own.
      const session = this.session
      this.session = undefined
      await session.abort().catch(err => { this.deps.log.debug('ending the write failed', { ino: this.ino, err }) })
    })
  }

  private async commitLocked (keepOpen: boolean): Promise<void> {
    const session = this.session
    if (session === undefined) return
    await this.patchPending()
    await this.uploadPending()
    const blocks: BlockRef[] = []
    let total = 0
    for (const s of this.slots) {
      if (s.kind !== 'base' && s.kind !== 'stored') throw HissError.EIO('block left unuploaded')
      blocks.push(bareBlockRef(s.ref))
      total += s.ref.length
    }
    if (total !== this.sizeBytes) throw HissError.EIO(`block list holds ${total} bytes, file is ${this.sizeBytes}`)
    const stat = await session.commit(blocks, { mtimeNs: this.mtimeNs, ...this.ownership, keepOpen })
    this.commits++
    this.ownership = {}
    this.slots = this.slots.map((s): Slot => s.kind === 'stored' ? (s.located === undefined ? { kind: 'base', ref: s.ref } : { kind: 'base', ref: s.ref, located: s.located }) : s)
    this.dirtyFlag = false
    this.stat = stat
    if (!keepOpen) this.session = undefined
    this.deps.onCommit?.(stat)
  }

  /** Upload every zero/local slot (finishing streaming uploads), with retries. */
  private async uploadPending (): Promise<void> {
    let lastErr: unknown
    for (let attempt = 0; ; attempt++) {
      const pending = this.slots.filter((s): s is PendingSlot => s.kind === 'local' || s.kind === 'zero')
      if (pending.length === 0) return
      if (attempt >= UPLOAD_ATTEMPTS || (isHissError(lastErr) && lastErr.code === 'LEASE_EXPIRED')) throw lastErr ?? HissError.EIO('block upload failed')
      if (attempt > 0) {
        this.deps.log.warn('retrying block uploads', { ino: this.ino, path: this.path, pending: pending.length, attempt, err: lastErr })
        await sleep(this.deps.clock, retryPauseMs(attempt))
      }
      let next = 0
      const worker = async (): Promise<void> => {
        while (next < pending.length) {
          const s = pending[next++]!
          let up = s.upload
          if (up === undefined || up.aborted) up = this.startUpload(s, true)
          else up.seal()
          try {
            await up.result
          } catch (err) {
            lastErr = err
            // The write session is gone: no retry can store a block under it.
            if (isHissError(err) && err.code === 'LEASE_EXPIRED') next = pending.length
          }
        }
      }
      await Promise.all(Array.from({ length: Math.min(COMMIT_UPLOAD_PARALLEL, pending.length) }, worker))
    }
  }

  // ---------------------------------------------------------------- lifecycle

  /** Drop all local state (file gone or last handle closed); uncommitted data is lost. */
  async dispose (): Promise<void> {
    if (this.disposed) return
    this.disposed = true
    for (const s of this.slots) this.dropSlot(s)
    this.slots = []
    this.reindex()
    this.dropReadySession()
    const session = this.session
    this.session = undefined
    if (session !== undefined) {
      await session.abort().catch(err => { this.deps.log.debug('abort failed', { ino: this.ino, err }) })
    }
  }

  private dropSlot (s: Slot): void {
    if (s.kind === 'patch') {
      s.spool.discard()
    } else if (s.kind === 'local') {
      s.upload?.abort()
      s.upload = undefined
      s.spool.discard()
    } else if (s.kind === 'zero') {
      s.upload?.abort()
      s.upload = undefined
    }
  }

  // ---------------------------------------------------------------- block list

  private applyBlocks (blocks: readonly LocatedBlock[]): void {
    const keep = new Set(blocks.map(b => `${b.id}:${b.gen}`))
    for (const s of this.slots) {
      if (s.kind === 'base' && !keep.has(`${s.ref.id}:${s.ref.gen}`)) this.deps.cache.dropBlock(s.ref)
      else this.dropSlot(s)
    }
    this.slots = blocks.map(b => ({ kind: 'base', ref: bareBlockRef(b), located: b }))
    this.reindex()
    this.sizeBytes = this.slots.reduce((n, s) => n + slotLength(s), 0)
    this.loaded = true
  }

  private reindex (): void {
    this.deps.onLayoutChange?.(this.ino)
    const offsets = new Array<number>(this.slots.length)
    let off = 0
    for (let i = 0; i < this.slots.length; i++) {
      offsets[i] = off
      off += slotLength(this.slots[i]!)
    }
    this.offsets = offsets
  }

  /** Index of the slot holding byte `pos` (pos < size). */
  private slotIndex (pos: number): number {
    let lo = 0
    let hi = this.offsets.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (this.offsets[mid]! <= pos) lo = mid
      else hi = mid - 1
    }
    return lo
  }
}
