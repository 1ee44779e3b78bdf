// Outgoing HTTP(S) for a DataServer (to the NameServer and to other DataServers).
// When the cluster runs TLS every outgoing call uses https, verified against
// `tls.ca` when given (else the system roots). Keep-alive agents, owned per server.
import http from 'node:http'
import https from 'node:https'
import { splitHostPort } from '../common/config.js'

export interface TransportOptions {
  tls: boolean
  /** PEM of the CA that signed the cluster's certificates. */
  ca?: Buffer | undefined
}

export interface OutgoingRequest {
  method: 'GET' | 'PUT' | 'POST'
  path: string
  headers?: http.OutgoingHttpHeaders
  /** Socket idle timeout: the request fails if no byte moves for this long. */
  idleTimeoutMs: number
}

export class Transport {
  private readonly tls: boolean
  private readonly ca: Buffer | undefined
  private readonly agent: http.Agent

  constructor (opts: TransportOptions) {
    this.tls = opts.tls
    this.ca = opts.ca
    this.agent = opts.tls
      ? new https.Agent({ keepAlive: true, maxSockets: 128, ...(opts.ca === undefined ? {} : { ca: opts.ca }) })
      : new http.Agent({ keepAlive: true, maxSockets: 128 })
  }

  get scheme (): 'http' | 'https' { return this.tls ? 'https' : 'http' }

  request (address: string, r: OutgoingRequest): http.ClientRequest {
    const { host, port } = splitHostPort(address)
    const opts: https.RequestOptions = { host, port, method: r.method, path: r.path, headers: r.headers ?? {}, agent: this.agent }
    if (this.tls && this.ca !== undefined) opts.ca = this.ca
    const req = this.tls ? https.request(opts) : http.request(opts)
    req.setTimeout(r.idleTimeoutMs, () => {
      req.destroy(Object.assign(new Error(`no response from ${address} within ${r.idleTimeoutMs} ms`), { code: 'ETIMEDOUT' }))
    })
    return req
  }

  close (): void { this.agent.destroy() }
}
