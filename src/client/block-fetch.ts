// One ranged block read over a plain TCP socket into a reused receive buffer, for
// callers that copy the bytes out at once (the mount's block cache).
//
// Node's HTTP client allocates two fresh ArrayBuffers per 64 KiB socket read (the read
// buffer and the parser's copy of the body). Freed memory goes back to the OS, so every
// one of those pages faults again, and the churn keeps the GC busy: in the mount that
// was most of its CPU on a sequential read (~66k page faults per 256 MiB, 90% of them
// there). Here the kernel reads into a buffer this module keeps (net's `onread`), and
// the body is handed to the sink as a view of it, valid only during the call.
//
// The request is the same GET /v1/blocks/:id the stream reader sends; the reply is read
// as HTTP/1.1: status line, headers, then exactly Content-Length bytes (a DataServer
// cuts the connection after the verified bytes when a chunk fails its checksum, which
// shows here as a short body). Anything unusual (no Content-Length, chunked encoding,
// a header block over 64 KiB) is an error; callers fall back to the stream reader,
// which also does failover, token refresh and bad-replica reports.
import net from 'node:net'
import { HissError } from '../common/errors.js'
import { errorFromResponse, toHissError } from './http-errors.js'

/** Receive buffer per request, reused across requests. */
export const FETCH_BUFFER_BYTES = 256 * 1024
const MAX_HEADER_BYTES = 64 * 1024
const MAX_ERROR_BODY = 64 * 1024
/** After a complete reply, how long the server gets to close the connection. */
const CLOSE_GRACE_MS = 2000
const FREE_BUFFERS = 8
const free: Buffer[] = []

export interface RangeFetch {
  /** host:port of the DataServer. */
  address: string
  /** Path and query, e.g. /v1/blocks/7?gen=1&offset=0&length=4096. */
  path: string
  headers: Record<string, string>
  /** Body bytes expected (the range length). */
  length: number
  /** No byte for this long: ETIMEDOUT. */
  timeoutMs: number
}

function splitAddress (address: string): { host: string, port: number } {
  const i = address.lastIndexOf(':')
  let host = address.slice(0, i)
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1)
  return { host, port: Number(address.slice(i + 1)) }
}

/**
 * GET `f.path` from `f.address`; each piece of the body goes to `sink` (a view of a
 * reused buffer: copy what you keep before returning). Resolves once all `f.length`
 * bytes were delivered; rejects with a HissError otherwise (how many bytes the sink got
 * is the caller's to count). `sink` may throw to abort the request.
 */
export function fetchRange (f: RangeFetch, sink: (bytes: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const { host, port } = splitAddress(f.address)
    const buffer = free.pop() ?? Buffer.allocUnsafe(FETCH_BUFFER_BYTES)
    let head: Buffer | undefined
    let status = 0
    let left = -1
    let errorBody: Buffer[] | undefined
    let errorBytes = 0
    let settled = false
    const finish = (err?: HissError): void => {
      if (settled) return
      settled = true
      if (err === undefined) {
        // Complete: the server closes (we asked for connection: close). Letting it close
        // first keeps TIME_WAIT on its side, not on our ephemeral ports.
        socket.setTimeout(CLOSE_GRACE_MS, () => { socket.destroy() })
        resolve()
      } else {
        socket.destroy()
        reject(err)
      }
    }
    const onBody = (bytes: Buffer): void => {
      if (status === 200) {
        const n = Math.min(bytes.length, left)
        if (n > 0) sink(n === bytes.length ? bytes : bytes.subarray(0, n))
        left -= n
        if (left === 0) finish()
        return
      }
      if (errorBytes < MAX_ERROR_BODY) { errorBody!.push(Buffer.from(bytes)); errorBytes += bytes.length }
      left -= bytes.length
      if (left <= 0) finish(errorFromResponse(status, Buffer.concat(errorBody!)))
    }
    const onHead = (text: string): void => {
      const lines = text.split('\r\n')
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')
      if (m === null) throw HissError.EIO(`bad status line from ${f.address}`)
      status = Number(m[1])
      let length: number | undefined
      for (const line of lines.slice(1)) {
        const c = line.indexOf(':')
        if (c < 0) continue
        const name = line.slice(0, c).trim().toLowerCase()
        const value = line.slice(c + 1).trim()
        if (name === 'content-length') length = Number(value)
        else if (name === 'transfer-encoding' && value.toLowerCase() !== 'identity') throw HissError.EIO(`unexpected transfer-encoding ${value} from ${f.address}`)
      }
      if (length === undefined || !Number.isSafeInteger(length) || length < 0) throw HissError.EIO(`no content-length from ${f.address}`)
      if (status === 200 && length !== f.length) throw HissError.EIO(`${f.address} answered ${length} bytes, asked for ${f.length}`)
      left = length
      if (status !== 200) errorBody = []
      if (left === 0) {
        if (status === 200) finish()
        else finish(errorFromResponse(status, ''))
      }
    }
    const onRead = (n: number, buf: Buffer): boolean => {
      if (settled) return true
      try {
        let bytes = buf.subarray(0, n)
        if (left < 0) {
          head = head === undefined ? Buffer.from(bytes) : Buffer.concat([head, bytes])
          const end = head.indexOf('\r\n\r\n')
          if (end < 0) {
            if (head.length > MAX_HEADER_BYTES) throw HissError.EIO(`header block too large from ${f.address}`)
            return true
          }
          onHead(head.toString('latin1', 0, end))
          bytes = head.subarray(end + 4)
          head = undefined
        }
        if (!settled && bytes.length > 0) onBody(bytes)
      } catch (err) {
        finish(toHissError(err, f.address))
      }
      return true
    }
    const socket = net.connect({ host, port, onread: { buffer, callback: onRead } })
    socket.setNoDelay(true)
    socket.setTimeout(f.timeoutMs, () => { finish(HissError.ETIMEDOUT(`no answer in time (${f.address})`)) })
    socket.on('error', err => { finish(toHissError(err, f.address)) })
    socket.on('close', () => {
      // Only a closed socket no longer reads into the buffer.
      if (free.length < FREE_BUFFERS) free.push(buffer)
      if (left < 0) finish(HissError.from('EAGAIN', `connection closed before a reply (${f.address})`))
      else finish(HissError.EIO(`replica on ${f.address} ended ${left} bytes short`))
    })
    socket.on('end', () => { socket.destroy() })
    let req = `GET ${f.path} HTTP/1.1\r\nhost: ${f.address}\r\nconnection: close\r\n`
    for (const [k, v] of Object.entries(f.headers)) req += `${k}: ${v}\r\n`
    socket.write(req + '\r\n')
  })
}
