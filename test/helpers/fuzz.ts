// Tools for the security tests that speak HTTP themselves: a seeded PRNG (every fuzz
// run is reproducible from its seed), raw HTTP requests that never throw on a status,
// raw socket exchanges for malformed framing, and generators of hostile values.
import http from 'node:http'
import net from 'node:net'
import { splitHostPort } from '../../src/common/config.js'
import { Rng } from './rng.js'

export { Rng }

/** The seed from `envVar` (decimal or 0x-hex), else a fresh one. */
export function seedFrom (envVar: string): number {
  const v = process.env[envVar]
  if (v !== undefined && v !== '') {
    const n = Number(v)
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`${envVar} must be an integer in [0, 2^32): ${v}`)
    return n
  }
  return Math.floor(Math.random() * 0xffffffff) >>> 0
}

export interface RawReply {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
}

export interface RawRequest {
  method: string
  path: string
  headers?: http.OutgoingHttpHeaders
  body?: Buffer | string | undefined
  timeoutMs?: number
  /** Bytes of the reply body kept (the rest is read and dropped). */
  keepBytes?: number
}

/**
 * One HTTP request on its own connection. Resolves with whatever status came back;
 * rejects only on a transport failure (reset, refused, timeout), with a message
 * naming the request.
 */
export function rawRequest (address: string, r: RawRequest): Promise<RawReply> {
  const { host, port } = splitHostPort(address)
  const keep = r.keepBytes ?? 64 * 1024
  const timeoutMs = r.timeoutMs ?? 15000
  // Node frames a body of GET/HEAD/DELETE/OPTIONS only when told its length (else the
  // bytes would follow unframed and read as a second request): always say it.
  const headers: http.OutgoingHttpHeaders = { ...r.headers }
  if (r.body !== undefined && headers['content-length'] === undefined && headers['transfer-encoding'] === undefined) headers['content-length'] = Buffer.byteLength(r.body)
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method: r.method, path: r.path, headers, agent: false }, res => {
      const parts: Buffer[] = []
      let size = 0
      res.on('data', (c: Buffer) => {
        if (size < keep) parts.push(c.subarray(0, keep - size))
        size += c.length
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }))
      res.on('error', err => reject(err))
    })
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${r.method} ${r.path.slice(0, 120)}: no reply within ${timeoutMs} ms`)))
    req.on('error', err => reject(err))
    req.end(r.body)
  })
}

/** The error code of a `{error:{code}}` body, if it is one. */
export function errorCodeOf (body: Buffer | string): string | undefined {
  try {
    const j = JSON.parse(typeof body === 'string' ? body : body.toString('utf8')) as { error?: { code?: unknown } }
    return typeof j?.error?.code === 'string' ? j.error.code : undefined
  } catch {
    return undefined
  }
}

/**
 * Write raw bytes on a fresh socket (for framing a client library would refuse to
 * produce) and return the status of the first reply line; 0 when the server closed
 * without a status line. Rejects only on a timeout.
 */
export function rawExchange (address: string, payload: Buffer, timeoutMs = 15000): Promise<number> {
  const { host, port } = splitHostPort(address)
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port })
    let buf = ''
    let done = false
    const finish = (v: number | Error): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      sock.destroy()
      if (v instanceof Error) reject(v)
      else resolve(v)
    }
    const timer = setTimeout(() => finish(new Error(`raw exchange: no reply within ${timeoutMs} ms`)), timeoutMs)
    sock.on('connect', () => { sock.end(payload) })
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1')
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(buf)
      if (m !== null) finish(Number(m[1]))
      else if (buf.length > 64) finish(0)
    })
    sock.on('error', () => finish(0))
    sock.on('close', () => finish(0))
  })
}

// ---------------------------------------------------------------------------
// Hostile values

/** Path-ish strings: traversal in several spellings, absolute host paths, NUL, long. */
export function hostilePath (rng: Rng, canary: string): string {
  const variants: Array<() => string> = [
    () => '../../../../etc/passwd',
    () => '/../../etc/passwd',
    () => `${canary}/blk_1_1`,
    () => `../${'../'.repeat(rng.int(1, 8))}canary/target`,
    () => '..%2F..%2F..%2Fetc%2Fpasswd',
    () => '%2e%2e%2f%2e%2e%2fcanary',
    () => '....//....//etc/passwd',
    () => '..\\..\\windows\\win.ini',
    () => '/a/./b/../../../c',
    () => '/\u0000/etc/passwd',
    () => '/' + 'x'.repeat(rng.int(250, 5000)),
    () => '/' + Array.from({ length: rng.int(10, 2000) }, () => 'd').join('/'),
    () => '/fuzz/' + rng.ascii(rng.int(1, 40)),
    () => '/fuzz/\u00e9\u{1F600}\u202e' + rng.int(0, 99),
    () => '/keep',
    () => '/',
    () => '',
    () => '.',
    () => 'relative/path',
    () => '//double//slash//',
  ]
  return rng.pick(variants)()
}

/** Any JSON value, nested a little. */
export function randomJson (rng: Rng, depth = 0): unknown {
  const k = rng.int(0, depth > 2 ? 6 : 9)
  switch (k) {
    case 0: return null
    case 1: return rng.bool()
    case 2: return rng.pick([0, -1, 1, 1.5, -0, 2 ** 53, 2 ** 53 + 2, 1e308, -1e308, 0o777, 2 ** 31, 2 ** 32, 4294967296 * 2])
    case 3: return rng.int(-1000, 100000)
    case 4: return rng.ascii(rng.int(0, 30))
    case 5: return rng.pick(['', '0', '-1', '1e3', 'NaN', 'Infinity', 'true', 'null', '/', '..', '\u0000', '\ud800', '__proto__', 'constructor'])
    case 6: return rng.pick([[], {}, [[]], { '': '' }])
    case 7: return Array.from({ length: rng.int(0, 5) }, () => randomJson(rng, depth + 1))
    default: {
      const o: Record<string, unknown> = {}
      for (let i = rng.int(0, 5); i > 0; i--) o[rng.pick(['path', 'src', 'dst', 'mode', 'uid', 'gid', 'id', 'blocks', 'writeId', 'x', '__proto__', 'constructor', rng.ascii(5)])] = randomJson(rng, depth + 1)
      return o
    }
  }
}

/** Bytes that are not valid UTF-8 (overlong, lone continuation, surrogate halves, 0xff). */
export function invalidUtf8 (rng: Rng): Buffer {
  const bad = [
    Buffer.from([0xff, 0xfe]),
    Buffer.from([0xc0, 0xaf]),
    Buffer.from([0x80]),
    Buffer.from([0xed, 0xa0, 0x80]),
    Buffer.from([0xf4, 0x90, 0x80, 0x80]),
    Buffer.from([0xe2, 0x82]),
  ]
  return Buffer.concat([Buffer.from('{"path":"/fuzz/'), rng.pick(bad), Buffer.from('x"}')])
}
