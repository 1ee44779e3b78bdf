// Patching a replica in place: a small change to an existing block costs the changed
// bytes, not a new copy of the whole block. Crash safety comes from a journal (redo log)
// per patch, kept in <root>/journal (patch-receiver.ts runs the steps):
//
//   1. the chunks the patch only partly overwrites are verified against their CRCs (a
//      patch must never bless a silently corrupted chunk with a fresh CRC);
//   2. the ranges and their bytes are written to `blk_<id>_<from>_<to>.patch` with a
//      header CRC and a trailer (CRC of the bytes + end mark), fsync'd, and the
//      directory fsync'd: the patch is decided (a crash before this leaves at most a
//      torn journal, dropped at start; the replica was not touched);
//   3. under the block's exclusive lock the bytes are written in place, the CRCs of the
//      touched chunks (and of the grown tail) recomputed from the data and written into
//      .meta with the new length, both renamed to the new generation (meta first); the
//      DataServer acknowledges;
//   4. checkpoint: data and meta fsync'd, the directory fsync'd, the journal removed.
//
// A kill -9 anywhere leaves either the old generation intact (before 2 completes) or a
// complete journal, which recovery applies before the replicas are scanned, ending at the
// new generation with matching checksums. Applying is idempotent and recovery finds the
// files under either generation's name, so any state 3 and 4 can be caught in is covered;
// journals of successive patches of one block are applied in generation order.
import { crc32c } from '@node-rs/crc32'
import { open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises'
import { HissError, fromNodeError, isHissError } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import { MAX_PATCH_RANGES } from '../common/protocol.js'
import { META_HEADER_BYTES, decodeMetaHeader, encodeMetaHeader, metaFileBytes } from './checksum.js'
import { readFully } from './replica-reader.js'
import { StorageLayout } from './storage-layout.js'

export interface PatchRange { offset: number, length: number }

export interface JournalHeader {
  id: number
  from: number
  to: number
  /** Replica length before the patch (the grown tail's chunks are recomputed from here). */
  oldLength: number
  newLength: number
  ranges: PatchRange[]
}

const J_MAGIC = 'HSPJ'
const J_END = 'HSPE'
const J_VERSION = 1
const J_FIXED = 4 + 2 + 2 + 8 * 5 + 4
const J_TRAILER = 8
/** Bytes moved per read/write while applying or checking (bounded memory). */
const IO_BYTES = 1024 * 1024

export function rangesBytes (ranges: readonly PatchRange[]): number {
  let n = 0
  for (const r of ranges) n += r.length
  return n
}

/**
 * `offset+length,...` from the wire: ascending, non-overlapping, non-empty, inside
 * [0, newLength), at most MAX_PATCH_RANGES. Anything else is BAD_REQUEST.
 */
export function parseRanges (header: string | undefined, newLength: number): PatchRange[] {
  if (header === undefined || header.trim() === '') throw HissError.BAD_REQUEST('patch without ranges')
  const parts = header.split(',')
  if (parts.length > MAX_PATCH_RANGES) throw HissError.BAD_REQUEST(`more than ${MAX_PATCH_RANGES} patch ranges`)
  const out: PatchRange[] = []
  let end = 0
  for (const p of parts) {
    const m = /^\s*(\d{1,15})\+(\d{1,15})\s*$/.exec(p)
    if (m === null) throw HissError.BAD_REQUEST(`bad patch range ${JSON.stringify(p.slice(0, 40))}`)
    const offset = Number(m[1])
    const length = Number(m[2])
    if (length === 0) throw HissError.BAD_REQUEST('empty patch range')
    if (offset < end) throw HissError.BAD_REQUEST('patch ranges must be ascending and must not overlap')
    if (offset + length > newLength) throw HissError.from('ERANGE', `patch range ${offset}+${length} past the new block length ${newLength}`)
    out.push({ offset, length })
    end = offset + length
  }
  return out
}

export function encodeJournalHeader (h: JournalHeader): Buffer {
  const b = Buffer.alloc(J_FIXED + 16 * h.ranges.length + 4)
  b.write(J_MAGIC, 0, 'latin1')
  b.writeUInt16BE(J_VERSION, 4)
  let o = 8
  for (const v of [h.id, h.from, h.to, h.oldLength, h.newLength]) { b.writeBigUInt64BE(BigInt(v), o); o += 8 }
  b.writeUInt32BE(h.ranges.length, o); o += 4
  for (const r of h.ranges) {
    b.writeBigUInt64BE(BigInt(r.offset), o)
    b.writeBigUInt64BE(BigInt(r.length), o + 8)
    o += 16
  }
  b.writeUInt32BE(crc32c(b.subarray(0, o)) >>> 0, o)
  return b
}

/** Bytes of the journal header for these ranges (where the data starts). */
export function encodedHeaderBytes (h: Pick<JournalHeader, 'ranges'>): number {
  return J_FIXED + 16 * h.ranges.length + 4
}

export function journalTrailer (dataCrc: number): Buffer {
  const b = Buffer.alloc(J_TRAILER)
  b.writeUInt32BE(dataCrc >>> 0, 0)
  b.write(J_END, 4, 'latin1')
  return b
}

/** A journal's header and where its data starts, or undefined when it is torn or foreign. */
export async function readJournal (fh: FileHandle): Promise<{ header: JournalHeader, dataOffset: number } | undefined> {
  const size = (await fh.stat()).size
  if (size < J_FIXED + 4 + J_TRAILER) return undefined
  const fixed = Buffer.alloc(J_FIXED)
  await readFully(fh, fixed, 0)
  if (fixed.toString('latin1', 0, 4) !== J_MAGIC || fixed.readUInt16BE(4) !== J_VERSION) return undefined
  const nums: number[] = []
  for (let o = 8; o < 48; o += 8) {
    const v = fixed.readBigUInt64BE(o)
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) return undefined
    nums.push(Number(v))
  }
  const count = fixed.readUInt32BE(48)
  if (count === 0 || count > MAX_PATCH_RANGES) return undefined
  const headerBytes = J_FIXED + 16 * count + 4
  if (size < headerBytes + J_TRAILER) return undefined
  const hb = Buffer.alloc(headerBytes)
  await readFully(fh, hb, 0)
  if (hb.readUInt32BE(headerBytes - 4) !== crc32c(hb.subarray(0, headerBytes - 4)) >>> 0) return undefined
  const ranges: PatchRange[] = []
  for (let i = 0, o = J_FIXED; i < count; i++, o += 16) {
    ranges.push({ offset: Number(hb.readBigUInt64BE(o)), length: Number(hb.readBigUInt64BE(o + 8)) })
  }
  const [id, from, to, oldLength, newLength] = nums as [number, number, number, number, number]
  const dataBytes = rangesBytes(ranges)
  if (size !== headerBytes + dataBytes + J_TRAILER) return undefined
  const trailer = Buffer.alloc(J_TRAILER)
  await readFully(fh, trailer, headerBytes + dataBytes)
  if (trailer.toString('latin1', 4, 8) !== J_END) return undefined
  let crc = 0
  const buf = Buffer.allocUnsafe(Math.min(IO_BYTES, Math.max(dataBytes, 1)))
  for (let off = 0; off < dataBytes; off += buf.length) {
    const n = Math.min(buf.length, dataBytes - off)
    await readFully(fh, buf.subarray(0, n), headerBytes + off)
    crc = crc32c(buf.subarray(0, n), crc)
  }
  if (trailer.readUInt32BE(0) !== crc >>> 0) return undefined
  return { header: { id, from, to, oldLength, newLength, ranges }, dataOffset: headerBytes }
}

/** Chunk runs [first, last] (inclusive, ascending, merged) a patch changes. */
export function touchedChunks (h: Pick<JournalHeader, 'ranges' | 'oldLength' | 'newLength'>, chunkBytes: number): Array<[number, number]> {
  const runs: Array<[number, number]> = []
  const add = (a: number, b: number): void => {
    const last = runs[runs.length - 1]
    if (last !== undefined && a <= last[1] + 1) last[1] = Math.max(last[1], b)
    else runs.push([a, b])
  }
  const tail: [number, number] | undefined = h.newLength > h.oldLength
    ? [Math.floor(h.oldLength / chunkBytes), Math.ceil(h.newLength / chunkBytes) - 1]
    : undefined
  let tailAdded = tail === undefined
  for (const r of h.ranges) {
    const a = Math.floor(r.offset / chunkBytes)
    const b = Math.floor((r.offset + r.length - 1) / chunkBytes)
    if (!tailAdded && tail![0] <= a) { add(tail![0], tail![1]); tailAdded = true }
    add(a, b)
  }
  if (!tailAdded) add(tail![0], tail![1])
  return runs
}

/**
 * Check, before anything changes, the existing chunks the patch overwrites only in part
 * (their other bytes survive and get a new CRC). Throws CHECKSUM_MISMATCH.
 */
export async function verifyPartialChunks (data: FileHandle, meta: FileHandle, h: JournalHeader, chunkBytes: number): Promise<void> {
  const existing = Math.ceil(h.oldLength / chunkBytes)
  // Is chunk k wholly inside one range? (ranges are ascending: binary search)
  const covered = (k: number): boolean => {
    const a = k * chunkBytes
    const b = Math.min(a + chunkBytes, h.oldLength)
    let lo = 0
    let hi = h.ranges.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (h.ranges[mid]!.offset <= a) lo = mid
      else hi = mid - 1
    }
    const r = h.ranges[lo]
    return r !== undefined && r.offset <= a && r.offset + r.length >= b
  }
  const buf = Buffer.allocUnsafe(chunkBytes)
  const crc = Buffer.allocUnsafe(4)
  for (const [first, last] of touchedChunks(h, chunkBytes)) {
    for (let k = first; k <= Math.min(last, existing - 1); k++) {
      if (covered(k)) continue
      const n = Math.min(chunkBytes, h.oldLength - k * chunkBytes)
      await readFully(data, buf.subarray(0, n), k * chunkBytes)
      await readFully(meta, crc, META_HEADER_BYTES + 4 * k)
      if (crc32c(buf.subarray(0, n)) >>> 0 !== crc.readUInt32BE(0)) {
        throw new HissError('CHECKSUM_MISMATCH', `checksum mismatch in chunk ${k} of block ${h.id} (found before patching)`)
      }
    }
  }
}

/**
 * Apply a journal to a replica's files (opened read-write); `bytes`: the journal's data,
 * when the caller still holds it. Idempotent: the data gets
 * the journal's bytes, the length becomes newLength (zeros past the old end), and the
 * CRCs of every touched chunk are recomputed from the data, so running it again after a
 * crash part-way gives the same files.
 */
export async function applyJournal (journal: FileHandle, j: { header: JournalHeader, dataOffset: number }, data: FileHandle, meta: FileHandle, bytes?: Buffer): Promise<void> {
  const h = j.header
  const hb = Buffer.alloc(META_HEADER_BYTES)
  await readFully(meta, hb, 0)
  const { chunkBytes } = decodeMetaHeader(hb)
  // The data first: a shorter file grows (zeros), then the ranges land.
  if ((await data.stat()).size !== h.newLength) await data.truncate(h.newLength)
  const buf = Buffer.allocUnsafe(IO_BYTES)
  let src = j.dataOffset
  for (const r of h.ranges) {
    if (bytes !== undefined) {
      // The journal's bytes, still in memory.
      const at = src - j.dataOffset
      await writeAt(data, bytes.subarray(at, at + r.length), r.offset)
      src += r.length
      continue
    }
    for (let off = 0; off < r.length;) {
      const n = Math.min(buf.length, r.length - off)
      await readFully(journal, buf.subarray(0, n), src)
      await writeAt(data, buf.subarray(0, n), r.offset + off)
      off += n
      src += n
    }
  }
  // Then the checksums of what changed, from the bytes now in the data file.
  const perBatch = Math.max(1, Math.floor(IO_BYTES / chunkBytes))
  const chunk = Buffer.allocUnsafe(perBatch * chunkBytes)
  for (const [first, last] of touchedChunks(h, chunkBytes)) {
    for (let k = first; k <= last; k += perBatch) {
      const n = Math.min(perBatch, last - k + 1)
      const start = k * chunkBytes
      const stop = Math.min(start + n * chunkBytes, h.newLength)
      await readFully(data, chunk.subarray(0, stop - start), start)
      const crcs = Buffer.allocUnsafe(4 * n)
      for (let i = 0; i < n; i++) {
        const a = i * chunkBytes
        crcs.writeUInt32BE(crc32c(chunk.subarray(a, Math.min(a + chunkBytes, stop - start))) >>> 0, 4 * i)
      }
      await writeAt(meta, crcs, META_HEADER_BYTES + 4 * k)
    }
  }
  await writeAt(meta, encodeMetaHeader({ chunkBytes, length: h.newLength }), 0)
  const metaBytes = metaFileBytes(h.newLength, chunkBytes)
  if ((await meta.stat()).size !== metaBytes) await meta.truncate(metaBytes)
}

export async function writeAt (fh: FileHandle, buf: Buffer, pos: number): Promise<void> {
  let off = 0
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off, pos + off)
    off += bytesWritten
  }
}

/** Make a rename or unlink durable: fsync the directory holding the entry. */
export async function fsyncDir (dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try { await fh.sync() } finally { await fh.close() }
}

async function exists (p: string): Promise<boolean> {
  try { await stat(p); return true } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}

/**
 * Start-up, before the replicas are scanned: re-apply every complete journal in
 * generation order and finish its renames; drop torn ones (the patch never touched its
 * replica) and those whose replica is gone (deleted meanwhile).
 */
export async function recoverJournals (layout: StorageLayout, log: Logger): Promise<{ applied: number, dropped: number }> {
  const found: Array<{ name: string, id: number, from: number, to: number }> = []
  let dropped = 0
  for (const name of await readdir(layout.journalDir)) {
    const p = StorageLayout.parseJournalName(name)
    if (p === undefined) { log.warn('ignoring unexpected file in the journal directory', { name }); continue }
    found.push({ name, ...p })
  }
  found.sort((a, b) => a.to - b.to)
  let applied = 0
  for (const f of found) {
    const jpath = layout.journalPath(f.id, f.from, f.to)
    const jfh = await open(jpath, 'r')
    let done = false
    try {
      const j = await readJournal(jfh)
      if (j === undefined || j.header.id !== f.id || j.header.from !== f.from || j.header.to !== f.to) {
        log.warn('dropping a torn patch journal', { name: f.name })
        dropped++
      } else {
        const data = await exists(layout.dataPath(f.id, f.to)) ? layout.dataPath(f.id, f.to) : layout.dataPath(f.id, f.from)
        const meta = await exists(layout.metaPath(f.id, f.to)) ? layout.metaPath(f.id, f.to) : layout.metaPath(f.id, f.from)
        if (!(await exists(data)) || !(await exists(meta))) {
          log.warn('patch journal without its replica: dropped', { name: f.name })
          dropped++
        } else {
          await finishPatch(layout, jfh, j, data, meta)
          log.info('patch re-applied from its journal', { id: f.id, from: f.from, to: f.to })
          applied++
        }
      }
      done = true
    } finally {
      await jfh.close()
      if (done) await unlink(jpath)
    }
  }
  if (applied + dropped > 0) await fsyncDir(layout.journalDir)
  return { applied, dropped }
}

/** Apply, fsync, rename to the new generation (meta first), fsync the directory. */
export async function finishPatch (layout: StorageLayout, journal: FileHandle, j: { header: JournalHeader, dataOffset: number }, dataPath: string, metaPath: string): Promise<void> {
  const { id, to } = j.header
  let data: FileHandle | undefined
  let meta: FileHandle | undefined
  try {
    data = await open(dataPath, 'r+')
    meta = await open(metaPath, 'r+')
    await applyJournal(journal, j, data, meta)
    await Promise.all([data.sync(), meta.sync()])
  } catch (err) {
    throw isHissError(err) ? err : fromNodeError(err, `patching block ${id}`)
  } finally {
    await data?.close().catch(() => {})
    await meta?.close().catch(() => {})
  }
  if (metaPath !== layout.metaPath(id, to)) await rename(metaPath, layout.metaPath(id, to))
  if (dataPath !== layout.dataPath(id, to)) await rename(dataPath, layout.dataPath(id, to))
  await fsyncDir(layout.subdir(id))
}
