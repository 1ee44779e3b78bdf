// Reads a byte range of a replica, verifying every chunk it touches against the CRCs
// before handing out any of its bytes. Reads whole chunks (the range is widened to
// chunk boundaries for verification) in batches of about 1 MiB, a few batches ahead of
// the consumer (the disk works while the network sends), so memory stays small.
import type { FileHandle } from 'node:fs/promises'
import { BufferPool } from '../common/buffer-pool.js'
import { HissError } from '../common/errors.js'
import { META_HEADER_BYTES, verifyChunks, type MetaHeader } from './checksum.js'

export const READ_BATCH_BYTES = 1024 * 1024

/** The DataServer's pool for block reads that are sent to a socket (routes-blocks.ts). */
export const sendPool = new BufferPool(READ_BATCH_BYTES, 16)

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
  /**
   * Batches read from disk ahead of the one being handed out (default READ_AHEAD_BATCHES,
   * 0 with `pace`), so the disk works while the consumer sends: memory stays at
   * (1 + readAhead) batches.
   */
  readAhead?: number
  /** Called after each batch with its size: the scanner uses it to pace itself. */
  pace?: (bytes: number) => Promise<void>
  /**
   * Take batch buffers from this pool. The consumer gives each yielded buffer back
   * (pool.give) once it no longer needs the bytes; batches read ahead but never
   * yielded go back when the read ends.
   */
  pool?: BufferPool
}

/** Default read-ahead of a verified read: with 1 MiB batches, 3 MiB in memory per read. */
export const READ_AHEAD_BATCHES = 2

interface Batch { chunk: number, start: number, buf: Buffer, crcs: Buffer, done: Promise<unknown> }

/**
 * Yields the verified bytes of [offset, offset+length). On a mismatch it first yields
 * the bytes before the bad chunk (they verified), then throws CHECKSUM_MISMATCH.
 * Reads of the next batches are in flight while a batch is handed out; every read has
 * settled when the generator returns, so the caller may close the files then.
 */
export async function * readVerified (data: FileHandle, meta: FileHandle, header: MetaHeader, offset: number, length: number, opts: ReadVerifiedOptions = {}): AsyncGenerator<Buffer> {
  if (length === 0) return
  const cb = header.chunkBytes
  const end = offset + length
  const lastChunk = Math.floor((end - 1) / cb)
  const perBatch = Math.max(1, Math.floor((opts.batchBytes ?? READ_BATCH_BYTES) / cb))
  const ahead = Math.max(0, opts.readAhead ?? (opts.pace === undefined ? READ_AHEAD_BATCHES : 0))
  const queue: Batch[] = []
  let next = Math.floor(offset / cb)
  const issue = (): void => {
    const n = Math.min(perBatch, lastChunk - next + 1)
    const start = next * cb
    const stop = Math.min(start + n * cb, header.length)
    const buf = opts.pool?.take(stop - start) ?? Buffer.allocUnsafe(stop - start)
    const crcs = Buffer.allocUnsafe(4 * n)
    const done = Promise.all([readFully(data, buf, start), readFully(meta, crcs, META_HEADER_BYTES + 4 * next)])
    // Observed when its turn comes, or settled in `finally`: never unhandled.
    done.catch(() => {})
    queue.push({ chunk: next, start, buf, crcs, done })
    next += n
  }
  try {
    while (queue.length > 0 || next <= lastChunk) {
      while (queue.length <= ahead && next <= lastChunk) issue()
      const b = queue.shift()!
      await b.done
      const good = verifyChunks(b.buf, b.crcs, cb)
      // Hand out only the requested part of what verified.
      const from = Math.max(offset, b.start) - b.start
      const to = Math.min(end, b.start + good) - b.start
      if (to > from) yield b.buf.subarray(from, to)
      if (good < b.buf.length) {
        const bad = b.chunk + Math.floor(good / cb)
        throw new HissError('CHECKSUM_MISMATCH', `checksum mismatch in chunk ${bad} (bytes ${bad * cb}..)`)
      }
      if (opts.pace !== undefined) await opts.pace(b.buf.length)
    }
  } finally {
    await Promise.allSettled(queue.map(b => b.done))
    // Read ahead but never handed out: nothing else refers to them.
    if (opts.pool !== undefined) for (const b of queue) opts.pool.give(b.buf)
  }
}
