// CRC32C per fixed-size chunk, kept in a small `.meta` file beside each replica:
//   header (24 bytes): "HSCK", u16 version, u16 algorithm (1 = crc32c),
//                      u32 chunk bytes, u64 data length, u32 crc32c of the 20 bytes before
//   then one big-endian u32 CRC per chunk (the last chunk may be short).
// The chunk size is stored per replica, so changing `checksum.chunk.bytes` later never
// invalidates replicas already on disk.
import { crc32c } from '@node-rs/crc32'
import { HissError } from '../common/errors.js'

export const META_MAGIC = 'HSCK'
export const META_VERSION = 1
export const META_ALGO_CRC32C = 1
export const META_HEADER_BYTES = 24

export interface MetaHeader { chunkBytes: number, length: number }

export function chunkCount (length: number, chunkBytes: number): number {
  return Math.ceil(length / chunkBytes)
}

/** Bytes of the whole meta file for a replica of `length` bytes. */
export function metaFileBytes (length: number, chunkBytes: number): number {
  return META_HEADER_BYTES + 4 * chunkCount(length, chunkBytes)
}

export function encodeMetaHeader (h: MetaHeader): Buffer {
  const b = Buffer.alloc(META_HEADER_BYTES)
  b.write(META_MAGIC, 0, 'latin1')
  b.writeUInt16BE(META_VERSION, 4)
  b.writeUInt16BE(META_ALGO_CRC32C, 6)
  b.writeUInt32BE(h.chunkBytes, 8)
  b.writeBigUInt64BE(BigInt(h.length), 12)
  b.writeUInt32BE(crc32c(b.subarray(0, 20)), 20)
  return b
}

/** Throws CHECKSUM_MISMATCH for anything that is not a header we wrote. */
export function decodeMetaHeader (b: Buffer): MetaHeader {
  const bad = (why: string): HissError => new HissError('CHECKSUM_MISMATCH', `bad checksum file: ${why}`)
  if (b.length < META_HEADER_BYTES) throw bad('short header')
  if (b.toString('latin1', 0, 4) !== META_MAGIC) throw bad('magic')
  if (b.readUInt32BE(20) !== crc32c(b.subarray(0, 20))) throw bad('header checksum')
  if (b.readUInt16BE(4) !== META_VERSION || b.readUInt16BE(6) !== META_ALGO_CRC32C) throw bad('unknown version')
  const chunkBytes = b.readUInt32BE(8)
  const length = b.readBigUInt64BE(12)
  if (chunkBytes === 0 || length > BigInt(Number.MAX_SAFE_INTEGER)) throw bad('header values')
  return { chunkBytes, length: Number(length) }
}

/**
 * Computes chunk CRCs over a byte stream fed in arbitrary pieces (chunk boundaries need
 * not match the pieces: CRC32C continues across calls). Holds only the CRC list, which
 * is 4 bytes per chunk (1/16384 of the data with the default 64 KiB chunks).
 */
export class ChunkChecksummer {
  readonly chunkBytes: number
  private crcs: Buffer = Buffer.alloc(256)
  private count = 0
  private partialCrc = 0
  private partialLen = 0
  private total = 0

  constructor (chunkBytes: number) {
    if (!Number.isInteger(chunkBytes) || chunkBytes <= 0) throw new Error('bad chunk size')
    this.chunkBytes = chunkBytes
  }

  get length (): number { return this.total }

  update (buf: Uint8Array): void {
    let off = 0
    while (off < buf.length) {
      const take = Math.min(this.chunkBytes - this.partialLen, buf.length - off)
      this.partialCrc = crc32c(buf.subarray(off, off + take), this.partialCrc)
      this.partialLen += take
      off += take
      if (this.partialLen === this.chunkBytes) this.pushChunk()
    }
    this.total += buf.length
  }

  /** The meta file's bytes (header + CRC array). Call once, after the last update. */
  finish (): Buffer {
    if (this.partialLen > 0) this.pushChunk()
    const header = encodeMetaHeader({ chunkBytes: this.chunkBytes, length: this.total })
    return Buffer.concat([header, this.crcs.subarray(0, this.count * 4)])
  }

  private pushChunk (): void {
    if ((this.count + 1) * 4 > this.crcs.length) {
      const bigger = Buffer.alloc(this.crcs.length * 2)
      this.crcs.copy(bigger)
      this.crcs = bigger
    }
    this.crcs.writeUInt32BE(this.partialCrc >>> 0, this.count * 4)
    this.count++
    this.partialCrc = 0
    this.partialLen = 0
  }
}

/**
 * Verify consecutive chunks held in `data` (starting at a chunk boundary) against
 * `crcs` (one u32 per chunk). Returns how many leading bytes verified; equal to
 * data.length when all of them did.
 */
export function verifyChunks (data: Buffer, crcs: Buffer, chunkBytes: number): number {
  let off = 0
  for (let i = 0; off < data.length; i++) {
    const end = Math.min(off + chunkBytes, data.length)
    if (i * 4 + 4 > crcs.length) return off
    if (crc32c(data.subarray(off, end)) >>> 0 !== crcs.readUInt32BE(i * 4)) return off
    off = end
  }
  return off
}

/**
 * The meta file of a block of `length` zero bytes, the same bytes ChunkChecksummer would
 * produce, without reading zeros through the CRC: every full chunk has one CRC.
 */
export function zeroMetaBytes (length: number, chunkBytes: number): Buffer {
  const n = chunkCount(length, chunkBytes)
  const out = Buffer.alloc(META_HEADER_BYTES + n * 4)
  encodeMetaHeader({ chunkBytes, length }).copy(out, 0)
  if (n === 0) return out
  const tail = length - (n - 1) * chunkBytes
  const full = crc32c(Buffer.alloc(Math.min(chunkBytes, length))) >>> 0
  for (let i = 0; i < n - 1; i++) out.writeUInt32BE(full, META_HEADER_BYTES + i * 4)
  out.writeUInt32BE((tail === chunkBytes ? full : crc32c(Buffer.alloc(tail))) >>> 0, META_HEADER_BYTES + (n - 1) * 4)
  return out
}
