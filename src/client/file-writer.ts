// `put`: stream a file into the cluster. The input is cut into blocks of the file's
// block size; each block's bytes flow straight from the input into the PUT of its
// pipeline, with backpressure end to end, so a 1 GiB put keeps memory flat. The next
// block starts streaming as soon as this one's bytes are sent, while the DataServers
// still make it durable (at most PUT_BLOCKS_IN_FLIGHT blocks at a time). A block whose
// pipeline fails is sent again on a new one: re-read from the input when the caller can
// replay it (PutOptions.replay, e.g. a local file), else from a spool copy on local disk
// (see block-spool.ts). The file appears only when the commit succeeds; any failure
// aborts the write and rethrows.
import { PassThrough } from 'node:stream'
import type { Readable } from 'node:stream'
import type { Clock } from '../common/clock.js'
import { HissError } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import type { BlockRef, FileStat } from '../common/protocol.js'
import { BlockSpool, type SpoolWriter } from './block-spool.js'
import { ChunkSource } from './chunk-source.js'
import { toHissError } from './http-errors.js'
import type { HissWriteSession } from './write-session.js'
import type { PutOptions } from './types.js'

export interface FileWriterDeps {
  clock: Clock
  log: Logger
  /** How long a DataServer may leave our upload without reading (cfg client.timeout.ms). */
  stallMs: number
  /** Directory for block spool files; false: no spooling (a failed block fails the put). */
  spoolDir: string | false
}

/**
 * Wait until `body` drains, closes, or stalls for `ms` (then it is destroyed with
 * ETIMEDOUT, which fails its PUT). Never rejects: the pump keeps spooling regardless.
 */
function waitDrain (body: PassThrough, clock: Clock, ms: number): Promise<void> {
  return new Promise(resolve => {
    const done = (): void => {
      clock.clearTimeout(timer)
      body.off('drain', done)
      body.off('close', done)
      resolve()
    }
    const timer = clock.setTimeout(() => {
      body.destroy(HissError.ETIMEDOUT('DataServer stopped reading the block'))
      done()
    }, ms)
    body.on('drain', done)
    body.on('close', done)
  })
}

/** Blocks of one put on the wire at once: one streaming, one being made durable. */
export const PUT_BLOCKS_IN_FLIGHT = 2

/**
 * Copy the next block (at most blockSize bytes) of `src` into `body` and the spool.
 * When `body` dies (its PUT failed) the copy continues into the spool alone so the
 * block can be sent again; without a spool it stops, unless `drainAll` (the input can be
 * replayed: the block's bytes are consumed so the next block starts at the right place).
 * Resolves with the block length.
 */
async function pumpBlock (src: ChunkSource, blockSize: number, body: PassThrough, spool: SpoolWriter | undefined, drainAll: boolean, onBytes: (n: number) => void, d: FileWriterDeps): Promise<number> {
  let remaining = blockSize
  let n = 0
  body.on('error', () => { /* reported through the PUT */ })
  try {
    while (remaining > 0) {
      const bodyAlive = !body.destroyed
      if (!bodyAlive && spool?.ok !== true && !drainAll) break
      const chunk = await src.next(remaining)
      if (chunk === undefined) break
      remaining -= chunk.length
      n += chunk.length
      const waits: Array<Promise<void>> = []
      if (bodyAlive && !body.destroyed && !body.write(chunk)) waits.push(waitDrain(body, d.clock, d.stallMs))
      const sw = spool?.write(chunk)
      if (sw !== undefined) waits.push(sw)
      onBytes(chunk.length)
      if (waits.length > 0) await Promise.all(waits)
    }
    if (!body.destroyed) body.end()
    await spool?.finish()
    return n
  } catch (err) {
    // The input failed: the block must not be stored as if complete.
    const e = toHissError(err)
    body.destroy(e)
    spool?.abort()
    throw e
  }
}

interface BlockInFlight {
  /** The block's input bytes are consumed (its length is known), or the input failed. */
  pumped: Promise<number>
  /** The block is stored (or failed for good). */
  stored: Promise<BlockRef>
}

/** Start storing the block that begins at input offset `start`. */
function startBlock (session: HissWriteSession, src: ChunkSource, start: number, spool: BlockSpool | undefined, slot: number, opts: PutOptions, onBytes: (n: number) => void, d: FileWriterDeps): BlockInFlight {
  let writer: SpoolWriter | undefined
  let resolvePumped!: (n: number) => void
  let rejectPumped!: (e: unknown) => void
  const pumped = new Promise<number>((resolve, reject) => { resolvePumped = resolve; rejectPumped = reject })
  pumped.catch(() => {})
  const replay = opts.replay
  let pump: Promise<number> | undefined
  let failure: unknown
  const stored = (async () => {
    try {
      return await session.storeWith(async attempt => {
        if (attempt === 0) {
          const body = new PassThrough()
          writer = replay === undefined ? spool?.begin(slot) : undefined
          pump = pumpBlock(src, session.blockSize, body, writer, replay !== undefined, onBytes, d)
          pump.then(resolvePumped, rejectPumped)
          return { body }
        }
        const length = await pump!
        if (replay !== undefined) {
          d.log.info('resending block from the input', { writeId: session.writeId, start, length })
          return { body: replay(start, length), length }
        }
        if (writer === undefined || !writer.ok || spool === undefined) return undefined
        d.log.info('resending block from spool', { writeId: session.writeId, length })
        return { body: spool.open(slot), length }
      })
    } catch (err) {
      failure = err
      throw err
    } finally {
      // The spool slot and the input must be done with this block. A block that never
      // started (its allocation failed) reports why, not just that it did not start.
      if (pump === undefined) rejectPumped(failure ?? HissError.EIO('block was never started'))
      else await pump.catch(() => {})
    }
  })()
  stored.catch(() => {})
  return { pumped, stored }
}

export async function putFile (session: HissWriteSession, data: Readable, opts: PutOptions, d: FileWriterDeps): Promise<FileStat> {
  const src = new ChunkSource(data)
  let spool: BlockSpool | undefined
  let done = 0
  const onBytes = (n: number): void => {
    done += n
    opts.onProgress?.(done)
  }
  const inFlight: BlockInFlight[] = []
  try {
    if (d.spoolDir !== false && opts.replay === undefined) spool = await BlockSpool.create(d.spoolDir, d.log)
    const stored: Array<Promise<BlockRef>> = []
    let offset = 0
    for (let k = 0; await src.hasMore(); k++) {
      // Keep at most PUT_BLOCKS_IN_FLIGHT blocks going (this also frees spool slot k % N).
      if (inFlight.length >= PUT_BLOCKS_IN_FLIGHT) await inFlight.shift()!.stored
      const b = startBlock(session, src, offset, spool, k % PUT_BLOCKS_IN_FLIGHT, opts, onBytes, d)
      inFlight.push(b)
      stored.push(b.stored)
      // The next block starts where this one's input ends; a failure here ends the put.
      offset += await Promise.race([b.pumped, b.stored.then(ref => ref.length)])
    }
    const blocks = await Promise.all(stored)
    return await session.commit(blocks)
  } catch (err) {
    await src.close().catch(() => {})
    // Let every block attempt end before the write and its spool go away.
    await Promise.allSettled(inFlight.map(b => b.stored))
    await session.abort().catch(e => { d.log.warn('abort after a failed put failed', { err: e as Error, writeId: session.writeId }) })
    throw toHissError(err)
  } finally {
    await spool?.dispose()
  }
}
