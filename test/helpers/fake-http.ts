// Scripted stand-in servers on real sockets for the client library's unit tests: every
// request is recorded (method, path, query, headers, body) and answered by the test's
// handler; JSON and HissError replies as the real servers write them.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { HissError } from '../../src/common/errors.js'

export interface Teardown { teardown (fn: () => unknown): void }
export interface FakeRequest { method: string, path: string, query: URLSearchParams, headers: http.IncomingHttpHeaders, body: Buffer }
export type FakeHandler = (req: FakeRequest, res: http.ServerResponse) => void | Promise<void>

/** A server whose every request is recorded and answered by `handler` (a throw cuts the reply). */
export async function fakeServer (t: Teardown, handler: FakeHandler): Promise<{ address: string, requests: FakeRequest[], close: () => Promise<void> }> {
  const requests: FakeRequest[] = []
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = []
    req.on('data', (c: Buffer) => parts.push(c))
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://x')
      const r: FakeRequest = { method: req.method ?? '', path: u.pathname, query: u.searchParams, headers: req.headers, body: Buffer.concat(parts) }
      requests.push(r)
      Promise.resolve(handler(r, res)).catch(err => { res.destroy(err as Error) })
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const close = async (): Promise<void> => {
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => resolve()))
  }
  t.teardown(close)
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, requests, close }
}

export function json (res: http.ServerResponse, status: number, body: unknown): void {
  const s = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) })
  res.end(s)
}

/** The reply a real server sends for a HissError with this code. */
export function fail (res: http.ServerResponse, code: ConstructorParameters<typeof HissError>[0]): void {
  const e = new HissError(code)
  json(res, e.http, e.toJSON())
}
