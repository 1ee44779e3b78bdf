// Minimal JSON-over-HTTP client on node:http with a keep-alive agent: the NameServer
// load generator and the harness's HissDFS checks speak the wire protocol directly
// (src/common/protocol.ts), so they measure the NameServer, not a client library.
import { Agent, request } from 'node:http'

export interface JsonReply { status: number, body: unknown }

export class JsonHttp {
  private readonly agent: Agent
  private readonly host: string
  private readonly port: number

  constructor (address: string, maxSockets: number, private readonly headers: Record<string, string> = {}) {
    const i = address.lastIndexOf(':')
    this.host = address.slice(0, i)
    this.port = Number(address.slice(i + 1))
    this.agent = new Agent({ keepAlive: true, maxSockets })
  }

  async call (method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 30000): Promise<JsonReply> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
    return await new Promise<JsonReply>((resolve, reject) => {
      const req = request({
        host: this.host,
        port: this.port,
        method,
        path,
        agent: this.agent,
        timeout: timeoutMs,
        headers: {
          ...this.headers,
          ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(payload.length) }),
        },
      }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', reject)
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let parsed: unknown = text
          try { parsed = text === '' ? undefined : JSON.parse(text) } catch { /* keep text */ }
          resolve({ status: res.statusCode ?? 0, body: parsed })
        })
      })
      req.on('timeout', () => { req.destroy(new Error(`${method} ${path}: timed out after ${timeoutMs} ms`)) })
      req.on('error', reject)
      req.end(payload)
    })
  }

  /** Call and throw unless 2xx; returns the parsed body. */
  async ok (method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    const r = await this.call(method, path, body)
    if (r.status < 200 || r.status > 299) throw new Error(`${method} ${path.split('?')[0] ?? path}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`)
    return r.body
  }

  close (): void { this.agent.destroy() }
}

/** Root identity headers (the benchmark runs as root; uid 0 is the superuser). */
export const ROOT_IDENTITY = { 'x-hiss-uid': '0', 'x-hiss-gids': '0' }
