// Transport only: the block data API. Parses and checks every input (block numbers,
// token, pipeline, range) before any file is touched, then hands over to the store.
import type { IncomingMessage } from 'node:http'
import express, { type Request, type Response } from 'express'
import { verifyBlockToken } from '../common/auth.js'
import type { Clock } from '../common/clock.js'
import { HissError } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import { parseBlockNumber } from '../common/paths.js'
import { HEADER_BLOCK_LENGTH, HEADER_PIPELINE, HEADER_PIPELINE_IDS, HEADER_TOKEN, HEADER_ZERO_LENGTH, type WriteBlockReply } from '../common/protocol.js'
import type { BlockStore, ReadHandle } from './block-store.js'
import type { IncomingBlock } from './block-receiver.js'
import { parsePipeline } from './pipeline.js'
import { sendPool } from './replica-reader.js'
import { patchHandler, type PatchDeps } from './patch-receiver.js'
import type { StreamLimiter } from './stream-limiter.js'

export interface BlockRoutesDeps {
  selfId: string
  secret: string
  clock: Clock
  store: BlockStore
  limiter: StreamLimiter
  receive: (b: IncomingBlock) => Promise<WriteBlockReply>
  /** Block patches (POST /v1/blocks/:id/patch); absent: not served. */
  patch?: PatchDeps
  log: Logger
}

export function blockRoutes (d: BlockRoutesDeps): express.Router {
  const r = express.Router()

  r.get('/v1/ping', (_req, res) => { res.json({ ok: true, id: d.selfId }) })

  r.put('/v1/blocks/:id', async (req: Request, res: Response) => {
    try {
      const id = parseBlockNumber(req.params.id)
      const gen = parseBlockNumber(req.query.gen, 'generation stamp')
      const token = req.get(HEADER_TOKEN)
      verifyBlockToken(d.secret, token, { b: id, g: gen, a: 'w' }, d.clock.wallNow())
      const pipeline = parsePipeline(req.get(HEADER_PIPELINE), req.get(HEADER_PIPELINE_IDS), d.selfId)
      const zeroLength = announcedZeros(req)
      const expectedLength = zeroLength === undefined ? announcedLength(req) : undefined
      if (!d.limiter.tryAcquire()) throw HissError.EAGAIN('dataserver busy: too many block streams')
      try {
        res.json(await d.receive({ id, gen, token: token!, body: req as IncomingMessage, pipeline, expectedLength, zeroLength }))
      } finally {
        d.limiter.release()
      }
    } catch (err) {
      // Read and discard what the client is still sending before answering: it then
      // gets our error reply (not a reset), and the connection ends the exchange in a
      // clean state (an answer before the body's end leaves Node's connection never idle).
      await drain(req as IncomingMessage)
      throw err
    }
  })

  if (d.patch !== undefined) r.post('/v1/blocks/:id/patch', patchHandler(d.patch, drain))

  r.get('/v1/blocks/:id', async (req: Request, res: Response) => {
    const id = parseBlockNumber(req.params.id)
    const gen = parseBlockNumber(req.query.gen, 'generation stamp')
    verifyBlockToken(d.secret, req.get(HEADER_TOKEN), { b: id, g: gen, a: 'r' }, d.clock.wallNow())
    const offset = req.query.offset === undefined ? undefined : parseBlockNumber(req.query.offset, 'offset')
    const length = req.query.length === undefined ? undefined : parseBlockNumber(req.query.length, 'length')
    if (!d.limiter.tryAcquire()) throw HissError.EAGAIN('dataserver busy: too many block streams')
    try {
      await sendVerified(res, d.store.openRead(id, gen, offset, length, { pool: sendPool }), d.log)
    } finally {
      d.limiter.release()
    }
  })

  return r
}

/** HEADER_ZERO_LENGTH: a block of zeros, with an empty body and no HEADER_BLOCK_LENGTH. */
function announcedZeros (req: Request): number | undefined {
  const z = req.get(HEADER_ZERO_LENGTH)
  if (z === undefined) return undefined
  const n = parseBlockNumber(z, 'zero block length')
  if (req.get(HEADER_BLOCK_LENGTH) !== undefined) throw HissError.BAD_REQUEST(`${HEADER_ZERO_LENGTH} and ${HEADER_BLOCK_LENGTH} together`)
  const cl = req.get('content-length')
  if (req.get('transfer-encoding') !== undefined || (cl !== undefined && cl !== '0')) throw HissError.BAD_REQUEST('a block of zeros has no body')
  return n
}

/** HEADER_BLOCK_LENGTH and Content-Length, when present, must agree. */
function announcedLength (req: Request): number | undefined {
  const h = req.get(HEADER_BLOCK_LENGTH)
  const cl = req.get('content-length')
  const a = h === undefined ? undefined : parseBlockNumber(h, 'block length')
  const b = cl === undefined ? undefined : parseBlockNumber(cl, 'content length')
  if (a !== undefined && b !== undefined && a !== b) throw HissError.BAD_REQUEST(`${HEADER_BLOCK_LENGTH} ${a} differs from Content-Length ${b}`)
  return a ?? b
}

/**
 * Stream a verified range. The first batch is verified before the status line goes
 * out, so a replica that is bad from the start gets a proper error reply; a mismatch
 * later cuts the connection after the verified bytes (fewer than Content-Length).
 */
async function sendVerified (res: Response, h: ReadHandle, log: Logger): Promise<void> {
  const it = h.chunks
  try {
    let next = await it.next()
    res.status(200).set({
      'content-type': 'application/octet-stream',
      'content-length': String(h.length),
      [HEADER_BLOCK_LENGTH]: String(h.replicaLength),
      'cache-control': 'no-store',
    })
    res.flushHeaders()
    while (next.done !== true) {
      // The batch buffer is reused once the socket is done with it (the callback).
      const chunk = next.value
      if (!res.write(chunk, () => { sendPool.give(chunk) })) await drainOrClose(res)
      if (res.destroyed || res.writableEnded) return
      try {
        next = await it.next()
      } catch (err) {
        log.info('read stopped', { err: err as Error })
        res.destroy()
        return
      }
    }
    res.end()
  } finally {
    await it.return(undefined)
  }
}

function drain (req: IncomingMessage): Promise<void> {
  if (req.complete || req.destroyed) return Promise.resolve()
  return new Promise(resolve => {
    const done = (): void => { req.off('end', done); req.off('close', done); req.off('error', done); resolve() }
    req.on('end', done)
    req.on('close', done)
    req.on('error', done)
    req.resume()
  })
}

function drainOrClose (res: Response): Promise<void> {
  return new Promise(resolve => {
    const done = (): void => { res.off('drain', done); res.off('close', done); resolve() }
    res.on('drain', done)
    res.on('close', done)
  })
}
