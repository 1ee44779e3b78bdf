// The fast JSON dispatch answers exactly as the regular Express Router built from the
// same route table: same status, content type and body for good and bad requests, and
// everything it does not handle itself falls through to the Router.
import t from 'tap'
import http from 'node:http'
import { gzipSync } from 'node:zlib'
import type { Express, NextFunction, Request, Response } from 'express'
import { HissError } from '../../../src/common/errors.js'
import { createJsonApp, errorMiddleware, fastJsonDispatch, jsonRouter, listen, notFoundHandler, sendJson, type JsonRoute, type RunningServer } from '../../../src/common/http-server.js'
import { silentLogger } from '../../../src/common/log.js'

const MOUNT = '/v1/t'

const routes: JsonRoute[] = [
  { method: 'GET', path: '/echo', handler: (req, q) => ({ query: q, uid: req.get('x-uid') ?? null }) },
  { method: 'POST', path: '/echo', handler: (_req, b) => ({ body: b ?? null }) },
  { method: 'POST', path: '/boom', handler: () => { throw HissError.EEXIST('/boom') } },
  { method: 'POST', path: '/async', handler: async (_req, b) => { await new Promise(resolve => setImmediate(resolve)); return { later: b ?? null } } },
  { method: 'POST', path: '/async-fail', handler: async () => { await new Promise(resolve => setImmediate(resolve)); throw HissError.ENOENT('/gone') } },
  // A reply JSON cannot encode (a bug): a 500 either way, never a crash.
  { method: 'POST', path: '/bad-reply', handler: () => ({ n: 1n }) },
  { method: 'POST', path: '/async-bad-reply', handler: async () => { await new Promise(resolve => setImmediate(resolve)); return { n: 1n } } },
]

function app (fast: { count: number } | undefined): Express {
  const a = createJsonApp()
  if (fast !== undefined) a.use(fastJsonDispatch(MOUNT, routes, (res, body) => { fast.count++; sendJson(res, 200, body) }))
  a.use(MOUNT, jsonRouter(routes))
  a.use(notFoundHandler)
  a.use(errorMiddleware(silentLogger))
  return a
}

interface Case { name: string, method: string, path: string, headers?: Record<string, string>, body?: Buffer | string, chunked?: boolean }
interface Answer { status: number, type: string | undefined, body: string }

async function send (server: RunningServer, c: Case): Promise<Answer> {
  return await new Promise((resolve, reject) => {
    const body = c.body === undefined ? undefined : Buffer.from(c.body)
    const headers: Record<string, string> = { ...c.headers }
    if (body !== undefined && c.chunked !== true) headers['content-length'] = String(body.length)
    const req = http.request({ host: '127.0.0.1', port: server.port, method: c.method, path: c.path, headers, agent: false, timeout: 5000 }, res => {
      const chunks: Buffer[] = []
      res.on('data', (d: Buffer) => chunks.push(d))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body: Buffer.concat(chunks).toString('utf8') }) })
      res.on('error', reject)
    })
    req.on('timeout', () => { req.destroy(new Error(`${c.name}: timed out`)) })
    req.on('error', reject)
    if (body !== undefined && c.chunked === true) { req.write(body.subarray(0, 3)); req.end(body.subarray(3)) } else req.end(body)
  })
}

const json = { 'content-type': 'application/json' }
const cases: Case[] = [
  { name: 'GET with a query', method: 'GET', path: `${MOUNT}/echo?path=%2Fa%20b&n=1`, headers: { 'x-uid': '7' } },
  { name: 'GET with a repeated key', method: 'GET', path: `${MOUNT}/echo?a=1&a=2` },
  { name: 'GET without a query', method: 'GET', path: `${MOUNT}/echo` },
  { name: 'GET with an empty query', method: 'GET', path: `${MOUNT}/echo?` },
  { name: 'POST object', method: 'POST', path: `${MOUNT}/echo`, headers: json, body: '{"path":"/x","n":[1,2]}' },
  { name: 'POST array', method: 'POST', path: `${MOUNT}/echo`, headers: json, body: '[1,2]' },
  { name: 'POST leading whitespace', method: 'POST', path: `${MOUNT}/echo`, headers: json, body: ' \r\n\t{"a":1}' },
  { name: 'POST with a BOM', method: 'POST', path: `${MOUNT}/echo`, headers: json, body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"bom":true}')]) },
  { name: 'POST empty body', method: 'POST', path: `${MOUNT}/echo`, headers: json, body: '' },
  { name: 'POST without a body', method: 'POST', path: `${MOUNT}/echo` },
  { name: 'POST a string', method: 'POST', path: `${MOUNT}/echo`, headers: json, body: '"just a string"' },
  { name: 'POST a number', method: 'POST', path: `${MOUNT}/echo`, headers: json, body: '42' },
  { name: 'POST broken JSON', method: 'POST', path: `${MOUNT}/echo`, headers: json, body: '{"a":' },
  { name: 'POST invalid UTF-8', method: 'POST', path: `${MOUNT}/echo`, headers: json, body: Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]) },
  { name: 'POST text/plain', method: 'POST', path: `${MOUNT}/echo`, headers: { 'content-type': 'text/plain' }, body: '{"a":1}' },
  { name: 'POST utf-8 charset', method: 'POST', path: `${MOUNT}/echo`, headers: { 'content-type': 'application/json; charset=utf-8' }, body: '{"a":"é"}' },
  { name: 'POST other charset', method: 'POST', path: `${MOUNT}/echo`, headers: { 'content-type': 'application/json; charset=latin1' }, body: '{"a":1}' },
  { name: 'POST chunked', method: 'POST', path: `${MOUNT}/echo`, headers: json, body: '{"chunked":true}', chunked: true },
  { name: 'POST gzip', method: 'POST', path: `${MOUNT}/echo`, headers: { ...json, 'content-encoding': 'gzip' }, body: gzipSync('{"gz":1}') },
  { name: 'POST large body', method: 'POST', path: `${MOUNT}/echo`, headers: json, body: JSON.stringify({ pad: 'x'.repeat(100 * 1024) }) },
  { name: 'POST over the JSON limit', method: 'POST', path: `${MOUNT}/echo`, headers: json, body: JSON.stringify({ pad: 'x'.repeat(5 * 1024 * 1024) }) },
  { name: 'handler error', method: 'POST', path: `${MOUNT}/boom`, headers: json, body: '{}' },
  { name: 'async handler', method: 'POST', path: `${MOUNT}/async`, headers: json, body: '{"a":1}' },
  { name: 'async handler error', method: 'POST', path: `${MOUNT}/async-fail`, headers: json, body: '{}' },
  { name: 'unencodable reply', method: 'POST', path: `${MOUNT}/bad-reply`, headers: json, body: '{}' },
  { name: 'async unencodable reply', method: 'POST', path: `${MOUNT}/async-bad-reply`, headers: json, body: '{}' },
  { name: 'GET on a POST route', method: 'GET', path: `${MOUNT}/boom` },
  { name: 'PUT', method: 'PUT', path: `${MOUNT}/echo`, headers: json, body: '{}' },
  { name: 'HEAD', method: 'HEAD', path: `${MOUNT}/echo?a=1` },
  { name: 'GET with a body', method: 'GET', path: `${MOUNT}/echo?a=1`, headers: json, body: '{broken' },
  { name: 'other case', method: 'GET', path: `${MOUNT.toUpperCase()}/ECHO?a=1` },
  { name: 'trailing slash', method: 'GET', path: `${MOUNT}/echo/?a=1` },
  { name: 'unknown endpoint', method: 'POST', path: `${MOUNT}/nothing`, headers: json, body: '{}' },
]

t.test('the fast dispatch answers as the Router does', async t => {
  const fast = { count: 0 }
  const servers = await Promise.all([listen(app(fast), { host: '127.0.0.1', port: 0 }), listen(app(undefined), { host: '127.0.0.1', port: 0 })])
  t.teardown(async () => { await Promise.all(servers.map(s => s.close())) })
  const [withFast, plain] = servers as [RunningServer, RunningServer]
  for (const c of cases) {
    const a = await send(withFast, c)
    const b = await send(plain, c)
    t.same(a, b, c.name)
    if (c.method !== 'HEAD') t.match(a.type, /^application\/json; charset=utf-8$/, `${c.name}: JSON reply`)
  }
  const ok = await send(withFast, cases[0]!)
  t.equal(ok.status, 200)
  t.same(JSON.parse(ok.body), { query: { path: '/a b', n: '1' }, uid: '7' }, 'query and headers reach the handler')
  t.ok(fast.count >= 12, `the common requests took the fast path (${fast.count})`)
  const before = fast.count
  for (const name of ['POST chunked', 'POST gzip', 'POST large body', 'POST other charset', 'HEAD', 'GET with a body', 'other case', 'trailing slash']) {
    await send(withFast, cases.find(c => c.name === name)!)
  }
  t.equal(fast.count, before, 'the unusual requests were left to the Router')
})

t.test('in front of the app (listen front): the same answers, and what it answers never enters Express', async t => {
  const fast = { count: 0 }
  // The app a front server runs (as the NameServer's): the same table through its Router,
  // behind a layer that counts every request reaching Express's router.
  let routed = 0
  const frontApp = createJsonApp()
  frontApp.use((_req, _res, next) => { routed++; next() })
  frontApp.use(MOUNT, jsonRouter(routes))
  frontApp.use(notFoundHandler)
  let errors = 0
  frontApp.use((err: unknown, _req: Request, _res: Response, next: NextFunction) => { errors++; next(err) })
  frontApp.use(errorMiddleware(silentLogger))
  const front = fastJsonDispatch(MOUNT, routes, (res, body) => { fast.count++; sendJson(res, 200, body) })
  const servers = await Promise.all([listen(frontApp, { host: '127.0.0.1', port: 0, front }), listen(app(undefined), { host: '127.0.0.1', port: 0 })])
  t.teardown(async () => { await Promise.all(servers.map(s => s.close())) })
  const [withFront, plain] = servers as [RunningServer, RunningServer]
  for (const c of cases) t.same(await send(withFront, c), await send(plain, c), c.name)

  for (const name of ['GET with a query', 'POST object', 'async handler']) {
    const c = cases.find(x => x.name === name)!
    const [r0, f0] = [routed, fast.count]
    t.equal((await send(withFront, c)).status, 200, name)
    t.same([routed - r0, fast.count - f0], [0, 1], `${name}: answered in front, Express never saw it`)
  }
  for (const name of ['handler error', 'async handler error', 'POST broken JSON', 'unencodable reply']) {
    const c = cases.find(x => x.name === name)!
    const [r0, e0] = [routed, errors]
    const a = await send(withFront, c)
    t.ok(a.status >= 400, `${name}: ${a.status}`)
    t.same([routed - r0, errors - e0], [0, 1], `${name}: the error went to the app's error middleware, past its other layers`)
  }
  const [r0, f0] = [routed, fast.count]
  t.equal((await send(withFront, cases.find(x => x.name === 'POST chunked')!)).status, 200)
  t.same([routed - r0, fast.count - f0], [1, 0], 'what the front passes on reaches the app as it came (and its Router)')
})

t.test('requests and responses are born with the app prototypes (Express re-parents nothing)', async t => {
  const a = createJsonApp()
  const seen: boolean[] = []
  const server = await listen(a, { host: '127.0.0.1', port: 0 })
  t.teardown(() => server.close())
  // Runs before Express's app.handle: what Node built, before any Object.setPrototypeOf.
  server.server.prependListener('request', (req, res) => {
    seen.push(Object.getPrototypeOf(req) === a.request && Object.getPrototypeOf(res) === a.response)
  })
  a.get('/x', (req, res) => { res.json({ q: req.query, h: req.get('x-test') ?? null, ip: req.ip !== undefined }) })
  a.use(notFoundHandler)
  a.use(errorMiddleware(silentLogger))
  const r = await send(server, { name: 'x', method: 'GET', path: '/x?a=1', headers: { 'x-test': 'yes' } })
  t.equal(r.status, 200)
  t.same(JSON.parse(r.body), { q: { a: '1' }, h: 'yes', ip: true }, 'Express request and response features work')
  const miss = await send(server, { name: 'miss', method: 'GET', path: '/nothing' })
  t.equal(miss.status, 404)
  t.same(seen, [true, true], 'every req and res had the app prototypes from the start')
})
