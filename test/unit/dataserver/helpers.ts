// Shared helpers for the DataServer tests: config, tokens, raw HTTP (so tests see
// exactly what is on the wire, including responses cut short), and polling.
import http from 'node:http'
import net from 'node:net'
import { signBlockToken, type BlockAccess } from '../../../src/common/auth.js'
import type { Clock } from '../../../src/common/clock.js'
import { parseConfig, type HissConfig, type HissConfigInput } from '../../../src/common/config.js'
import { silentLogger } from '../../../src/common/log.js'
import { DataServer } from '../../../src/dataserver/dataserver.js'

export const TEST_SECRET = 'test-secret-0123456789abcdef'

export function dsConfig (root: string, nameserver: string, extra: Partial<HissConfigInput> = {}): HissConfig {
  return parseConfig({
    'nameserver.address': nameserver,
    'dataserver.root.dir': root,
    'dataserver.address': '127.0.0.1:0',
    'cluster.secret': TEST_SECRET,
    'security.insecure': false,
    'checksum.chunk.bytes': 512,
    'client.timeout.ms': 5000,
    ...extra,
  })
}

/** An address where nothing listens (bound, then released). */
export async function deadAddress (): Promise<string> {
  const srv = net.createServer()
  await new Promise<void>(resolve => srv.listen(0, '127.0.0.1', resolve))
  const port = (srv.address() as net.AddressInfo).port
  await new Promise<void>(resolve => srv.close(() => resolve()))
  return `127.0.0.1:${port}`
}

export function token (id: number, gen: number, a: BlockAccess, opts: { secret?: string, expires?: number } = {}): string {
  return signBlockToken(opts.secret ?? TEST_SECRET, { b: id, g: gen, a, e: opts.expires ?? Date.now() + 600000 })
}

export interface RawReply {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
  /** False when the connection was cut before the announced length arrived. */
  complete: boolean
}

export function request (address: string, o: { method: string, path: string, headers?: http.OutgoingHttpHeaders, body?: Buffer | undefined }): Promise<RawReply> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))]
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method: o.method, path: o.path, headers: o.headers, agent: false }, res => {
      const parts: Buffer[] = []
      res.on('data', (c: Buffer) => parts.push(c))
      const finish = (): void => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts), complete: res.complete })
      res.on('end', finish)
      res.on('error', finish)
      res.on('aborted', () => {})
    })
    req.on('error', reject)
    req.setTimeout(10000, () => req.destroy(new Error('test request timed out')))
    req.end(o.body)
  })
}

export function putBlock (address: string, id: number | string, gen: number, body: Buffer, headers: http.OutgoingHttpHeaders = {}): Promise<RawReply> {
  return request(address, { method: 'PUT', path: `/v1/blocks/${id}?gen=${gen}`, headers: { 'x-hiss-token': token(Number(id), gen, 'w'), ...headers }, body })
}

export function getBlock (address: string, id: number | string, gen: number, q = '', headers: http.OutgoingHttpHeaders = {}): Promise<RawReply> {
  return request(address, { method: 'GET', path: `/v1/blocks/${id}?gen=${gen}${q}`, headers: { 'x-hiss-token': token(Number(id), gen, 'r'), ...headers } })
}

export function errorCode (r: RawReply): string | undefined {
  try { return (JSON.parse(r.body.toString()) as { error?: { code?: string } }).error?.code } catch { return undefined }
}

export async function waitFor (pred: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs
  for (;;) {
    if (await pred()) return
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

/** Deterministic test bytes. */
export function bytes (n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n)
  let x = seed * 2654435761 >>> 0
  for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) >>> 0; b[i] = x >>> 24 }
  return b
}

/** The part of a tap test the helpers need. */
export interface Teardown { teardown (fn: () => unknown): void }

/** Start a DataServer on 127.0.0.1:0 that is closed (without unregistering) at teardown. */
export async function startDataServer (t: Teardown, root: string, nameserver: string, extra: Partial<HissConfigInput> = {}, clock?: Clock): Promise<{ ds: DataServer, addr: string }> {
  const ds = new DataServer(dsConfig(root, nameserver, extra), { log: silentLogger, ...(clock === undefined ? {} : { clock }) })
  t.teardown(() => ds.close({ unregister: false }))
  const addr = await ds.start()
  return { ds, addr }
}
