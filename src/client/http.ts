// The one got instance of a client: keep-alive agents, TLS, no hidden retries, and
// JSON requests that fail only with HissError. Data streams (block reads and writes)
// also go through `got` here, with connect/response timeouts instead of a total.
import http from 'node:http'
import https from 'node:https'
import { readFileSync } from 'node:fs'
import got, { type Got } from 'got'
import { HissError } from '../common/errors.js'
import type { HissConfig } from '../common/config.js'
import { errorFromResponse, toHissError } from './http-errors.js'

export type Query = Record<string, string | number | boolean | undefined>

export interface JsonRequest {
  headers?: Record<string, string>
  body?: unknown
}

export class HttpClient {
  readonly got: Got
  readonly scheme: 'http' | 'https'
  /** Per-request total for metadata calls; connect/response limit for streams. */
  readonly timeoutMs: number
  private readonly httpAgent: http.Agent
  private readonly httpsAgent: https.Agent

  constructor (cfg: HissConfig) {
    this.timeoutMs = cfg['client.timeout.ms']
    let ca: Buffer | undefined
    const caFile = cfg['tls.ca']
    if (caFile !== undefined) {
      try {
        ca = readFileSync(caFile)
      } catch (err) {
        throw new HissError('CONFIG', `cannot read tls.ca ${caFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
      }
    }
    // Servers speak https when they have a certificate; a client config names either the
    // CA to verify them with or (sharing the servers' file) the certificate itself.
    this.scheme = caFile !== undefined || cfg['tls.cert'] !== undefined ? 'https' : 'http'
    this.httpAgent = new http.Agent({ keepAlive: true })
    this.httpsAgent = new https.Agent({ keepAlive: true, ...(ca === undefined ? {} : { ca }) })
    this.got = got.extend({
      retry: { limit: 0 },
      agent: { http: this.httpAgent, https: this.httpsAgent },
      ...(ca === undefined ? {} : { https: { certificateAuthority: ca } }),
      throwHttpErrors: false,
      followRedirect: false,
      decompress: false,
    })
  }

  url (address: string, path: string, query?: Query): string {
    let q = ''
    if (query !== undefined) {
      const sp = new URLSearchParams()
      for (const [k, v] of Object.entries(query)) if (v !== undefined) sp.set(k, String(v))
      const s = sp.toString()
      if (s !== '') q = '?' + s
    }
    return `${this.scheme}://${address}${path}${q}`
  }

  /** Timeouts for data streams: bounded waits, but no limit on the whole transfer. */
  streamTimeouts (): { connect: number, secureConnect: number, response: number } {
    return { connect: this.timeoutMs, secureConnect: this.timeoutMs, response: this.timeoutMs }
  }

  /** One JSON request, one attempt. Non-2xx replies become the server's HissError. */
  async json<T> (method: 'GET' | 'POST', url: string, req: JsonRequest = {}): Promise<T> {
    let res
    // Our own timer rather than got's `timeout.request`, which arms a set of socket and
    // request listeners per call: ~80 us of client CPU on every metadata round trip.
    const call = this.got(url, {
      method,
      headers: req.headers,
      ...(req.body === undefined ? {} : { json: req.body }),
      responseType: 'text',
    })
    let timedOut = false
    const timer = setTimeout(() => { timedOut = true; call.cancel() }, this.timeoutMs)
    try {
      res = await call
    } catch (err) {
      if (timedOut) throw HissError.from('ETIMEDOUT', `no answer in time (${new URL(url).host})`)
      throw toHissError(err, new URL(url).host)
    } finally {
      clearTimeout(timer)
    }
    if (res.statusCode < 200 || res.statusCode >= 300) throw errorFromResponse(res.statusCode, res.body)
    try {
      return JSON.parse(res.body) as T
    } catch {
      throw HissError.EIO(`malformed JSON reply from ${new URL(url).host}`)
    }
  }

  close (): void {
    this.httpAgent.destroy()
    this.httpsAgent.destroy()
  }
}
