// Unit tests of the client library against scripted stand-in servers on real sockets:
// they reproduce failures (cut streams, expired tokens, safe mode) that are hard to
// provoke on demand with the real servers. The real-cluster tests are in test/integration.
// The client library against scripted fake servers on real sockets: retries, failover
// and resume offsets, pipeline retries and lease renewal, each forced precisely.
import t from 'tap'
import { Readable } from 'node:stream'
import { buffer as readAll } from 'node:stream/consumers'
import { parseConfig } from '../../../src/common/config.js'
import { ManualClock } from '../../../src/common/clock.js'
import { HissError } from '../../../src/common/errors.js'
import { HEADER_GIDS, HEADER_PIPELINE, HEADER_PIPELINE_IDS, HEADER_TOKEN, HEADER_UID, type LocatedBlock } from '../../../src/common/protocol.js'
import { createClient, type HissClient } from '../../../src/client/index.js'
import { fail, fakeServer, json, type Teardown } from '../../helpers/fake-http.js'


/** Deterministic block content. */
function pattern (len: number, seed = 0): Buffer {
  const b = Buffer.alloc(len)
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed) & 0xff
  return b
}

function makeClient (t: Teardown, nsAddress: string, extra: Record<string, unknown> = {}, clock?: ManualClock): HissClient {
  const cfg = parseConfig({ 'nameserver.address': nsAddress, 'client.retry.ms': 2000, 'client.timeout.ms': 2000, ...extra })
  const client = createClient(cfg, { identity: { uid: 1234, gids: [5, 6] }, clientId: 'test-client', ...(clock === undefined ? {} : { clock }) })
  t.teardown(() => client.close())
  return client
}

const STAT = { ino: 7, type: 'file', mode: 0o644, uid: 1234, gid: 5, size: 0, nlink: 1, atimeNs: '0', mtimeNs: '0', ctimeNs: '0', replication: 2, blockSize: 1 << 20 }

t.test('metadata calls carry identity, retry SAFE_MODE/EAGAIN and fail fast otherwise', async t => {
  let calls = 0
  const ns = await fakeServer(t, (req, res) => {
    if (req.path === '/v1/ns/stat' && req.query.get('path') === '/a') {
      if (++calls <= 2) { fail(res, calls === 1 ? 'SAFE_MODE' : 'EAGAIN'); return }
      json(res, 200, { stat: STAT })
      return
    }
    fail(res, 'ENOENT')
  })
  const client = makeClient(t, ns.address)
  const st = await client.stat('/a')
  t.equal(st.ino, 7)
  t.equal(calls, 3, 'two retries, then success')
  const r = ns.requests[0]!
  t.equal(r.headers[HEADER_UID], '1234')
  t.equal(r.headers[HEADER_GIDS], '5,6')

  const before = ns.requests.length
  await t.rejects(client.stat('/missing'), { code: 'ENOENT' })
  t.equal(ns.requests.length, before + 1, 'ENOENT is not retried')
  t.equal(await client.exists('/missing'), false)
  t.equal(await client.exists('/a'), true)
})

t.test('an unreachable NameServer gives ECONNREFUSED after the retry budget', async t => {
  const ns = await fakeServer(t, (_req, res) => { fail(res, 'EIO') })
  await ns.close()
  const client = makeClient(t, ns.address, { 'client.retry.ms': 300 })
  const t0 = Date.now()
  await t.rejects(client.list('/'), { code: 'ECONNREFUSED' })
  const took = Date.now() - t0
  t.ok(took >= 250 && took < 5000, `retried for the budget (${took} ms)`)
  await t.rejects(client.ping(), { code: 'ECONNREFUSED' }, 'ping fails fast too')
})

t.test('a NameServer that never answers: ETIMEDOUT after client.timeout.ms, and the connection is dropped', async t => {
  const held: Array<import('node:http').ServerResponse> = []
  const ns = await fakeServer(t, (_req, res) => { held.push(res) })
  t.teardown(() => { for (const r of held) r.destroy() })
  const client = makeClient(t, ns.address, { 'client.timeout.ms': 300 })
  const t0 = Date.now()
  await t.rejects(client.stat('/a'), { code: 'ETIMEDOUT', message: new RegExp(ns.address.replace(/\./g, '\\.')) })
  const took = Date.now() - t0
  t.ok(took >= 280 && took < 3000, `gave up after about the timeout (${took} ms)`)
  t.equal(ns.requests.length, 1, 'a timeout is not retried: the request may have taken effect')
  // The cancelled request's socket is closed, not handed back to the keep-alive pool.
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(held[0]!.socket?.destroyed ?? true, true, 'the server sees the connection closed')
})

t.test('the metadata timeout runs on the injected clock', async t => {
  const held: Array<import('node:http').ServerResponse> = []
  const ns = await fakeServer(t, (_req, res) => { held.push(res) })
  t.teardown(() => { for (const r of held) r.destroy() })
  const clock = new ManualClock()
  const client = makeClient(t, ns.address, { 'client.timeout.ms': 60_000 }, clock)
  let outcome: unknown
  const call = client.stat('/a').then(() => { outcome = 'answered' }, (err: unknown) => { outcome = err })
  for (let i = 0; i < 50 && ns.requests.length === 0; i++) await new Promise(resolve => setTimeout(resolve, 20))
  t.equal(ns.requests.length, 1, 'the request reached the server')
  clock.advance(59_000)
  await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(outcome, undefined, 'still waiting before client.timeout.ms has passed on the clock')
  clock.advance(1_000)
  await call
  t.match(outcome, { code: 'ETIMEDOUT' }, 'ETIMEDOUT once the clock reaches client.timeout.ms, without waiting a minute')
})

t.test('readBlock fails over mid-stream and resumes at the first missing byte', async t => {
  const data = pattern(300000, 3)
  const badReports: unknown[] = []
  const ns = await fakeServer(t, (req, res) => {
    if (req.path === '/v1/ns/badblock') { badReports.push(JSON.parse(req.body.toString())); json(res, 200, { ok: true }); return }
    fail(res, 'ENOENT')
  })
  // DataServer 1: promises the whole range, sends 100000 bytes, then cuts the stream
  // (what a DataServer does on a checksum failure); it still answers pings.
  const ds1 = await fakeServer(t, (req, res) => {
    if (req.path === '/v1/ping') { json(res, 200, { ok: true, id: 'ds1' }); return }
    const off = Number(req.query.get('offset'))
    const len = Number(req.query.get('length'))
    res.writeHead(200, { 'content-length': len })
    res.write(data.subarray(off, off + 100000), () => { setTimeout(() => res.destroy(), 20) })
  })
  const ds2 = await fakeServer(t, (req, res) => {
    const off = Number(req.query.get('offset'))
    const len = Number(req.query.get('length'))
    t.equal(req.headers[HEADER_TOKEN], 'tok', 'token sent')
    res.writeHead(200, { 'content-length': len })
    res.end(data.subarray(off, off + len))
  })
  const client = makeClient(t, ns.address)
  const block: LocatedBlock = { id: 42, gen: 1, length: data.length, offset: 0, token: 'tok', locations: [{ id: 'ds1', address: ds1.address }, { id: 'ds2', address: ds2.address }] }
  const got = await readAll(client.readBlock(block, 1000, 250000))
  t.equal(got.length, 250000)
  t.ok(got.equals(data.subarray(1000, 251000)), 'bytes identical: nothing lost or duplicated')
  const r2 = ds2.requests[0]!
  t.equal(r2.query.get('offset'), String(1000 + 100000), 'resumed at the first missing byte')
  t.equal(r2.query.get('length'), String(150000))
  t.equal(r2.query.get('gen'), '1')
  // The report is fire-and-forget: wait for it (bounded).
  for (let i = 0; i < 100 && badReports.length === 0; i++) await new Promise(r => setTimeout(r, 20))
  t.same(badReports, [{ block: { id: 42, gen: 1 }, dataserver: 'ds1' }], 'the cutting replica was reported')
})

t.test('readBlock: a replica that goes silent is left after client.timeout.ms; a slow but steady one is not', async t => {
  const data = pattern(200000, 5)
  const ns = await fakeServer(t, (req, res) => {
    if (req.path === '/v1/ns/badblock') { json(res, 200, { ok: true }); return }
    fail(res, 'ENOENT')
  })
  const piece = 10000
  // Steady: one piece every 100 ms, 2 s in all - four times the timeout, never silent for it.
  const steady = await fakeServer(t, async (req, res) => {
    const off = Number(req.query.get('offset'))
    const len = Number(req.query.get('length'))
    res.writeHead(200, { 'content-length': len })
    for (let p = off; p < off + len; p += piece) {
      if (res.destroyed) return
      res.write(data.subarray(p, Math.min(p + piece, off + len)))
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    res.end()
  })
  // Silent: 3 pieces, then nothing (the connection stays open).
  const silent = await fakeServer(t, async (req, res) => {
    const off = Number(req.query.get('offset'))
    const len = Number(req.query.get('length'))
    res.writeHead(200, { 'content-length': len })
    for (let i = 0; i < 3; i++) {
      res.write(data.subarray(off + i * piece, off + (i + 1) * piece))
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  })
  const full = await fakeServer(t, (req, res) => {
    const off = Number(req.query.get('offset'))
    const len = Number(req.query.get('length'))
    res.writeHead(200, { 'content-length': len })
    res.end(data.subarray(off, off + len))
  })
  const client = makeClient(t, ns.address, { 'client.timeout.ms': 500 })
  const block: LocatedBlock = { id: 9, gen: 1, length: data.length, offset: 0, token: 'tok', locations: [{ id: 'steady', address: steady.address }, { id: 'full', address: full.address }] }
  const got = await readAll(client.readBlock(block, 0, data.length))
  t.ok(got.equals(data), 'the steady replica delivered everything')
  t.equal(full.requests.length, 0, 'no failover from a replica that kept sending')

  const t0 = Date.now()
  const got2 = await readAll(client.readBlock({ ...block, locations: [{ id: 'silent', address: silent.address }, { id: 'full', address: full.address }] }, 0, data.length))
  const took = Date.now() - t0
  t.ok(got2.equals(data), 'bytes identical after the failover')
  t.equal(full.requests[0]?.query.get('offset'), String(3 * piece), 'resumed after the bytes the silent replica sent')
  t.ok(took >= 700 && took < 5000, `left the silent replica about client.timeout.ms after its last byte (${took} ms)`)
})

t.test('readBlock: a refused connection moves on without a report; BAD_TOKEN refreshes by ino', async t => {
  const data = pattern(5000, 9)
  const dead = await fakeServer(t, (_req, res) => { fail(res, 'EIO') })
  await dead.close()
  let blockCalls = 0
  const badReports: unknown[] = []
  const good = await fakeServer(t, (req, res) => {
    if (req.headers[HEADER_TOKEN] !== 'fresh') { fail(res, 'BAD_TOKEN'); return }
    const off = Number(req.query.get('offset'))
    const len = Number(req.query.get('length'))
    res.writeHead(200, { 'content-length': len })
    res.end(data.subarray(off, off + len))
  })
  const ns = await fakeServer(t, (req, res) => {
    if (req.path === '/v1/ns/badblock') { badReports.push(req.body.toString()); json(res, 200, { ok: true }); return }
    if (req.path === '/v1/ns/blocks' && req.query.get('ino') === '77') {
      blockCalls++
      json(res, 200, { stat: { ...STAT, ino: 77, size: data.length }, blocks: [{ id: 5, gen: 2, length: data.length, offset: 0, token: 'fresh', locations: [{ id: 'good', address: good.address }] }] })
      return
    }
    fail(res, 'ENOENT')
  })
  const client = makeClient(t, ns.address)
  const block: LocatedBlock = { id: 5, gen: 2, length: data.length, offset: 0, token: 'expired', locations: [{ id: 'dead', address: dead.address }, { id: 'good', address: good.address }] }
  const got = await readAll(client.readBlock(block, 10, 4000, { ino: 77 }))
  t.ok(got.equals(data.subarray(10, 4010)))
  t.equal(blockCalls, 1, 'one refresh')
  t.same(badReports, [], 'no bad-replica report for a dead server or a refused token')

  // Without any way to refresh, all replicas failing is BLOCK_LOST.
  await t.rejects(readAll(client.readBlock({ ...block, locations: [{ id: 'dead', address: dead.address }] }, 0, 10)), { code: 'BLOCK_LOST' })
  await t.rejects(readAll(client.readBlock(block, 4990, 20)), { code: 'EINVAL' }, 'range outside the block')
})

t.test('storeBlock retries a failed pipeline elsewhere; put streams blocks and commits', async t => {
  const stored = new Map<number, Buffer>()
  let nextBlock = 100
  const addblocks: Array<{ exclude?: string[] }> = []
  let commit: { blocks: Array<{ id: number, gen: number, length: number }>, size: number } | undefined
  let failNextOnDs1 = 0
  const ds2 = await fakeServer(t, (req, res) => {
    const id = Number(req.path.split('/').pop())
    stored.set(id, req.body)
    json(res, 200, { id, gen: 1, length: req.body.length, stored: ['ds2'], failed: [] })
  })
  const ds1 = await fakeServer(t, (req, res) => {
    if (failNextOnDs1 > 0) { failNextOnDs1--; res.destroy(); return }
    const id = Number(req.path.split('/').pop())
    stored.set(id, req.body)
    t.equal(req.headers[HEADER_PIPELINE], ds2.address)
    t.equal(req.headers[HEADER_PIPELINE_IDS], 'ds2')
    json(res, 200, { id, gen: 1, length: req.body.length, stored: ['ds1', 'ds2'], failed: [] })
  })
  const ns = await fakeServer(t, (req, res) => {
    const body = req.body.length > 0 ? JSON.parse(req.body.toString()) : {}
    switch (req.path) {
      case '/v1/ns/write/open':
        t.equal(body.clientId, 'test-client')
        json(res, 200, { writeId: 'w1', ino: 0, replication: 2, blockSize: 65536, blocks: [], size: 0, leaseTimeoutMs: 60000 })
        return
      case '/v1/ns/write/addblock': {
        addblocks.push(body)
        const excl: string[] = body.exclude ?? []
        const targets = [{ id: 'ds1', address: ds1.address }, { id: 'ds2', address: ds2.address }].filter(x => !excl.includes(x.id))
        json(res, 200, { block: { id: nextBlock++, gen: 1 }, targets, token: 'w' })
        return
      }
      case '/v1/ns/write/commit':
        commit = body
        json(res, 200, { stat: { ...STAT, ino: 9, size: body.size } })
        return
      case '/v1/ns/write/abort':
        json(res, 200, { aborted: true })
        return
    }
    fail(res, 'ENOENT')
  })
  const client = makeClient(t, ns.address)

  // A Buffer can be sent again: the first pipeline dies, the second avoids ds1.
  const s = await client.openWrite({ path: '/f' }, { create: true })
  failNextOnDs1 = 1
  const buf = pattern(1000, 1)
  const ref = await s.storeBlock(buf)
  t.same(addblocks.map(a => a.exclude ?? []), [[], ['ds1']])
  t.ok(stored.get(ref.id)?.equals(buf))
  t.equal(ref.length, 1000)
  await s.abort()

  // A Readable cannot: the error surfaces.
  const s2 = await client.openWrite({ path: '/f' }, { create: true })
  failNextOnDs1 = 1
  await t.rejects(s2.storeBlock(Readable.from([pattern(10)])), HissError)
  await s2.abort()
  t.equal(client.openWrites, 0, 'no lease left open')

  // put: 3.5 blocks of 64 KiB from a chunked stream; the second block's first pipeline
  // fails and is resent from the spool.
  addblocks.length = 0
  const input = pattern(65536 * 3 + 32768, 7)
  let fails = 0
  const progress: number[] = []
  const chunks = (async function * () {
    for (let i = 0; i < input.length; i += 10000) {
      if (i >= 70000 && fails === 0) { fails++; failNextOnDs1 = 1 }
      yield input.subarray(i, i + 10000)
    }
  })()
  const st = await client.put('/big', Readable.from(chunks), { onProgress: n => progress.push(n) })
  t.equal(st.size, input.length)
  t.ok(commit !== undefined)
  t.same(commit!.blocks.map(b => b.length), [65536, 65536, 65536, 32768])
  t.equal(commit!.size, input.length)
  const back = Buffer.concat(commit!.blocks.map(b => stored.get(b.id)!))
  t.ok(back.equals(input), 'committed blocks hold exactly the input')
  t.equal(addblocks.length, 5, 'one retried block')
  t.equal(progress.at(-1), input.length)
  t.equal(client.openWrites, 0)

  // put with a replayable input: the failed block is re-read from the input at its
  // offset, and nothing is spooled.
  addblocks.length = 0
  const replays: Array<[number, number]> = []
  let fails2 = 0
  const chunks2 = (async function * () {
    for (let i = 0; i < input.length; i += 10000) {
      if (i >= 140000 && fails2 === 0) { fails2++; failNextOnDs1 = 1 }
      yield input.subarray(i, i + 10000)
    }
  })()
  const st2 = await client.put('/big2', Readable.from(chunks2), {
    replay: (offset, length) => {
      replays.push([offset, length])
      return Readable.from([input.subarray(offset, offset + length)])
    },
  })
  t.equal(st2.size, input.length)
  // Which block meets the failure depends on timing (blocks overlap); it is one whole block.
  t.equal(replays.length, 1, 'one block was read again')
  t.ok(replays[0]![0] % 65536 === 0 && replays[0]![1] === 65536, `from its own offset (${String(replays[0])})`)
  t.ok(Buffer.concat(commit!.blocks.map(b => stored.get(b.id)!)).equals(input), 'committed blocks hold exactly the input')
  t.equal(addblocks.length, 5, 'one retried block')

  // An empty put commits an empty block list.
  await client.put('/empty', Readable.from([]))
  t.same(commit!.blocks, [])
  t.equal(commit!.size, 0)
})

t.test('put aborts and rethrows when the input fails', async t => {
  let aborted = 0
  const ds = await fakeServer(t, (req, res) => {
    const id = Number(req.path.split('/').pop())
    json(res, 200, { id, gen: 1, length: req.body.length, stored: ['ds'], failed: [] })
  })
  const ns = await fakeServer(t, (req, res) => {
    if (req.path === '/v1/ns/write/open') { json(res, 200, { writeId: 'w9', ino: 0, replication: 1, blockSize: 65536, blocks: [], size: 0, leaseTimeoutMs: 60000 }); return }
    if (req.path === '/v1/ns/write/addblock') { json(res, 200, { block: { id: 1, gen: 1 }, targets: [{ id: 'ds', address: ds.address }], token: 'w' }); return }
    if (req.path === '/v1/ns/write/abort') { aborted++; json(res, 200, { aborted: true }); return }
    fail(res, 'EINVAL')
  })
  const client = makeClient(t, ns.address)
  const bad = new Readable({ read () {} })
  bad.push(pattern(1000))
  setTimeout(() => bad.destroy(new Error('disk read failed')), 50)
  await t.rejects(client.put('/x', bad), HissError)
  t.equal(aborted, 1, 'the write was aborted')
  t.equal(client.openWrites, 0)
  // An input that fails before the put even reads it: a rejection, never an uncaught error.
  const early = new Readable({ read () {} })
  const p = client.put('/y', early)
  early.destroy(new Error('gone at once'))
  await t.rejects(p, HissError)
  t.equal(aborted, 2)
})

t.test('one lease renewal loop per client, every lease.timeout/3, only while writes are open', async t => {
  const renewals: unknown[] = []
  const ns = await fakeServer(t, (req, res) => {
    if (req.path === '/v1/ns/write/open') { json(res, 200, { writeId: `w${renewals.length}-${Math.random()}`, ino: 3, replication: 1, blockSize: 65536, blocks: [], size: 0, leaseTimeoutMs: 3000 }); return }
    if (req.path === '/v1/ns/write/renew') { renewals.push(JSON.parse(req.body.toString())); json(res, 200, { renewed: 2 }); return }
    if (req.path === '/v1/ns/write/commit') { json(res, 200, { stat: STAT }); return }
    if (req.path === '/v1/ns/write/abort') { json(res, 200, { aborted: true }); return }
    fail(res, 'EINVAL')
  })
  const clock = new ManualClock()
  const client = makeClient(t, ns.address, {}, clock)
  const a = await client.openWrite({ ino: 3 })
  const b = await client.openWrite({ ino: 4 })
  t.equal(clock.pendingTimers(), 1, 'a single timer for two writes')
  clock.advance(999)
  t.equal(renewals.length, 0)
  clock.advance(1)
  for (let i = 0; i < 100 && renewals.length < 1; i++) await new Promise(r => setTimeout(r, 10))
  t.same(renewals, [{ clientId: 'test-client' }])
  await a.commit([])
  t.equal(clock.pendingTimers(), 1, 'still renewing for the other write')
  await b.commit([], { keepOpen: true })
  t.equal(clock.pendingTimers(), 1, 'keepOpen keeps the lease')
  await b.abort()
  t.equal(clock.pendingTimers(), 0, 'loop stopped when no write is open')
})
