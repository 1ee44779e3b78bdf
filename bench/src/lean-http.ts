// A lean HTTP/1.1 keep-alive JSON client for the NameServer load generators (ns-load,
// ns-fill): a fixed pool of connections, one request in flight on each, every request one
// pre-serialised write, replies parsed just far enough (status line, Content-Length,
// body). Why not node:http (JsonHttp): its client costs ~100-160 us of CPU per request,
// as much as the NameServer's own work per stat, and the generator shares this machine's
// two cores with the server, so the figure measured Node's HTTP client as much as the
// NameServer. This one costs a fraction of that. Replies are still checked: a non-2xx
// status, a reply that is not JSON or one framed in a way it does not read (chunked) is
// an error, never a count.
import { connect, type Socket } from 'node:net'
import type { JsonReply } from './http-json.js'

const HEADER_END = Buffer.from('\r\n\r\n')
const MAX_HEADER_BYTES = 64 * 1024
/**
 * A connection idle longer than this is not reused but replaced, unless the server's
 * `Keep-Alive: timeout=N` said how long it keeps one (then N - 1 s, as node:http's Agent
 * does). The server closes an idle connection after its keep-alive timeout (5 s in
 * node:http); a request written just then, or while this process was too busy to see the
 * close, would find the connection gone ("connection closed before the reply").
 */
export const STALE_IDLE_MS = 4000

interface Pending { resolve: (r: JsonReply) => void, reject: (e: Error) => void, what: string }

/** Status and body length of a reply head, or an error for framing we do not read. */
export function parseHead (head: string): { status: number, length: number } {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(head)
  if (m === null) throw new Error(`not an HTTP reply: ${JSON.stringify(head.slice(0, 80))}`)
  const status = Number(m[1])
  if (/\r\ntransfer-encoding:/i.test(head)) throw new Error('chunked reply: the lean client reads Content-Length replies only')
  const cl = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head)
  if (cl === null) throw new Error(`reply without Content-Length (HTTP ${status})`)
  return { status, length: Number(cl[1]) }
}

/** One keep-alive connection, one request at a time; reconnects when the server closed it. */
class LeanConnection {
  private sock: Socket | undefined
  private chunks: Buffer[] = []
  private bytes = 0
  private head: { status: number, length: number, bodyStart: number } | undefined
  private pending: Pending | undefined
  /** When the last reply on this connection was complete (Date.now()). */
  private idleSince = 0
  /** How long this connection may stay idle and still be reused (see STALE_IDLE_MS). */
  private reuseMs: number

  constructor (private readonly host: string, private readonly port: number, private readonly staleMs: number) {
    this.reuseMs = staleMs
  }

  request (raw: Buffer, what: string, timeoutMs: number): Promise<JsonReply> {
    if (this.pending !== undefined) return Promise.reject(new Error('lean-http: request while another is in flight'))
    if (this.sock !== undefined && Date.now() - this.idleSince > this.reuseMs) {
      // Its 'close' (if the server already sent one) finds another socket here and is ignored.
      const stale = this.sock
      this.sock = undefined
      stale.destroy()
    }
    return new Promise<JsonReply>((resolve, reject) => {
      this.pending = { resolve, reject, what }
      const s = this.sock ?? this.open()
      s.setTimeout(timeoutMs)
      s.write(raw)
    })
  }

  private open (): Socket {
    const s = connect({ host: this.host, port: this.port, noDelay: true })
    this.sock = s
    s.on('data', (c: Buffer) => { this.onData(c) })
    s.on('timeout', () => { this.fail(s, new Error('timed out waiting for the reply')) })
    s.on('error', (err) => { this.fail(s, err) })
    s.on('close', () => { this.fail(s, new Error('connection closed before the reply')) })
    return s
  }

  /** Drop connection `s` (if it is still this one's) and fail the request in flight on it. */
  private fail (s: Socket, err: Error): void {
    s.destroy()
    if (this.sock !== s) return
    this.sock = undefined
    this.chunks = []
    this.bytes = 0
    this.head = undefined
    const p = this.pending
    this.pending = undefined
    p?.reject(new Error(`${p.what}: ${err.message}`))
  }

  private onData (c: Buffer): void {
    this.chunks.push(c)
    this.bytes += c.length
    if (this.head === undefined) {
      // Joined only until the head is complete (at most MAX_HEADER_BYTES); the body's
      // pieces are joined once, when the last one came: joining every piece on arrival
      // copied a large reply (a listing of 200,000 names: 45 MB) quadratically.
      const start = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.bytes)
      this.chunks = [start]
      const end = start.indexOf(HEADER_END)
      if (end < 0) {
        if (this.bytes > MAX_HEADER_BYTES) this.fail(this.sock!, new Error('reply head too large'))
        return
      }
      try {
        const headText = start.toString('latin1', 0, end)
        this.head = { ...parseHead(headText), bodyStart: end + 4 }
        const hint = /\r\nkeep-alive:[ \t]*timeout=(\d+)/i.exec(headText)
        this.reuseMs = hint === null ? this.staleMs : Math.max(0, Math.min(this.staleMs, Number(hint[1]) * 1000 - 1000))
      } catch (err) {
        this.fail(this.sock!, err as Error)
        return
      }
    }
    const h = this.head
    if (this.bytes < h.bodyStart + h.length) return
    if (this.bytes > h.bodyStart + h.length) {
      this.fail(this.sock!, new Error('bytes after the reply (no request was pipelined)'))
      return
    }
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.bytes)
    const text = all.toString('utf8', h.bodyStart)
    this.chunks = []
    this.bytes = 0
    this.head = undefined
    this.idleSince = Date.now()
    const p = this.pending
    this.pending = undefined
    this.sock?.setTimeout(0)
    if (p === undefined) return
    let body: unknown = text
    try { body = text === '' ? undefined : JSON.parse(text) } catch { /* keep the text */ }
    p.resolve({ status: h.status, body })
  }

  close (): void { this.sock?.destroy() }
}

/** The JsonHttp interface (call/ok/close) over a pool of lean connections. */
export class LeanJsonHttp {
  private readonly free: LeanConnection[] = []
  private readonly waiting: Array<(c: LeanConnection) => void> = []
  private readonly all: LeanConnection[] = []
  private readonly fixedHeaders: string

  constructor (address: string, connections: number, headers: Record<string, string> = {}, private readonly timeoutMs = 30000, staleMs = STALE_IDLE_MS) {
    const i = address.lastIndexOf(':')
    const host = address.slice(0, i)
    const port = Number(address.slice(i + 1))
    for (let n = 0; n < Math.max(1, connections); n++) {
      const c = new LeanConnection(host, port, staleMs)
      this.all.push(c)
      this.free.push(c)
    }
    this.fixedHeaders = `Host: ${address}\r\n` + Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')
  }

  /** One request as the bytes that go on the wire. */
  private serialise (method: 'GET' | 'POST', path: string, body?: unknown): Buffer {
    if (body === undefined) return Buffer.from(`${method} ${path} HTTP/1.1\r\n${this.fixedHeaders}\r\n`, 'latin1')
    const payload = Buffer.from(JSON.stringify(body), 'utf8')
    const head = Buffer.from(`${method} ${path} HTTP/1.1\r\n${this.fixedHeaders}Content-Type: application/json\r\nContent-Length: ${payload.length}\r\n\r\n`, 'latin1')
    return Buffer.concat([head, payload], head.length + payload.length)
  }

  async call (method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = this.timeoutMs): Promise<JsonReply> {
    const raw = this.serialise(method, path, body)
    const c = this.free.pop() ?? await new Promise<LeanConnection>(resolve => { this.waiting.push(resolve) })
    try {
      return await c.request(raw, `${method} ${path.split('?')[0] ?? path}`, timeoutMs)
    } finally {
      const next = this.waiting.shift()
      if (next !== undefined) next(c)
      else this.free.push(c)
    }
  }

  /** Call and throw unless 2xx; returns the parsed body. */
  async ok (method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    const r = await this.call(method, path, body)
    if (r.status < 200 || r.status > 299) throw new Error(`${method} ${path.split('?')[0] ?? path}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`)
    return r.body
  }

  close (): void { for (const c of this.all) c.close() }
}
