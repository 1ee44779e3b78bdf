// The lean load-generator client against a real node:http server on 127.0.0.1: replies
// matched to their requests across a pool, statuses and JSON bodies as sent, replies that
// arrive in pieces, a keep-alive connection the server closed, one it is about to close
// (idle too long), a large reply in many pieces, and framing it refuses.
import t from 'tap'
import http from 'node:http'
import { spawn } from 'node:child_process'
import type { AddressInfo } from 'node:net'
import { LeanJsonHttp, STALE_IDLE_MS, parseHead } from '../src/lean-http.js'

async function server (t: { teardown: (fn: () => unknown) => void }, handler: http.RequestListener, opts: http.ServerOptions = {}): Promise<string> {
  const s = http.createServer(opts, handler)
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { s.closeAllConnections(); s.close(() => resolve()) }))
  return `127.0.0.1:${(s.address() as AddressInfo).port}`
}

function readBody (req: http.IncomingMessage): Promise<string> {
  return new Promise(resolve => {
    let b = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => { b += c })
    req.on('end', () => resolve(b))
  })
}

// Echoes method, path, identity header and body, after a random short delay so that
// replies on the pool's connections come back out of order.
const echo: http.RequestListener = (req, res) => {
  void readBody(req).then(body => {
    setTimeout(() => {
      const text = JSON.stringify({ method: req.method, url: req.url, uid: req.headers['x-hiss-uid'], body: body === '' ? null : JSON.parse(body) })
      res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
      res.end(text)
    }, Math.floor(Math.random() * 4))
  })
}

t.test('replies are matched to their requests across the pool', async t => {
  const addr = await server(t, echo)
  const c = new LeanJsonHttp(addr, 4, { 'x-hiss-uid': '7' })
  t.teardown(() => { c.close() })
  const replies = await Promise.all(Array.from({ length: 60 }, (_, i) =>
    i % 2 === 0 ? c.ok('GET', `/v1/ns/stat?path=%2Ff${i}`) : c.ok('POST', '/v1/ns/create', { path: `/f${i}`, n: i })))
  replies.forEach((r, i) => {
    const e = r as { method: string, url: string, uid: string, body: { path: string, n: number } | null }
    t.equal(e.uid, '7', 'identity header sent')
    if (i % 2 === 0) t.same(e, { method: 'GET', url: `/v1/ns/stat?path=%2Ff${i}`, uid: '7', body: null })
    else t.same(e, { method: 'POST', url: '/v1/ns/create', uid: '7', body: { path: `/f${i}`, n: i } })
  })
})

t.test('a non-2xx status is returned by call() and thrown by ok()', async t => {
  const addr = await server(t, echo)
  const c = new LeanJsonHttp(addr, 1)
  t.teardown(() => { c.close() })
  const r = await c.call('GET', '/missing')
  t.equal(r.status, 404)
  t.match(r.body, { url: '/missing' })
  await t.rejects(c.ok('GET', '/missing'), /GET \/missing: HTTP 404/)
  // The connection is still usable afterwards.
  t.match(await c.ok('GET', '/after'), { url: '/after' })
})

t.test('a reply written in pieces (head, then the body byte by byte) is read whole', async t => {
  const text = JSON.stringify({ stat: { type: 'file', name: 'ünïcödé' } })
  const bytes = Buffer.from(text)
  const addr = await server(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': bytes.length })
    res.flushHeaders()
    let i = 0
    const next = (): void => {
      if (i >= bytes.length) { res.end(); return }
      res.write(bytes.subarray(i, i + 7))
      i += 7
      setTimeout(next, 1)
    }
    setTimeout(next, 5)
  })
  const c = new LeanJsonHttp(addr, 1)
  t.teardown(() => { c.close() })
  t.same(await c.ok('GET', '/slow'), JSON.parse(text))
  t.same(await c.ok('GET', '/slow'), JSON.parse(text), 'and again on the same connection')
})

t.test('a keep-alive connection the server closed is reopened for the next request', async t => {
  let connections = 0
  // The first reply says Connection: close, and the server ends that connection.
  const s = http.createServer((req, res) => {
    if (req.url === '/one') res.setHeader('connection', 'close')
    echo(req, res)
  })
  s.on('connection', () => { connections++ })
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { s.closeAllConnections(); s.close(() => resolve()) }))
  const c = new LeanJsonHttp(`127.0.0.1:${(s.address() as AddressInfo).port}`, 1)
  t.teardown(() => { c.close() })
  t.match(await c.ok('GET', '/one'), { url: '/one' })
  await new Promise(resolve => setTimeout(resolve, 100))
  t.match(await c.ok('GET', '/two'), { url: '/two' })
  t.equal(connections, 2, 'a second connection was opened')
})

/**
 * An HTTP server in a child process (so it runs while this process is blocked) that
 * closes a connection once it has been idle for `idleMs`: node:http with that
 * keepAliveTimeout, or (`hint: false`) a raw one whose replies carry no Keep-Alive header.
 */
async function closingServer (t: { teardown: (fn: () => unknown) => void }, idleMs: number, hint: boolean): Promise<{ address: string, connections: () => Promise<number> }> {
  const script = hint
    ? `const http = require('node:http'); let n = 0
       const s = http.createServer((req, res) => { const b = JSON.stringify({ url: req.url, n }); res.writeHead(200, { 'content-type': 'application/json', 'content-length': b.length }); res.end(b) })
       s.keepAliveTimeout = ${idleMs}; s.on('connection', () => { n++ })
       s.listen(0, '127.0.0.1', () => { console.log(s.address().port) })`
    : `const net = require('node:net'); let n = 0
       const s = net.createServer(c => {
         n++; let timer; const idle = () => { clearTimeout(timer); timer = setTimeout(() => c.end(), ${idleMs}) }; idle()
         c.on('data', d => { const url = d.toString('latin1').split(' ')[1]; const b = JSON.stringify({ url, n }); c.write('HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: ' + b.length + '\\r\\n\\r\\n' + b); idle() })
         c.on('error', () => {})
       })
       s.listen(0, '127.0.0.1', () => { console.log(s.address().port) })`
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => { resolve(d.toString().trim()) })
    child.once('exit', code => { reject(new Error(`server exited ${code}`)) })
  })
  const address = `127.0.0.1:${port}`
  const connections = async (): Promise<number> => {
    const probe = new LeanJsonHttp(address, 1)
    try {
      return ((await probe.ok('GET', '/count')) as { n: number }).n - 1
    } finally {
      probe.close()
    }
  }
  return { address, connections }
}

/** Keep this process busy (no I/O callbacks run) for `ms`. */
function blockFor (ms: number): void {
  const end = Date.now() + ms
  while (Date.now() < end) { /* busy */ }
}

t.test('a connection idle past the server\'s keep-alive timeout is replaced, not reused', async t => {
  // The server closes the idle connection while this process is busy and cannot see the
  // close; the next request, written at once, must not go out on it.
  // node:http's server says `Keep-Alive: timeout=2` for 2.3 s: reused for up to 1 s. The
  // raw server says nothing: reused for up to staleMs (200 ms).
  for (const [hint, idleMs] of [[true, 2300], [false, 300]] as const) {
    const srv = await closingServer(t, idleMs, hint)
    const c = new LeanJsonHttp(srv.address, 1, {}, 5000, hint ? STALE_IDLE_MS : 200)
    t.teardown(() => { c.close() })
    t.match(await c.ok('GET', '/one'), { url: '/one' })
    blockFor(idleMs + 400)
    t.match(await c.ok('GET', '/two'), { url: '/two' }, `second request answered (${hint ? 'node:http, Keep-Alive hint' : 'no hint'})`)
    t.match(await c.ok('GET', '/three'), { url: '/three' }, 'a request right after reuses the connection')
    t.equal(await srv.connections(), 2, 'one connection for /one, a new one for /two and /three')
  }
})

t.test('a large reply arriving in many pieces is read whole', async t => {
  // 24 MiB of JSON: pieces of at most 64 KiB each, several hundred of them.
  const names = Array.from({ length: 200000 }, (_, i) => `name-${String(i).padStart(8, '0')}-${'x'.repeat(100)}`)
  const text = JSON.stringify({ entries: names })
  const addr = await server(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  })
  const c = new LeanJsonHttp(addr, 1)
  t.teardown(() => { c.close() })
  const r = await c.ok('GET', '/big') as { entries: string[] }
  t.equal(r.entries.length, names.length)
  t.equal(r.entries[names.length - 1], names[names.length - 1])
})

t.test('replies it cannot frame are errors, never counted', async t => {
  const addr = await server(t, (req, res) => {
    if (req.url === '/chunked') { res.writeHead(200, { 'content-type': 'application/json' }); res.write('{"a":'); res.end('1}'); return }
    res.socket?.end('garbage\r\n\r\n')
  })
  const c = new LeanJsonHttp(addr, 1)
  t.teardown(() => { c.close() })
  await t.rejects(c.ok('GET', '/chunked'), /chunked reply/)
  await t.rejects(c.ok('GET', '/garbage'), /not an HTTP reply/)
  await t.rejects(new LeanJsonHttp('127.0.0.1:1', 1).ok('GET', '/refused'), /GET \/refused: .*ECONNREFUSED/)
})

t.test('a reply that does not come in time fails the request', async t => {
  const addr = await server(t, () => { /* never answers */ })
  const c = new LeanJsonHttp(addr, 1, {}, 100)
  t.teardown(() => { c.close() })
  await t.rejects(c.ok('GET', '/hang'), /timed out/)
})

t.test('parseHead reads the status and Content-Length, case-insensitively', async t => {
  t.same(parseHead('HTTP/1.1 201 Created\r\nContent-Type: application/json\r\ncontent-LENGTH: 12'), { status: 201, length: 12 })
  t.throws(() => parseHead('HTTP/1.1 200 OK\r\nContent-Type: text/plain'), /without Content-Length/)
})
