// readBlockInto and its direct socket read (src/client/block-fetch.ts) against fake
// DataServers on real sockets: bytes in order through the reused buffer, a replica that
// cuts its reply mid-way (checksum failure) resumed on the next at the first missing
// byte, error replies, and the fall back to readBlock (token refresh, bad-replica report).
import t from 'tap'
import http from 'node:http'
import { parseConfig } from '../../../src/common/config.js'
import { HEADER_TOKEN, type LocatedBlock } from '../../../src/common/protocol.js'
import { fetchRange } from '../../../src/client/block-fetch.js'
import { createClient, type HissClient } from '../../../src/client/index.js'
import { fail, fakeServer, json, type Teardown } from '../../helpers/fake-http.js'


function pattern (len: number, seed = 0): Buffer {
  const b = Buffer.alloc(len)
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed + (i >> 11)) & 0xff
  return b
}

/** Serves `data` in small writes, each on a later turn. */
function serveRange (data: Buffer, res: http.ServerResponse, q: URLSearchParams, cutAfter = Infinity): void {
  const off = Number(q.get('offset'))
  const len = Number(q.get('length'))
  res.writeHead(200, { 'content-length': len })
  let p = 0
  const step = (): void => {
    if (p >= Math.min(len, cutAfter)) { if (cutAfter < len) setTimeout(() => res.destroy(), 10); else res.end(); return }
    const n = Math.min(7777, len - p, cutAfter - p)
    res.write(data.subarray(off + p, off + p + n), () => setImmediate(step))
    p += n
  }
  step()
}

function makeClient (t: Teardown, nsAddress: string): HissClient {
  const cfg = parseConfig({ 'nameserver.address': nsAddress, 'client.retry.ms': 2000, 'client.timeout.ms': 2000 })
  const client = createClient(cfg, { identity: { uid: 1234, gids: [5] }, clientId: 'test-client' })
  t.teardown(() => client.close())
  return client
}

t.test('fetchRange: the body in order through the reused buffer; cut short and error replies reject', async t => {
  const data = pattern(600_000, 1)
  const ds = await fakeServer(t, (req, res) => {
    if (req.query.get('cut') === '1') { serveRange(data, res, req.query, 100_000); return }
    if (req.query.get('deny') === '1') { fail(res, 'BAD_TOKEN'); return }
    t.equal(req.headers[HEADER_TOKEN], 'tok')
    serveRange(data, res, req.query)
  })
  const parts: Buffer[] = []
  const path = (q: string): string => `/v1/blocks/3?gen=1&offset=1000&length=500000${q}`
  await fetchRange({ address: ds.address, path: path(''), headers: { [HEADER_TOKEN]: 'tok' }, length: 500_000, timeoutMs: 2000 }, b => { parts.push(Buffer.from(b)) })
  t.ok(Buffer.concat(parts).equals(data.subarray(1000, 501_000)), 'bytes identical')

  let got = 0
  await t.rejects(fetchRange({ address: ds.address, path: path('&cut=1'), headers: { [HEADER_TOKEN]: 'tok' }, length: 500_000, timeoutMs: 2000 }, b => { got += b.length }), { code: 'EIO' }, 'a cut reply is an error')
  t.equal(got, 100_000, 'the bytes before the cut were delivered')
  await t.rejects(fetchRange({ address: ds.address, path: path('&deny=1'), headers: {}, length: 500_000, timeoutMs: 2000 }, () => { t.fail('no body for an error') }), { code: 'BAD_TOKEN' }, 'an error reply is its HissError')
  await ds.close()
  await t.rejects(fetchRange({ address: ds.address, path: path(''), headers: {}, length: 10, timeoutMs: 2000 }, () => {}), { code: 'ECONNREFUSED' })
})

t.test('readBlockInto: a reply cut short goes on through readBlock at the first missing byte (bad replica reported)', async t => {
  const data = pattern(300_000, 3)
  const badReports: unknown[] = []
  const ns = await fakeServer(t, (req, res) => {
    if (req.path === '/v1/ns/badblock') { badReports.push(JSON.parse(req.body.toString())); json(res, 200, { ok: true }); return }
    fail(res, 'ENOENT')
  })
  const ds1 = await fakeServer(t, (req, res) => {
    if (req.path === '/v1/ping') { json(res, 200, { ok: true, id: 'ds1' }); return }
    serveRange(data, res, req.query, 100_000)
  })
  const ds2 = await fakeServer(t, (req, res) => { serveRange(data, res, req.query) })
  const client = makeClient(t, ns.address)
  const block: LocatedBlock = { id: 42, gen: 1, length: data.length, offset: 0, token: 'tok', locations: [{ id: 'ds1', address: ds1.address }, { id: 'ds2', address: ds2.address }] }
  const parts: Buffer[] = []
  await client.readBlockInto(block, 1000, 250_000, b => { parts.push(Buffer.from(b)) })
  const got = Buffer.concat(parts)
  t.equal(got.length, 250_000)
  t.ok(got.equals(data.subarray(1000, 251_000)), 'nothing lost or duplicated')
  t.same(ds1.requests.filter(r => r.path !== '/v1/ping').map(r => r.query.get('offset')), ['1000', '101000'], 'the stream reader resumed at the first missing byte')
  t.equal(ds2.requests[0]!.query.get('offset'), String(201_000), 'then failed over')
  for (let i = 0; i < 100 && badReports.length === 0; i++) await new Promise(r => setTimeout(r, 20))
  t.same(badReports, [{ block: { id: 42, gen: 1 }, dataserver: 'ds1' }], 'the cutting replica was reported')

  // A refused connection: the direct read moves on to the next replica.
  const dead = await fakeServer(t, () => {})
  await dead.close()
  const ds3 = await fakeServer(t, (req, res) => { serveRange(data, res, req.query) })
  const parts2: Buffer[] = []
  await client.readBlockInto({ ...block, locations: [{ id: 'dead', address: dead.address }, { id: 'ds3', address: ds3.address }] }, 0, 300_000, b => { parts2.push(Buffer.from(b)) })
  t.ok(Buffer.concat(parts2).equals(data), 'read from the next replica')
  t.equal(ds3.requests.length, 1)
})

t.test('readBlockInto: every replica refusing the token falls back to readBlock, which refreshes it', async t => {
  const data = pattern(5000, 9)
  const good = await fakeServer(t, (req, res) => {
    if (req.headers[HEADER_TOKEN] !== 'fresh') { fail(res, 'BAD_TOKEN'); return }
    serveRange(data, res, req.query)
  })
  let refreshes = 0
  const ns = await fakeServer(t, (req, res) => {
    if (req.path === '/v1/ns/blocks' && req.query.get('ino') === '77') {
      refreshes++
      json(res, 200, { stat: { ino: 77, type: 'file', mode: 0o644, uid: 1, gid: 1, size: data.length, nlink: 1, atimeNs: '0', mtimeNs: '0', ctimeNs: '0', replication: 1, blockSize: 1 << 20 }, blocks: [{ id: 5, gen: 2, length: data.length, offset: 0, token: 'fresh', locations: [{ id: 'good', address: good.address }] }] })
      return
    }
    fail(res, 'ENOENT')
  })
  const client = makeClient(t, ns.address)
  const block: LocatedBlock = { id: 5, gen: 2, length: data.length, offset: 0, token: 'expired', locations: [{ id: 'good', address: good.address }] }
  const parts: Buffer[] = []
  await client.readBlockInto(block, 10, 4000, b => { parts.push(Buffer.from(b)) }, { ino: 77 })
  t.ok(Buffer.concat(parts).equals(data.subarray(10, 4010)))
  t.equal(refreshes, 1, 'one refresh')
  // A sink that throws ends the read with its error, without trying other replicas.
  const before = good.requests.length
  await t.rejects(client.readBlockInto({ ...block, token: 'fresh', locations: [{ id: 'good', address: good.address }, { id: 'good2', address: good.address }] }, 0, 5000, () => { throw new Error('sink gave up') }), { message: 'sink gave up' })
  t.equal(good.requests.length, before + 1, 'one request only')
})
