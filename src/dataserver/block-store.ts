// The replicas on local disk: write (temp file via write-behind + checksums, fsync, rename), verified
// ranged reads, delete, quarantine of corrupt replicas, and the startup scan that
// rebuilds the index. Knows nothing about HTTP or the NameServer: it tells its owner
// about corrupt or vanished replicas through the `events` hooks.
import { randomBytes } from 'node:crypto'
import { mkdir, open, readdir, rename, rm, stat, statfs, unlink, type FileHandle } from 'node:fs/promises'
import { HissError, fromNodeError, isHissError } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import type { ReplicaTuple } from '../common/protocol.js'
import { BlockLocks } from './block-locks.js'
import { recoverJournals } from './block-patch.js'
import { ChunkChecksummer, META_HEADER_BYTES, decodeMetaHeader, metaFileBytes, type MetaHeader } from './checksum.js'
import { ReplicaIndex } from './replica-index.js'
import { readFully, readVerified, type ReadVerifiedOptions } from './replica-reader.js'
import { StorageLayout } from './storage-layout.js'
import { WriteBehind } from './write-behind.js'

/** Hard cap on one replica: the largest block size the config accepts. */
export const MAX_BLOCK_BYTES = 2 ** 32

export interface BlockStoreEvents {
  /** A replica failed verification and was quarantined: report it corrupt. */
  onCorrupt?: (id: number, gen: number) => void
  /** An indexed replica's files vanished from disk: report it deleted. */
  onLost?: (id: number, gen: number) => void
}

export interface BlockStoreOptions {
  chunkBytes: number
  reservedBytes?: number
  log: Logger
  events?: BlockStoreEvents
}

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

  constructor (root: string, opts: BlockStoreOptions) {
    this.layout = new StorageLayout(root)
    this.chunkBytes = opts.chunkBytes
    this.reserved = opts.reservedBytes ?? 0
    this.log = opts.log
    this.events = opts.events ?? {}
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
    this.log.info('storage opened', { root: L.root, replicas: this.index.count, bytes: this.index.usedBytes })
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

  async storage (): Promise<StorageUsage> {
    const s = await statfs(this.layout.root)
    const capacity = s.blocks * s.bsize
    const free = s.bavail * s.bsize
    return { capacity, used: this.index.usedBytes, remaining: Math.max(0, free - this.reserved) }
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
   */
  async write (id: number, gen: number, source: AsyncIterable<Uint8Array>, opts: { expectedLength?: number | undefined } = {}): Promise<WriteResult> {
    this.checkWritable(id, gen)
    const expected = opts.expectedLength
    if (expected !== undefined && expected > MAX_BLOCK_BYTES) throw HissError.from('TOO_LARGE', `block over ${MAX_BLOCK_BYTES} bytes`)
    this.writing.add(id)
    const L = this.layout
    const tmp = L.tmpPaths(id, gen, randomBytes(8).toString('hex'))
    let dataFh: FileHandle | undefined
    let metaFh: FileHandle | undefined
    let metaInPlace = false
    let behind: WriteBehind | undefined
    try {
      const room = await this.storage()
      if (room.remaining < (expected ?? 1)) throw HissError.ENOSPC(`dataserver storage full (${room.remaining} bytes usable)`)
      dataFh = await open(tmp.data, 'wx', 0o644)
      const sum = new ChunkChecksummer(this.chunkBytes)
      behind = new WriteBehind(dataFh)
      for await (const piece of source) {
        const len = sum.length + piece.length
        if (len > MAX_BLOCK_BYTES) throw HissError.from('TOO_LARGE', `block over ${MAX_BLOCK_BYTES} bytes`)
        if (expected !== undefined && len > expected) throw HissError.BAD_REQUEST(`block longer than the announced ${expected} bytes`)
        sum.update(piece)
        await behind.push(piece)
      }
      await behind.flush()
      if (expected !== undefined && sum.length !== expected) throw HissError.BAD_REQUEST(`block is ${sum.length} bytes, announced ${expected}`)
      const length = sum.length
      metaFh = await open(tmp.meta, 'wx', 0o644)
      await writeAll(metaFh, sum.finish())
      await Promise.all([dataFh.sync(), metaFh.sync()])
      await Promise.all([dataFh.close(), metaFh.close()])
      dataFh = metaFh = undefined
      // Meta first: a crash between the renames leaves a lone meta, which the scan drops.
      await rename(tmp.meta, L.metaPath(id, gen))
      metaInPlace = true
      await rename(tmp.data, L.dataPath(id, gen))
      metaInPlace = false
      await fsyncDir(L.subdir(id))
      const prev = this.index.get(id)
      this.index.set(id, { gen, length })
      const result: WriteResult = { length }
      if (prev !== undefined && prev.gen < gen) {
        await this.unlinkReplica(id, prev.gen)
        result.replacedGen = prev.gen
      }
      if (this.index.removeCorrupt(id, gen)) await this.unlinkCorrupt(id, gen)
      return result
    } catch (err) {
      await behind?.settle()
      await dataFh?.close().catch(() => {})
      await metaFh?.close().catch(() => {})
      await unlink(tmp.data).catch(() => {})
      await unlink(tmp.meta).catch(() => {})
      if (metaInPlace) await unlink(L.metaPath(id, gen)).catch(() => {})
      throw fromNodeError(err, `writing block ${id}`)
    } finally {
      this.writing.delete(id)
    }
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

async function writeAll (fh: FileHandle, buf: Uint8Array): Promise<void> {
  let off = 0
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off)
    off += bytesWritten
  }
}

/** Make a rename durable: fsync the directory holding the new entry. */
async function fsyncDir (dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try { await fh.sync() } finally { await fh.close() }
}

