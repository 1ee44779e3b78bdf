// The replicas on local disk: write (temp file via write-behind + checksums, fsync, rename), verified
// ranged reads, delete, quarantine of corrupt replicas, and the startup scan that
// rebuilds the index. Knows nothing about HTTP or the NameServer: it tells its owner
// about corrupt or vanished replicas through the `events` hooks.
import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, readdir, rename, rm, stat, statfs, unlink, type FileHandle } from 'node:fs/promises'
import { HissError, fromNodeError, isHissError } from '../common/errors.js'
import { every, type Clock } from '../common/clock.js'
import type { Logger } from '../common/log.js'
import type { ReplicaTuple } from '../common/protocol.js'
import { BlockLocks } from './block-locks.js'
import { recoverJournals } from './block-patch.js'
import { ChunkChecksummer, META_HEADER_BYTES, decodeMetaHeader, metaFileBytes, zeroMetaBytes, type MetaHeader } from './checksum.js'
import { ReplicaIndex } from './replica-index.js'
import { readFully, readVerified, type ReadVerifiedOptions } from './replica-reader.js'
import { StorageLayout } from './storage-layout.js'
import { WriteBehind } from './write-behind.js'
import { writevAll } from '../common/writev-all.js'

/** Hard cap on one replica: the largest block size the config accepts. */
export const MAX_BLOCK_BYTES = 2 ** 32

export interface BlockStoreEvents {
  /** A replica failed verification and was quarantined: report it corrupt. */
  onCorrupt?: (id: number, gen: number) => void
  /** An indexed replica's files vanished from disk: report it deleted. */
  onLost?: (id: number, gen: number) => void
}

/** The statfs fields the store uses (node:fs statfs, or a stand-in in tests). */
export interface FsSpace { blocks: number, bsize: number, bavail: number }

export interface BlockStoreOptions {
  chunkBytes: number
  reservedBytes?: number
  log: Logger
  events?: BlockStoreEvents
  /** Drives the periodic refresh of the cached free space; without one it is never refreshed by a timer. */
  clock?: Clock
  /** How often the cached free space is refreshed (ms, default FREE_SPACE_REFRESH_MS). */
  freeSpaceRefreshMs?: number
  /** statfs of the storage directory (tests inject a stand-in). */
  statfs?: (path: string) => Promise<FsSpace>
}

/**
 * A block announced at most this long, or of unknown length, is gathered in memory up to
 * this much before its files are made: one that never arrives whole (a dropped upload, a
 * short body) then costs no file at all, and the bytes are held no longer than the
 * write-behind would hold them (this is under one of its batches). Matches the fan-out
 * hold of a pipeline's first DataServer (block-receiver.ts).
 */
export const SMALL_WRITE_BYTES = 256 * 1024

/** Default period of the free-space refresh. */
export const FREE_SPACE_REFRESH_MS = 1000
/**
 * A write trusts the cached free space only while, after it, at least this much more
 * would stay free; closer to full it asks the disk (statfs) first, as every write did.
 */
export const FREE_SPACE_MARGIN_BYTES = 256 * 1024 * 1024

export interface StorageUsage { capacity: number, used: number, remaining: number }

export interface WriteResult {
  length: number
  /** An older generation of the same block that this write replaced (now deleted). */
  replacedGen?: number
}

export interface ReadHandle {
  /** Bytes this read will yield when the replica is sound. */
  length: number
  /** Full length of the replica. */
  replicaLength: number
  /** Verified bytes; files are opened on the first pull and closed when it ends. */
  chunks: AsyncGenerator<Buffer>
}

export type VerifyOutcome = 'ok' | 'corrupt' | 'gone'

export class BlockStore {
  readonly layout: StorageLayout
  readonly index = new ReplicaIndex()
  /** Reads (per batch) share a block; a patch, a delete and a quarantine hold it alone. */
  readonly locks = new BlockLocks()
  private readonly chunkBytes: number
  private readonly reserved: number
  private readonly log: Logger
  private readonly events: BlockStoreEvents
  /** Block ids with a write in progress: one writer per block id at a time. */
  private readonly writing = new Set<number>()
  private readonly clock: Clock | undefined
  private readonly refreshMs: number
  private readonly statfsFn: (path: string) => Promise<FsSpace>
  /** The last statfs, and the bytes stored since it was taken. */
  private space: { capacity: number, free: number } | undefined
  private spentSinceStatfs = 0
  private stopRefresh: (() => void) | undefined
  /**
   * Open handles of the 256 subdirectories and of the journal directory (by path), kept
   * for the fsyncs that make a rename, a new replica or a new patch journal durable.
   */
  private readonly dirHandles = new Map<string, Promise<FileHandle>>()
  private closed = false
  /** Work that outlives its request (a patch's checkpoint): close() waits for it. */
  private readonly background = new Set<Promise<unknown>>()

  constructor (root: string, opts: BlockStoreOptions) {
    this.layout = new StorageLayout(root)
    this.chunkBytes = opts.chunkBytes
    this.reserved = opts.reservedBytes ?? 0
    this.log = opts.log
    this.events = opts.events ?? {}
    this.clock = opts.clock
    this.refreshMs = opts.freeSpaceRefreshMs ?? FREE_SPACE_REFRESH_MS
    this.statfsFn = opts.statfs ?? statfs
  }

  setEvents (events: BlockStoreEvents): void { Object.assign(this.events, events) }

  // ---------------------------------------------------------------------------
  // Startup

  /** Create the layout, empty tmp/, and rebuild the index from current/ and corrupt/. */
  async open (): Promise<void> {
    const L = this.layout
    try {
      await mkdir(L.root, { recursive: true })
      // Anything in tmp/ is a write that never finished (crash or kill -9).
      await rm(L.tmpDir, { recursive: true, force: true })
      await mkdir(L.tmpDir, { recursive: true })
      await mkdir(L.corruptDir, { recursive: true })
      await mkdir(L.journalDir, { recursive: true })
      for (let i = 0; i < 256; i++) await mkdir(L.subdir(i), { recursive: true })
      // Patches a crash interrupted: finish or drop them before the replicas are judged.
      await recoverJournals(L, this.log)
      for (let i = 0; i < 256; i++) await this.scanSubdir(i)
      for (const name of await readdir(L.corruptDir)) {
        const p = StorageLayout.parseName(name)
        if (p !== undefined && !p.meta) this.index.addCorrupt(p.id, p.gen)
      }
    } catch (err) {
      throw fromNodeError(err, `opening storage ${L.root}`)
    }
    await this.refreshSpace()
    if (this.clock !== undefined && this.stopRefresh === undefined && !this.closed) {
      this.stopRefresh = every(this.clock, this.refreshMs, () => this.refreshSpace(), err => { this.log.warn('statfs failed', { err: err as Error }) })
    }
    this.log.info('storage opened', { root: L.root, replicas: this.index.count, bytes: this.index.usedBytes })
  }

  /** Let close() wait for `work` (which must not reject). */
  track (work: Promise<unknown>): void {
    this.background.add(work)
    void work.finally(() => { this.background.delete(work) })
  }

  /** Stop the free-space refresh, wait for tracked work, close the cached directory handles. */
  async close (): Promise<void> {
    this.closed = true
    this.stopRefresh?.()
    this.stopRefresh = undefined
    while (this.background.size > 0) await Promise.allSettled([...this.background])
    const handles = [...this.dirHandles.values()]
    this.dirHandles.clear()
    for (const h of handles) await h.then(fh => fh.close(), () => {}).catch(() => {})
  }

  private async scanSubdir (sub: number): Promise<void> {
    const dir = this.layout.subdir(sub)
    const groups = new Map<string, { id: number, gen: number, data: boolean, meta: boolean }>()
    for (const name of await readdir(dir)) {
      const p = StorageLayout.parseName(name)
      // Foreign files and replicas in the wrong subdirectory are left alone: never guess.
      if (p === undefined || p.id % 256 !== sub) { this.log.warn('ignoring unexpected file in storage', { dir, name }); continue }
      const key = `${p.id}_${p.gen}`
      const g = groups.get(key) ?? { id: p.id, gen: p.gen, data: false, meta: false }
      if (p.meta) g.meta = true
      else g.data = true
      groups.set(key, g)
    }
    for (const g of groups.values()) {
      if (!g.data) {
        // Meta is renamed into place before data: a crash between the two leaves this.
        await unlink(this.layout.metaPath(g.id, g.gen)).catch(() => {})
        continue
      }
      const length = g.meta ? await this.checkReplicaFiles(g.id, g.gen) : undefined
      if (length === undefined) { await this.quarantineFiles(g.id, g.gen); this.index.addCorrupt(g.id, g.gen); continue }
      const cur = this.index.get(g.id)
      if (cur !== undefined && cur.gen >= g.gen) { await this.unlinkReplica(g.id, g.gen); continue }
      if (cur !== undefined) await this.unlinkReplica(g.id, cur.gen)
      this.index.set(g.id, { gen: g.gen, length })
    }
  }

  /** Cheap consistency check (sizes and header): returns the length, or undefined if damaged. */
  private async checkReplicaFiles (id: number, gen: number): Promise<number | undefined> {
    let fh: FileHandle | undefined
    try {
      fh = await open(this.layout.metaPath(id, gen), 'r')
      const hb = Buffer.alloc(META_HEADER_BYTES)
      await readFully(fh, hb, 0)
      const h = decodeMetaHeader(hb)
      const [ms, ds] = await Promise.all([fh.stat(), stat(this.layout.dataPath(id, gen))])
      if (ds.size !== h.length || ms.size !== metaFileBytes(h.length, h.chunkBytes)) return undefined
      return h.length
    } catch (err) {
      if (isHissError(err) && err.code === 'CHECKSUM_MISMATCH') return undefined
      throw err
    } finally {
      await fh?.close()
    }
  }

  // ---------------------------------------------------------------------------
  // Capacity

  /** Capacity from a fresh statfs (heartbeats); also refreshes the cached free space. */
  async storage (): Promise<StorageUsage> {
    const { capacity, free } = await this.refreshSpace()
    return { capacity, used: this.index.usedBytes, remaining: Math.max(0, free - this.reserved) }
  }

  private async refreshSpace (): Promise<{ capacity: number, free: number }> {
    const spent = this.spentSinceStatfs
    const s = await this.statfsFn(this.layout.root)
    const space = { capacity: s.blocks * s.bsize, free: s.bavail * s.bsize }
    this.space = space
    // What was stored while statfs ran may or may not be in it: count it as not (safe side).
    this.spentSinceStatfs -= spent
    return space
  }

  /**
   * Refuse (ENOSPC) a write of `need` bytes that does not fit. No statfs while the cached
   * free space (minus what was stored since) leaves FREE_SPACE_MARGIN_BYTES to spare;
   * closer to full, statfs decides. Returns undefined when settled without waiting.
   */
  checkRoom (need: number): Promise<void> | undefined {
    const s = this.space
    if (s !== undefined && s.free - this.spentSinceStatfs - this.reserved >= need + FREE_SPACE_MARGIN_BYTES) return undefined
    return this.refreshSpace().then(({ free }) => {
      const remaining = Math.max(0, free - this.spentSinceStatfs - this.reserved)
      if (remaining < need) throw HissError.ENOSPC(`dataserver storage full (${remaining} bytes usable)`)
    })
  }

  /** Count bytes stored since the last statfs against the cached free space. */
  noteStored (bytes: number): void { this.spentSinceStatfs += bytes }

  /** fsync a subdirectory (making renames into it durable) through a kept handle. */
  async fsyncSubdir (id: number): Promise<void> {
    await this.fsyncKeptDir(this.layout.subdir(id))
  }

  /** fsync the patch journal directory (a new journal's name durable) through a kept handle. */
  async fsyncJournalDir (): Promise<void> {
    await this.fsyncKeptDir(this.layout.journalDir)
  }

  /** One fsync of `dir` without an open and a close of its own (two thread-pool round trips). */
  private async fsyncKeptDir (dir: string): Promise<void> {
    let h = this.dirHandles.get(dir)
    if (h === undefined || this.closed) {
      h = open(dir, 'r')
      if (this.closed) { const fh = await h; try { await fh.sync() } finally { await fh.close() } return }
      this.dirHandles.set(dir, h)
    }
    try {
      await (await h).sync()
    } catch (err) {
      // A handle that went bad is dropped (and closed): the next write opens a new one.
      if (this.dirHandles.get(dir) === h) this.dirHandles.delete(dir)
      void h.then(fh => fh.close(), () => {}).catch(() => {})
      throw err
    }
  }

  // ---------------------------------------------------------------------------
  // Write

  /** Refuse a write that cannot succeed, before any byte is read or forwarded. */
  checkWritable (id: number, gen: number): void {
    const cur = this.index.get(id)
    if (cur !== undefined && cur.gen === gen) throw HissError.EEXIST(`block ${id} generation ${gen} already stored`)
    if (cur !== undefined && cur.gen > gen) throw HissError.from('STALE_REPLICA', `block ${id}: generation ${cur.gen} is newer than ${gen}`)
    if (this.writing.has(id)) throw HissError.from('EBUSY', `block ${id} is being written`)
  }

  /** Take the one-writer slot of a block (a patch; write() takes it itself). */
  claimWrite (id: number): void {
    if (this.writing.has(id)) throw HissError.from('EBUSY', `block ${id} is being written`)
    this.writing.add(id)
  }

  releaseWrite (id: number): void { this.writing.delete(id) }

  /**
   * Store a replica from `source`. Nothing becomes visible until data and checksums are
   * fsync'd and renamed into place; any failure removes the temp files.
   *
   * Few sequential waits: the free-space check uses the cached statfs (see checkRoom); a
   * small block is gathered first (SMALL_WRITE_BYTES); both temp files are opened at once
   * while the first pieces are already pulled (and so forwarded down the pipeline); the
   * data's last write + fsync and the checksums' write + fsync run side by side; the
   * handles close while the renames run. Both fsync the subdirectory through a kept
   * handle.
   */
  async write (id: number, gen: number, source: AsyncIterable<Uint8Array>, opts: { expectedLength?: number | undefined } = {}): Promise<WriteResult> {
    this.checkWritable(id, gen)
    const expected = opts.expectedLength
    if (expected !== undefined && expected > MAX_BLOCK_BYTES) throw HissError.from('TOO_LARGE', `block over ${MAX_BLOCK_BYTES} bytes`)
    this.writing.add(id)
    try {
      const room = this.checkRoom(expected ?? 1)
      if (room !== undefined) await room
      if (expected !== undefined && expected > SMALL_WRITE_BYTES) return await this.writeStreamed(id, gen, source, expected)
      const head = await gather(source, SMALL_WRITE_BYTES).catch(err => { throw fromNodeError(err, `writing block ${id}`) })
      return await this.writeStreamed(id, gen, head.rest, expected)
    } finally {
      this.writing.delete(id)
    }
  }

  /**
   * A replica of `length` zero bytes (HEADER_ZERO_LENGTH): the data file is only sized
   * (sparse where the file system allows), the checksums are those of zeros; otherwise
   * the same steps and durability as write().
   */
  async writeZero (id: number, gen: number, length: number): Promise<WriteResult> {
    this.checkWritable(id, gen)
    if (length > MAX_BLOCK_BYTES) throw HissError.from('TOO_LARGE', `block over ${MAX_BLOCK_BYTES} bytes`)
    this.writing.add(id)
    try {
      const room = this.checkRoom(1)
      if (room !== undefined) await room
      return await this.writeStreamed(id, gen, noBytes(), undefined, length)
    } finally {
      this.writing.delete(id)
    }
  }

  /**
   * Whether the replica is a block of zeros held sparse: no data allocated on disk and
   * exactly the checksums of zeros. Re-replication then sends it as a block of zeros
   * (HEADER_ZERO_LENGTH) instead of streaming zeros that the target would store dense.
   */
  async isSparseZeros (id: number, gen: number, length: number): Promise<boolean> {
    const r = this.index.get(id)
    if (r === undefined || r.gen !== gen || r.length !== length || length === 0) return false
    try {
      const st = await stat(this.layout.dataPath(id, gen))
      if (st.blocks !== 0 || st.size !== r.length) return false
      const meta = await readFile(this.layout.metaPath(id, gen))
      return meta.equals(zeroMetaBytes(r.length, decodeMetaHeader(meta).chunkBytes))
    } catch {
      return false
    }
  }

  /** The new replica's files are durable in place: index it, drop what it replaces. */
  private async installed (id: number, gen: number, length: number, metaLength: number): Promise<WriteResult> {
    const prev = this.index.get(id)
    this.index.set(id, { gen, length })
    this.noteStored(length + metaLength)
    const result: WriteResult = { length }
    if (prev !== undefined && prev.gen < gen) {
      await this.unlinkReplica(id, prev.gen)
      result.replacedGen = prev.gen
    }
    if (this.index.removeCorrupt(id, gen)) await this.unlinkCorrupt(id, gen)
    return result
  }

  /**
   * Any block, streamed to disk through the write-behind queue; with `zeroLength`, a
   * block of that many zeros (the source is empty and the data file is only sized).
   */
  private async writeStreamed (id: number, gen: number, source: AsyncIterable<Uint8Array>, expected: number | undefined, zeroLength?: number): Promise<WriteResult> {
    const L = this.layout
    const tmp = L.tmpPaths(id, gen, randomBytes(8).toString('hex'))
    let dataOpen: Promise<FileHandle> | undefined
    let metaOpen: Promise<FileHandle> | undefined
    let closing: Promise<unknown> | undefined
    let metaInPlace = false
    let behind: WriteBehind | undefined
    let length = 0
    let metaBytes: Buffer = Buffer.alloc(0)
    try {
      dataOpen = open(tmp.data, 'wx', 0o644)
      metaOpen = open(tmp.meta, 'wx', 0o644)
      // Failures surface where the handles are used; these keep them from going unhandled.
      dataOpen.catch(() => {})
      metaOpen.catch(() => {})
      const sum = new ChunkChecksummer(this.chunkBytes)
      behind = new WriteBehind(dataOpen)
      for await (const piece of source) {
        const len = sum.length + piece.length
        if (len > MAX_BLOCK_BYTES) throw HissError.from('TOO_LARGE', `block over ${MAX_BLOCK_BYTES} bytes`)
        if (expected !== undefined && len > expected) throw HissError.BAD_REQUEST(`block longer than the announced ${expected} bytes`)
        sum.update(piece)
        await behind.push(piece)
      }
      if (expected !== undefined && sum.length !== expected) throw HissError.BAD_REQUEST(`block is ${sum.length} bytes, announced ${expected}`)
      length = sum.length
      metaBytes = sum.finish()
      if (zeroLength !== undefined) {
        await (await dataOpen).truncate(zeroLength)
        length = zeroLength
        metaBytes = zeroMetaBytes(zeroLength, this.chunkBytes)
      }
      const w = behind
      const [dataFh, metaFh] = await Promise.all([
        (async () => { await w.flush(); const fh = await dataOpen!; await fh.sync(); return fh })(),
        (async () => { const fh = await metaOpen!; await writevAll(fh, [metaBytes], metaBytes.length); await fh.sync(); return fh })(),
      ])
      // Renaming an open file is fine: the closes overlap the renames.
      closing = Promise.all([dataFh.close(), metaFh.close()])
      // Meta first: a crash between the renames leaves a lone meta, which the scan drops.
      await rename(tmp.meta, L.metaPath(id, gen))
      metaInPlace = true
      await rename(tmp.data, L.dataPath(id, gen))
      metaInPlace = false
      await Promise.all([this.fsyncSubdir(id), closing])
    } catch (err) {
      await behind?.settle()
      if (closing !== undefined) await closing.catch(() => {})
      else {
        for (const h of [dataOpen, metaOpen]) {
          const fh = await h?.catch(() => undefined)
          await fh?.close().catch(() => {})
        }
      }
      await unlink(tmp.data).catch(() => {})
      await unlink(tmp.meta).catch(() => {})
      if (metaInPlace) await unlink(L.metaPath(id, gen)).catch(() => {})
      throw fromNodeError(err, `writing block ${id}`)
    }
    return this.installed(id, gen, length, metaBytes.length)
  }

  // ---------------------------------------------------------------------------
  // Read and verify

  /**
   * Start a verified read. Refusals (missing, stale, corrupt, bad range) are thrown
   * here, before anything is sent, so the caller can still answer with a status.
   */
  openRead (id: number, gen: number, offset?: number, length?: number, opts?: ReadVerifiedOptions): ReadHandle {
    const r = this.index.get(id)
    if (r === undefined || r.gen < gen) {
      if (this.index.isCorrupt(id, gen)) throw new HissError('CHECKSUM_MISMATCH', `checksum mismatch: replica of block ${id} is corrupt`)
      if (r !== undefined) throw HissError.from('STALE_REPLICA', `block ${id}: held generation ${r.gen} is older than ${gen}`)
      throw HissError.ENOENT(`block ${id}`)
    }
    if (r.gen > gen) throw HissError.ENOENT(`block ${id} generation ${gen} (now ${r.gen})`)
    const off = offset ?? 0
    if (off > r.length) throw HissError.from('ERANGE', `offset ${off} past the end of block ${id} (${r.length} bytes)`)
    const len = length ?? r.length - off
    if (off + len > r.length) throw HissError.from('ERANGE', `range ${off}+${len} past the end of block ${id} (${r.length} bytes)`)
    return { length: len, replicaLength: r.length, chunks: this.readRange(id, gen, r.length, off, len, opts) }
  }

  private async * readRange (id: number, gen: number, replicaLength: number, offset: number, length: number, opts?: ReadVerifiedOptions): AsyncGenerator<Buffer> {
    let data: FileHandle | undefined
    let meta: FileHandle | undefined
    try {
      let header: MetaHeader
      const release = await this.locks.shared(id)
      try {
        this.checkUnchanged(id, gen)
        try {
          data = await open(this.layout.dataPath(id, gen), 'r')
          meta = await open(this.layout.metaPath(id, gen), 'r')
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT' && this.index.remove(id, gen)) {
            this.log.warn('replica vanished from disk', { id, gen })
            this.events.onLost?.(id, gen)
          }
          throw fromNodeError(err, `block ${id}`)
        }
        const hb = Buffer.alloc(META_HEADER_BYTES)
        await readFully(meta, hb, 0)
        header = decodeMetaHeader(hb)
        if (header.length !== replicaLength || (await data.stat()).size !== replicaLength) {
          throw new HissError('CHECKSUM_MISMATCH', 'checksum mismatch: replica length differs from its checksum file')
        }
      } finally {
        release()
      }
      // Batch by batch under the shared lock: a patch lands between batches, never in
      // one, and once it has, this read (of the old generation) stops.
      const batches = readVerified(data!, meta!, header, offset, length, opts)
      for (;;) {
        const unlock = await this.locks.shared(id)
        let next: IteratorResult<Buffer>
        try {
          this.checkUnchanged(id, gen)
          next = await batches.next()
        } finally {
          unlock()
        }
        if (next.done === true) break
        yield next.value
      }
    } catch (err) {
      if (isHissError(err) && err.code === 'CHECKSUM_MISMATCH') await this.markCorrupt(id, gen)
      throw err
    } finally {
      await data?.close().catch(() => {})
      await meta?.close().catch(() => {})
    }
  }

  /** A read of generation `gen` stops once a patch moved the replica on. */
  private checkUnchanged (id: number, gen: number): void {
    const r = this.index.get(id)
    if (r !== undefined && r.gen !== gen) throw HissError.ENOENT(`block ${id} generation ${gen} (now ${r.gen})`)
  }

  /** Read a whole replica and check every chunk (the scanner's unit of work). */
  async verify (id: number, gen: number, opts?: ReadVerifiedOptions): Promise<VerifyOutcome> {
    const r = this.index.get(id)
    if (r === undefined || r.gen !== gen) return 'gone'
    try {
      for await (const piece of this.openRead(id, gen, 0, r.length, opts).chunks) void piece
      return 'ok'
    } catch (err) {
      if (isHissError(err) && err.code === 'CHECKSUM_MISMATCH') return 'corrupt'
      if (this.index.get(id)?.gen !== gen) return 'gone'
      throw err
    }
  }

  // ---------------------------------------------------------------------------
  // Corruption and deletion

  /**
   * Take a replica out of service for good: out of the index, files moved to corrupt/
   * (so a restart does not bring it back), and reported through onCorrupt.
   */
  async markCorrupt (id: number, gen: number): Promise<boolean> {
    const release = await this.locks.exclusive(id)
    try {
      return await this.markCorruptLocked(id, gen)
    } finally {
      release()
    }
  }

  /** markCorrupt for a caller that holds the block's exclusive lock (a patch). */
  async markCorruptLocked (id: number, gen: number): Promise<boolean> {
    if (!this.index.remove(id, gen)) return false
    this.index.addCorrupt(id, gen)
    this.log.warn('replica is corrupt, quarantined', { id, gen })
    await this.quarantineFiles(id, gen).catch(err => { this.log.error('cannot quarantine replica', { id, gen, err }) })
    this.events.onCorrupt?.(id, gen)
    return true
  }

  /** Remove a replica (good or quarantined). Returns whether anything was removed. */
  async delete (id: number, gen: number): Promise<boolean> {
    const release = await this.locks.exclusive(id)
    try {
      return await this.deleteLocked(id, gen)
    } finally {
      release()
    }
  }

  private async deleteLocked (id: number, gen: number): Promise<boolean> {
    let removed = false
    if (this.index.remove(id, gen)) { await this.unlinkReplica(id, gen); removed = true }
    if (this.index.removeCorrupt(id, gen)) { await this.unlinkCorrupt(id, gen); removed = true }
    return removed
  }

  report (): ReplicaTuple[] { return this.index.tuples() }

  private async quarantineFiles (id: number, gen: number): Promise<void> {
    const L = this.layout
    await rename(L.dataPath(id, gen), L.corruptDataPath(id, gen)).catch(ignoreEnoent)
    await rename(L.metaPath(id, gen), L.corruptMetaPath(id, gen)).catch(ignoreEnoent)
  }

  private async unlinkReplica (id: number, gen: number): Promise<void> {
    await unlink(this.layout.dataPath(id, gen)).catch(ignoreEnoent)
    await unlink(this.layout.metaPath(id, gen)).catch(ignoreEnoent)
  }

  private async unlinkCorrupt (id: number, gen: number): Promise<void> {
    await unlink(this.layout.corruptDataPath(id, gen)).catch(ignoreEnoent)
    await unlink(this.layout.corruptMetaPath(id, gen)).catch(ignoreEnoent)
  }
}

function ignoreEnoent (err: unknown): void {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fromNodeError(err)
}

/**
 * Pull pieces from `source` until more than `limit` bytes came or it ended. `rest`
 * yields everything (the pieces pulled, then the remainder); returning from it early
 * returns from `source` too.
 */
async function gather (source: AsyncIterable<Uint8Array>, limit: number): Promise<{ ended: boolean, bytes: number, rest: AsyncGenerator<Uint8Array> }> {
  const it = source[Symbol.asyncIterator]()
  const pulled: Uint8Array[] = []
  let bytes = 0
  let ended = false
  while (bytes <= limit) {
    const r = await it.next()
    if (r.done === true) { ended = true; break }
    pulled.push(r.value)
    bytes += r.value.length
  }
  async function * rest (): AsyncGenerator<Uint8Array> {
    let done = ended
    try {
      yield * pulled
      while (!done) {
        const r = await it.next()
        if (r.done === true) { done = true; return }
        yield r.value
      }
    } finally {
      if (!done) await it.return?.()
    }
  }
  return { ended, bytes, rest: rest() }
}

/** An empty byte source (the body of a block of zeros). */
async function * noBytes (): AsyncGenerator<Uint8Array> {}
