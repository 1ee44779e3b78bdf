// One PUT of one block into a DataServer pipeline: the bytes go to targets[0], which
// forwards them to the rest (HEADER_PIPELINE); the reply says which DataServers hold the
// block durably. Bodies are streamed (got pipes a Readable with backpressure).
import type { Readable } from 'node:stream'
import { HissError } from '../common/errors.js'
import {
  HEADER_BLOCK_LENGTH, HEADER_PIPELINE, HEADER_PIPELINE_IDS, HEADER_TOKEN, HEADER_ZERO_LENGTH,
  type AddBlockReply, type WriteBlockReply,
} from '../common/protocol.js'
import { errorFromResponse, toHissError } from './http-errors.js'
import type { HttpClient } from './http.js'

/**
 * Send `body` as block `alloc.block` to the pipeline `alloc.targets`. Resolves with the
 * first DataServer's reply; rejects with a HissError (connection trouble on the first
 * DataServer, or its error reply).
 */
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
  try {
    const req = http.got[method](url, { body, headers, responseType: 'text', timeout: http.streamTimeouts() })
    // got counts a body chunk as uploaded once the socket's write of it completed.
    if (onSent !== undefined) req.on('uploadProgress', (p: { transferred: number }) => { onSent(p.transferred) })
    res = await req
  } catch (err) {
    throw toHissError(err, first.address)
  } finally {
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
