// POST /v1/blocks/:id/patch: apply byte ranges to the replica held here, moving it to a
// new generation (crash safety: block-patch.ts), while forwarding the same request down
// the pipeline; answer once the local copy is durable, the NameServer has been told and
// the downstream replied or failed. Every input is checked before anything is touched:
// token (an update token naming the generations it applies to), ranges, new length, and
// the replica's generation and length.
import type { IncomingMessage } from 'node:http'
import { open, rename, unlink, type FileHandle } from 'node:fs/promises'
import { crc32c } from '@node-rs/crc32'
import type { Request, Response } from 'express'
import { verifyBlockToken } from '../common/auth.js'
import { HissError, fromNodeError, isHissError } from '../common/errors.js'
import { parseBlockNumber } from '../common/paths.js'
import { HEADER_PATCH_RANGES, HEADER_PIPELINE, HEADER_PIPELINE_IDS, HEADER_TOKEN, type DataServerRef, type WriteBlockReply } from '../common/protocol.js'
import { MAX_BLOCK_BYTES, type BlockStore } from './block-store.js'
import type { ReceivedReporter } from './block-receiver.js'
import { META_HEADER_BYTES, decodeMetaHeader } from './checksum.js'
import {
  applyJournal, encodeJournalHeader, encodedHeaderBytes, journalTrailer, parseRanges, rangesBytes, verifyPartialChunks, writeAt,
  type JournalHeader, type PatchRange,
} from './block-patch.js'
import { Downstream, FanOut, forwardingSource, parsePipeline, type BlockBody, type DownstreamLike } from './pipeline.js'
import { FAN_OUT_MAX_BYTES } from './block-receiver.js'
import { readFully } from './replica-reader.js'
import { settleAll } from '../common/settle-all.js'
import type { Transport } from './transport.js'
import type { StreamLimiter } from './stream-limiter.js'
import type { Clock } from '../common/clock.js'
import type { Logger } from '../common/log.js'

/** Patches up to this size are held in memory while journalled and applied. */
export const SMALL_PATCH_BYTES = 1024 * 1024

export interface PatchArgs {
  id: number
  /** The new generation. */
  gen: number
  /** Generations the replica may hold for the patch to apply (from the token). */
  from: readonly number[]
  newLength: number
  ranges: PatchRange[]
}

export interface PatchDeps {
  selfId: string
  secret: string
  clock: Clock
  store: BlockStore
  limiter: StreamLimiter
  transport: Transport
  reporter: ReceivedReporter
  downstreamTimeoutMs: number
  log: Logger
}

/** Refuse a patch that cannot apply here, before any byte is read or forwarded. */
export function checkPatchable (store: BlockStore, a: PatchArgs): { gen: number, length: number } {
  const cur = store.index.get(a.id)
  if (cur === undefined) {
    if (a.from.some(g => store.index.isCorrupt(a.id, g))) throw new HissError('CHECKSUM_MISMATCH', `checksum mismatch: replica of block ${a.id} is corrupt`)
    throw HissError.ENOENT(`block ${a.id}`)
  }
  if (cur.gen === a.gen) throw HissError.EEXIST(`block ${a.id} generation ${a.gen} already stored`)
  if (!a.from.includes(cur.gen)) {
    throw HissError.from('STALE_REPLICA', `block ${a.id}: this replica has generation ${cur.gen}; the patch to ${a.gen} applies to ${a.from.join(', ')}`)
  }
  if (a.gen <= cur.gen) throw HissError.BAD_REQUEST(`block ${a.id}: new generation ${a.gen} is not above ${cur.gen}`)
  if (a.newLength < cur.length) throw HissError.BAD_REQUEST(`block ${a.id}: a patch cannot shrink the block (${cur.length} -> ${a.newLength} bytes)`)
  return cur
}

/**
 * Journal the patch from `body`, apply it, and answer once the journal is durable (see
 * block-patch.ts for the order of steps and why each is crash-safe). The in-place
 * changes are made durable right after (checkpoint), then the journal goes; until then
 * a restart re-applies it. Returns the new length.
 */
export async function patchReplica (store: BlockStore, a: PatchArgs, body: AsyncIterable<Uint8Array>, log?: Logger): Promise<{ length: number, from: number }> {
  const cur = checkPatchable(store, a)
  const L = store.layout
  const total = rangesBytes(a.ranges)
  store.claimWrite(a.id)
  const header: JournalHeader = { id: a.id, from: cur.gen, to: a.gen, oldLength: cur.length, newLength: a.newLength, ranges: a.ranges }
  const jpath = L.journalPath(a.id, cur.gen, a.gen)
  let journal: FileHandle | undefined
  let data: FileHandle | undefined
  let meta: FileHandle | undefined
  let release: (() => void) | undefined
  let keepJournal = false
  let bytes: Buffer | undefined
  try {
    await store.checkRoom(total + (a.newLength - cur.length))
    // Nothing else changes these bytes while we hold the write claim: check them first,
    // so a journal on disk is always one that may be applied.
    ;({ data, meta } = await openOldReplica(store, header))
    journal = await open(jpath, 'wx+', 0o644)
    const hb = encodeJournalHeader(header)
    // A small patch is kept in memory (bounded) and written with one call; a large one
    // streams into the journal and is read back from it when applied.
    const small = total <= SMALL_PATCH_BYTES
    const pieces: Buffer[] = []
    if (!small) await writeAt(journal, hb, 0)
    let got = 0
    let crc = 0
    for await (const piece of body) {
      if (got + piece.length > total) throw HissError.BAD_REQUEST(`patch body longer than its ranges (${total} bytes)`)
      const buf = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.length)
      crc = crc32c(buf, crc)
      if (small) pieces.push(buf)
      else await writeAt(journal, buf, hb.length + got)
      got += piece.length
    }
    if (got !== total) throw HissError.BAD_REQUEST(`patch body is ${got} bytes, its ranges ${total}`)
    if (small) {
      bytes = Buffer.concat(pieces, total)
      await writeAt(journal, Buffer.concat([hb, bytes, journalTrailer(crc)]), 0)
    } else {
      await writeAt(journal, journalTrailer(crc), hb.length + got)
    }
    await journal.sync()
    await store.fsyncJournalDir()
    // Durable from here: a restart finishes the patch from the journal.

    release = await store.locks.exclusive(a.id)
    const now = store.index.get(a.id)
    if (now === undefined || now.gen !== cur.gen || now.length !== cur.length) throw HissError.ENOENT(`block ${a.id} generation ${cur.gen} changed while the patch arrived`)
    try {
      await applyJournal(journal, { header, dataOffset: encodedHeaderBytes(header) }, data, meta, bytes)
      await rename(L.metaPath(a.id, cur.gen), L.metaPath(a.id, a.gen))
      await rename(L.dataPath(a.id, cur.gen), L.dataPath(a.id, a.gen))
    } catch (err) {
      // Part-applied: the old generation can no longer be trusted, and the new one is
      // not complete. Out of service (quarantine); the NameServer re-replicates.
      await quarantineBoth(store, a.id, cur.gen, a.gen)
      throw err
    }
    store.index.set(a.id, { gen: a.gen, length: a.newLength })
    keepJournal = true
    // The journal's handle is closed in the background (nothing reads it again; the
    // checkpoint removes the file by name), so the reply does not wait for the close.
    const j = journal
    journal = undefined
    store.track(j.close().catch(() => {}))
    // In the background, but a clean close waits for it (the storage lock is held until then).
    store.track(checkpoint(store, a.id, data!, meta!, jpath).catch(err => { log?.error('patch checkpoint failed; the journal stays for the next start', { id: a.id, gen: a.gen, err: err as Error }) }))
    data = meta = undefined
    return { length: a.newLength, from: cur.gen }
  } catch (err) {
    throw isHissError(err) ? err : fromNodeError(err, `patching block ${a.id}`)
  } finally {
    release?.()
    await data?.close().catch(() => {})
    await meta?.close().catch(() => {})
    await journal?.close().catch(() => {})
    if (journal !== undefined && !keepJournal) await unlink(jpath).catch(() => {})
    store.releaseWrite(a.id)
  }
}

/** Make the in-place changes and renames durable, then drop the journal that covered them. */
async function checkpoint (store: BlockStore, id: number, data: FileHandle, meta: FileHandle, journal: string): Promise<void> {
  try {
    await Promise.all([data.sync(), meta.sync()])
  } finally {
    await Promise.all([data.close().catch(() => {}), meta.close().catch(() => {})])
  }
  await store.fsyncSubdir(id)
  await unlink(journal)
}

/**
 * Open the replica for the patch and check it before any change: sizes, header, and the
 * chunks the patch overwrites only in part (a mismatch quarantines the replica).
 */
async function openOldReplica (store: BlockStore, h: JournalHeader): Promise<{ data: FileHandle, meta: FileHandle }> {
  const L = store.layout
  // Side by side: the two opens, then the checksum header and the data file's size.
  const dataOpen = open(L.dataPath(h.id, h.from), 'r+')
  const metaOpen = open(L.metaPath(h.id, h.from), 'r+')
  try {
    await settleAll([dataOpen, metaOpen])
    const [data, meta] = [await dataOpen, await metaOpen]
    const hb = Buffer.alloc(META_HEADER_BYTES)
    let dataBytes = 0
    await settleAll([readFully(meta, hb, 0), data.stat().then(s => { dataBytes = s.size })])
    const mh = decodeMetaHeader(hb)
    if (mh.length !== h.oldLength || dataBytes !== h.oldLength) {
      throw new HissError('CHECKSUM_MISMATCH', 'checksum mismatch: replica length differs from its checksum file')
    }
    await verifyPartialChunks(data, meta, h, mh.chunkBytes)
    return { data, meta }
  } catch (err) {
    await Promise.all([dataOpen, metaOpen].map(p => p.then(fh => fh.close(), () => {}).catch(() => {})))
    if (isHissError(err) && err.code === 'CHECKSUM_MISMATCH') await store.markCorrupt(h.id, h.from)
    throw err
  }
}

/** A patch failed part-way: move whatever files it left (either name) to quarantine. */
async function quarantineBoth (store: BlockStore, id: number, from: number, to: number): Promise<void> {
  const L = store.layout
  for (const [src, dst] of [
    [L.metaPath(id, to), L.corruptMetaPath(id, from)],
    [L.dataPath(id, to), L.corruptDataPath(id, from)],
  ] as const) {
    await rename(src, dst).catch(() => {})
  }
  await store.markCorruptLocked(id, from)
}

export interface IncomingPatch extends PatchArgs {
  token: string
  body: BlockBody
  pipeline: DataServerRef[]
}

export async function receivePatch (d: PatchDeps, p: IncomingPatch): Promise<WriteBlockReply> {
  checkPatchable(d.store, p)
  let down: DownstreamLike | undefined
  const total = rangesBytes(p.ranges)
  // A small patch (an fsync after a random write) goes to all downstream hops at once,
  // as a small block write does (see FAN_OUT_MAX_BYTES): the reply then waits for one
  // hop instead of each in turn. Larger ones keep the chain.
  const opts = {
    transport: d.transport,
    hops: p.pipeline,
    block: { id: p.id, gen: p.gen },
    token: p.token,
    length: total,
    timeoutMs: d.downstreamTimeoutMs,
    log: d.log,
    method: 'POST' as const,
    path: `/v1/blocks/${p.id}/patch?gen=${p.gen}&length=${p.newLength}`,
    headers: { [HEADER_PATCH_RANGES]: p.ranges.map(r => `${r.offset}+${r.length}`).join(',') },
  }
  const open = p.pipeline.length === 0
    ? undefined
    : () => (down = p.pipeline.length > 1 && total <= FAN_OUT_MAX_BYTES ? new FanOut(opts) : new Downstream(opts))
  let length: number
  try {
    length = (await patchReplica(d.store, p, forwardingSource(p.body, open), d.log)).length
  } catch (err) {
    ;(down as DownstreamLike | undefined)?.abort()
    throw err
  }
  // Queued, not awaited: the commit on the NameServer waits for the reports it needs.
  d.reporter.reportReceived([p.id, p.gen, length])
  const downStored = await ((down as DownstreamLike | undefined)?.result() ?? Promise.resolve([] as string[]))
  return {
    id: p.id,
    gen: p.gen,
    length,
    stored: [d.selfId, ...downStored],
    failed: p.pipeline.map(h => h.id).filter(id => !downStored.includes(id)),
  }
}

/** The express handler; errors reach the app's error middleware. */
export function patchHandler (d: PatchDeps, drain: (req: IncomingMessage) => Promise<void>) {
  return async (req: Request, res: Response): Promise<void> => {
    try {
      const id = parseBlockNumber(req.params.id)
      const gen = parseBlockNumber(req.query.gen, 'generation stamp')
      const newLength = parseBlockNumber(req.query.length, 'block length')
      if (newLength > MAX_BLOCK_BYTES) throw HissError.from('TOO_LARGE', `block over ${MAX_BLOCK_BYTES} bytes`)
      const token = req.get(HEADER_TOKEN)
      const claims = verifyBlockToken(d.secret, token, { b: id, g: gen, a: 'w' }, d.clock.wallNow())
      const from = claims.f
      if (!Array.isArray(from) || from.length === 0 || !from.every(g => Number.isSafeInteger(g) && g >= 0)) {
        throw new HissError('BAD_TOKEN', 'block access token refused: not an update token')
      }
      const pipeline = parsePipeline(req.get(HEADER_PIPELINE), req.get(HEADER_PIPELINE_IDS), d.selfId)
      const ranges = parseRanges(req.get(HEADER_PATCH_RANGES), newLength)
      const cl = req.get('content-length')
      if (cl === undefined || parseBlockNumber(cl, 'content length') !== rangesBytes(ranges)) {
        throw HissError.BAD_REQUEST('a patch needs a Content-Length equal to the sum of its ranges')
      }
      if (!d.limiter.tryAcquire()) throw HissError.EAGAIN('dataserver busy: too many block streams')
      try {
        res.json(await receivePatch(d, { id, gen, from, newLength, ranges, token: token!, body: req as IncomingMessage, pipeline }))
      } finally {
        d.limiter.release()
      }
    } catch (err) {
      await drain(req as IncomingMessage)
      throw err
    }
  }
}
