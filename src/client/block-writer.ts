// One PUT of one block into a DataServer pipeline: the bytes go to targets[0], which
// forwards them to the rest (HEADER_PIPELINE); the reply says which DataServers hold the
// block durably. Bodies are streamed (got pipes a Readable with backpressure).
import type { Readable } from 'node:stream'
import { HissError } from '../common/errors.js'
import {
  HEADER_BLOCK_LENGTH, HEADER_PIPELINE, HEADER_PIPELINE_IDS, HEADER_TOKEN,
  type AddBlockReply, type WriteBlockReply,
} from '../common/protocol.js'
import { errorFromResponse, toHissError } from './http-errors.js'
import type { HttpClient } from './http.js'

/**
 * Send `body` as block `alloc.block` to the pipeline `alloc.targets`. Resolves with the
 * first DataServer's reply; rejects with a HissError (connection trouble on the first
 * DataServer, or its error reply).
 */
export async function sendBlock (http: HttpClient, alloc: AddBlockReply, body: Readable | Buffer, length?: number): Promise<WriteBlockReply> {
  const [first, ...rest] = alloc.targets
  if (first === undefined) throw HissError.from('NO_DATASERVERS', 'the NameServer offered no target for the block')
  const headers: Record<string, string> = {
    [HEADER_TOKEN]: alloc.token,
    'content-type': 'application/octet-stream',
  }
  if (rest.length > 0) {
    headers[HEADER_PIPELINE] = rest.map(t => t.address).join(',')
    headers[HEADER_PIPELINE_IDS] = rest.map(t => t.id).join(',')
  }
  if (length !== undefined) {
    headers[HEADER_BLOCK_LENGTH] = String(length)
    if (!Buffer.isBuffer(body)) headers['content-length'] = String(length)
  }
  const url = http.url(first.address, `/v1/blocks/${alloc.block.id}`, { gen: alloc.block.gen })
  let res
  try {
    res = await http.got.put(url, { body, headers, responseType: 'text', timeout: http.streamTimeouts() })
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
    throw HissError.EIO(`malformed reply to a block write from ${first.address}`)
  }
  if (reply.id !== alloc.block.id || reply.gen !== alloc.block.gen || !Array.isArray(reply.stored)) {
    throw HissError.EIO(`DataServer ${first.address} acknowledged another block`)
  }
  if (length !== undefined && reply.length !== length) {
    throw HissError.EIO(`DataServer ${first.address} stored ${reply.length} bytes of ${length}`)
  }
  return reply
}
