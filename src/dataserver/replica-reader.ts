// Reads a byte range of a replica, verifying every chunk it touches against the CRCs
// before handing out any of its bytes. Reads whole chunks (the range is widened to
// chunk boundaries for verification) in batches of about 1 MiB, so memory stays small.
import type { FileHandle } from 'node:fs/promises'
import { HissError } from '../common/errors.js'
import { META_HEADER_BYTES, verifyChunks, type MetaHeader } from './checksum.js'

export const READ_BATCH_BYTES = 1024 * 1024

/** Fill `buf` from `pos`; a file that ends early is a damaged replica. */
export async function readFully (fh: FileHandle, buf: Buffer, pos: number): Promise<void> {
  let off = 0
  while (off < buf.length) {
    const { bytesRead } = await fh.read(buf, off, buf.length - off, pos + off)
    if (bytesRead === 0) throw new HissError('CHECKSUM_MISMATCH', 'checksum mismatch: replica file is truncated')
    off += bytesRead
  }
}

export interface ReadVerifiedOptions {
  batchBytes?: number
  /** Called after each batch with its size: the scanner uses it to pace itself. */
  pace?: (bytes: number) => Promise<void>
}

/**
 * Yields the verified bytes of [offset, offset+length). On a mismatch it first yields
 * the bytes before the bad chunk (they verified), then throws CHECKSUM_MISMATCH.
 */
export async function * readVerified (data: FileHandle, meta: FileHandle, header: MetaHeader, offset: number, length: number, opts: ReadVerifiedOptions = {}): AsyncGenerator<Buffer> {
  if (length === 0) return
  const cb = header.chunkBytes
  const end = offset + length
  const lastChunk = Math.floor((end - 1) / cb)
  const perBatch = Math.max(1, Math.floor((opts.batchBytes ?? READ_BATCH_BYTES) / cb))
  for (let chunk = Math.floor(offset / cb); chunk <= lastChunk;) {
    const n = Math.min(perBatch, lastChunk - chunk + 1)
    const start = chunk * cb
    const stop = Math.min(start + n * cb, header.length)
    const buf = Buffer.allocUnsafe(stop - start)
    await readFully(data, buf, start)
    const crcs = Buffer.allocUnsafe(4 * n)
    await readFully(meta, crcs, META_HEADER_BYTES + 4 * chunk)
    const good = verifyChunks(buf, crcs, cb)
    // Hand out only the requested part of what verified.
    const from = Math.max(offset, start) - start
    const to = Math.min(end, start + good) - start
    if (to > from) yield buf.subarray(from, to)
    if (good < buf.length) {
      const bad = chunk + Math.floor(good / cb)
      throw new HissError('CHECKSUM_MISMATCH', `checksum mismatch in chunk ${bad} (bytes ${bad * cb}..)`)
    }
    if (opts.pace !== undefined) await opts.pace(buf.length)
    chunk += n
  }
}
