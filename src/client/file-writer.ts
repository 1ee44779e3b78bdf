// `put`: stream a file into the cluster. The input is cut into blocks of the file's
// block size; each block's bytes flow straight from the input into the PUT of its
// pipeline (and, to allow one retry from disk, into a spool file: see block-spool.ts),
// with backpressure end to end, so a 1 GiB put keeps memory flat. The file appears
// only when the commit succeeds; any failure aborts the write and rethrows.
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

/**
 * Copy the next block (at most blockSize bytes) of `src` into `body` and the spool.
 * When `body` dies (its PUT failed) the copy continues into the spool alone so the
 * block can be sent again; without a spool it stops. Resolves with the block length.
 */
async function pumpBlock (src: ChunkSource, blockSize: number, body: PassThrough, spool: SpoolWriter | undefined, onBytes: (n: number) => void, d: FileWriterDeps): Promise<number> {
  let remaining = blockSize
  let n = 0
  body.on('error', () => { /* reported through the PUT */ })
  try {
    while (remaining > 0) {
      const bodyAlive = !body.destroyed
      if (!bodyAlive && spool?.ok !== true) break
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

async function storeNextBlock (session: HissWriteSession, src: ChunkSource, spool: BlockSpool | undefined, onBytes: (n: number) => void, d: FileWriterDeps): Promise<BlockRef> {
  let pump: Promise<number> | undefined
  let writer: SpoolWriter | undefined
  try {
    return await session.storeWith(async attempt => {
      if (attempt === 0) {
        const body = new PassThrough()
        writer = spool?.begin()
        pump = pumpBlock(src, session.blockSize, body, writer, onBytes, d)
        // Observed below and by later attempts; never left unhandled.
        pump.catch(() => {})
        return { body }
      }
      const length = await pump!
      if (writer === undefined || !writer.ok || spool === undefined) return undefined
      d.log.info('resending block from spool', { writeId: session.writeId, length })
      return { body: spool.open(), length }
    })
  } finally {
    // The next block reuses the spool file and the input: this block's copy must be over.
    if (pump !== undefined) await pump.catch(() => {})
  }
}

export async function putFile (session: HissWriteSession, data: Readable, opts: PutOptions, d: FileWriterDeps): Promise<FileStat> {
  const src = new ChunkSource(data)
  let spool: BlockSpool | undefined
  let done = 0
  const onBytes = (n: number): void => {
    done += n
    opts.onProgress?.(done)
  }
  try {
    if (d.spoolDir !== false) spool = await BlockSpool.create(d.spoolDir, d.log)
    const blocks: BlockRef[] = []
    while (await src.hasMore()) blocks.push(await storeNextBlock(session, src, spool, onBytes, d))
    return await session.commit(blocks)
  } catch (err) {
    await src.close().catch(() => {})
    await session.abort().catch(e => { d.log.warn('abort after a failed put failed', { err: e as Error, writeId: session.writeId }) })
    throw toHissError(err)
  } finally {
    await spool?.dispose()
  }
}
