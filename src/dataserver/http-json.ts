// One JSON call over a Transport, with HissError rehydration: the DataServer's only
// way of talking to the NameServer (and of reading a downstream's WriteBlockReply).
import type http from 'node:http'
import { HissError, fromNodeError } from '../common/errors.js'
import type { Transport } from './transport.js'

/** Replies we read are small (WriteBlockReply, HeartbeatReply with commands). */
const MAX_REPLY_BYTES = 8 * 1024 * 1024

export interface JsonCall {
  method: 'GET' | 'POST'
  path: string
  body?: unknown
  headers?: http.OutgoingHttpHeaders
  timeoutMs: number
}

export function callJson<T> (t: Transport, address: string, c: JsonCall): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const payload = c.body === undefined ? undefined : Buffer.from(JSON.stringify(c.body))
    const headers: http.OutgoingHttpHeaders = { accept: 'application/json', ...c.headers }
    if (payload !== undefined) { headers['content-type'] = 'application/json'; headers['content-length'] = payload.length }
    const req = t.request(address, { method: c.method, path: c.path, headers, idleTimeoutMs: c.timeoutMs })
    req.on('error', err => { reject(fromNodeError(err, `${c.method} ${address}${c.path}`)) })
    req.on('response', res => { readJsonReply<T>(res).then(resolve, reject) })
    req.end(payload)
  })
}

/** Parse a reply body: 2xx -> the JSON value, otherwise the HissError it carries. */
export async function readJsonReply<T> (res: http.IncomingMessage): Promise<T> {
  const parts: Buffer[] = []
  let size = 0
  for await (const piece of res as AsyncIterable<Buffer>) {
    size += piece.length
    if (size > MAX_REPLY_BYTES) { res.destroy(); throw HissError.EIO('reply too large') }
    parts.push(piece)
  }
  const status = res.statusCode ?? 0
  let body: unknown
  try {
    body = parts.length === 0 ? undefined : JSON.parse(Buffer.concat(parts).toString('utf8'))
  } catch {
    body = undefined
  }
  if (status >= 200 && status < 300) {
    if (body === undefined) throw HissError.EIO(`reply is not JSON (HTTP ${status})`)
    return body as T
  }
  throw HissError.fromBody(body, status)
}
