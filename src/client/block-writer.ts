// One PUT of one block into a DataServer pipeline: the bytes go to targets[0], which
// forwards them to the rest (HEADER_PIPELINE); the reply says which DataServers hold the
// block durably. Bodies are streamed (got pipes a Readable with backpressure).
import type { ClientRequest } from 'node:http'
import type { Readable } from 'node:stream'
import type { Timer } from '../common/clock.js'
import { HissError } from '../common/errors.js'
import {
  HEADER_BLOCK_LENGTH, HEADER_PIPELINE, HEADER_PIPELINE_IDS, HEADER_TOKEN, HEADER_ZERO_LENGTH,
  type AddBlockReply, type WriteBlockReply,
} from '../common/protocol.js'
import { errorFromResponse, toHissError } from './http-errors.js'
import type { HttpClient } from './http.js'

/**
 * Fails an upload whose first DataServer stopped taking bytes: our socket holds bytes it
 * cannot hand to the kernel (the send buffer is full) and none went out for
 * client.timeout.ms. got's timeouts do not cover this (its `response` timeout starts
 * once the whole body is sent), and a DataServer that hangs without closing the
 * connection (SIGSTOP, a dead host behind a live route) held a write through the mount
 * forever. An upload that waits for its own source (a slow writer) has nothing queued
 * and is never timed out for that. The limit scales with the pipeline's length, as each
 * DataServer's wait for its own downstream does (pipeline.ts): a first DataServer whose
 * next hop hangs stops taking bytes until it gives that hop up, and must not be blamed
 * (excluded) for it before then.
 */
class UploadStallWatch {
  private req: ClientRequest | undefined
  private timer: Timer | undefined
  private lastProgress: number
  private stopped = false

  private readonly limitMs: number

  constructor (private readonly http: HttpClient, private readonly address: string, hops: number) {
    this.lastProgress = http.clock.now()
    this.limitMs = http.timeoutMs * Math.max(1, hops)
  }

  start (req: ClientRequest): void {
    if (this.stopped) return
    this.req = req
    this.lastProgress = this.http.clock.now()
    this.arm()
  }

  progress (): void { this.lastProgress = this.http.clock.now() }

  stop (): void {
    this.stopped = true
    this.http.clock.clearTimeout(this.timer)
    this.timer = undefined
  }

  private arm (): void {
    const step = Math.max(10, Math.min(1000, this.http.timeoutMs / 4))
    this.timer = this.http.clock.setTimeout(() => { this.check() }, step)
  }

  private check (): void {
    this.timer = undefined
    const req = this.req
    if (this.stopped || req === undefined || req.destroyed) return
    const queued = req.writableLength + (req.socket?.writableLength ?? 0)
    if (queued === 0) this.lastProgress = this.http.clock.now()
    else if (this.http.clock.now() - this.lastProgress >= this.limitMs) {
      req.destroy(Object.assign(new Error(`${this.address} took no data for ${this.limitMs} ms`), { code: 'ETIMEDOUT' }))
      return
    }
    this.arm()
  }
}

/** Where a pipeline write goes: the DataServers (head first) and the token for them. */
export interface PipelineTarget { targets: ReadonlyArray<{ address: string, id: string }>, token: string }

/**
 * Send `body` to the head of a DataServer pipeline (`method` + `path` on targets[0], the
 * rest named in HEADER_PIPELINE) and return its parsed reply, checked to be about `block`.
 * Shared by block writes and block patches: the transport, error mapping and reply
 * checks are one piece. `what` names the operation in errors.
 */
export async function sendToPipeline (
  http: HttpClient, method: 'put' | 'post', to: PipelineTarget, block: { id: number, gen: number },
  path: string, query: Record<string, number>, body: Readable | Buffer, extraHeaders: Record<string, string>, what: string,
  onSent?: (bytes: number) => void,
): Promise<WriteBlockReply> {
  const [first, ...rest] = to.targets
  if (first === undefined) throw HissError.from('NO_DATASERVERS', `the NameServer offered no DataServer for the ${what}`)
  const headers: Record<string, string> = {
    [HEADER_TOKEN]: to.token,
    'content-type': 'application/octet-stream',
    ...extraHeaders,
  }
  if (rest.length > 0) {
    headers[HEADER_PIPELINE] = rest.map(t => t.address).join(',')
    headers[HEADER_PIPELINE_IDS] = rest.map(t => t.id).join(',')
  }
  const url = http.url(first.address, path, { gen: block.gen, ...query })
  let res
  let stopWatch = (): void => {}
  try {
    const req = http.got[method](url, { body, headers, responseType: 'text', timeout: http.streamTimeouts() })
    const watch = new UploadStallWatch(http, first.address, to.targets.length)
    stopWatch = () => { watch.stop() }
    req.on('request', (r: ClientRequest) => { watch.start(r) })
    // got counts a body chunk as uploaded once the socket's write of it completed.
    req.on('uploadProgress', (p: { transferred: number }) => {
      watch.progress()
      onSent?.(p.transferred)
    })
    res = await req
  } catch (err) {
    throw toHissError(err, first.address)
  } finally {
    stopWatch()
    // An early error reply leaves our body half-read: release it.
    if (!Buffer.isBuffer(body) && !body.readableEnded) body.destroy()
  }
  if (res.statusCode < 200 || res.statusCode >= 300) throw errorFromResponse(res.statusCode, res.body)
  let reply: WriteBlockReply
  try {
    reply = JSON.parse(res.body) as WriteBlockReply
  } catch {
    throw HissError.EIO(`malformed reply to a ${what} from ${first.address}`)
  }
  if (reply.id !== block.id || reply.gen !== block.gen || !Array.isArray(reply.stored)) {
    throw HissError.EIO(`DataServer ${first.address} acknowledged another ${what}`)
  }
  return reply
}

/**
 * Send `body` as block `alloc.block` to the pipeline `alloc.targets`. Resolves with the
 * first DataServer's reply; rejects with a HissError (connection trouble on the first
 * DataServer, or its error reply).
 */
export async function sendBlock (http: HttpClient, alloc: AddBlockReply, body: Readable | Buffer, length?: number, onSent?: (bytes: number) => void): Promise<WriteBlockReply> {
  const extra: Record<string, string> = {}
  if (length !== undefined) {
    extra[HEADER_BLOCK_LENGTH] = String(length)
    if (!Buffer.isBuffer(body)) extra['content-length'] = String(length)
  }
  const reply = await sendToPipeline(http, 'put', alloc, alloc.block, `/v1/blocks/${alloc.block.id}`, {}, body, extra, 'block write', onSent)
  if (length !== undefined && reply.length !== length) {
    throw HissError.EIO(`DataServer ${alloc.targets[0]!.address} stored ${reply.length} bytes of ${length}`)
  }
  return reply
}

/** Store block `alloc.block` as `length` zero bytes (HEADER_ZERO_LENGTH): no body is sent. */
export async function sendZeroBlock (http: HttpClient, alloc: AddBlockReply, length: number): Promise<WriteBlockReply> {
  const reply = await sendToPipeline(http, 'put', alloc, alloc.block, `/v1/blocks/${alloc.block.id}`, {}, Buffer.alloc(0), { [HEADER_ZERO_LENGTH]: String(length) }, 'block write')
  if (reply.length !== length) throw HissError.EIO(`DataServer ${alloc.targets[0]!.address} stored ${reply.length} zero bytes of ${length}`)
  return reply
}
