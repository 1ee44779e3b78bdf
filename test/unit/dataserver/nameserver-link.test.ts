// The DataServer's incremental reports: a block write is acknowledged without waiting
// for its `received` report, and reports queued while one is in flight go out together
// in the next one; a failed report is retried with the next heartbeat. Against a fake
// NameServer (a plain HTTP server) that records every call and can hold replies.
import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { ManualClock } from '../../../src/common/clock.js'
import { silentLogger } from '../../../src/common/log.js'
import type { ReplicaTuple } from '../../../src/common/protocol.js'
import { NameServerLink } from '../../../src/dataserver/nameserver-link.js'
import { Transport } from '../../../src/dataserver/transport.js'
import { bytes, putBlock, startDataServer, waitFor, TEST_SECRET, type Teardown } from './helpers.js'

interface Call { path: string, body: { received?: ReplicaTuple[], deleted?: unknown[] }, answer: (status?: number) => void }

/** A NameServer stand-in: answers register/heartbeat/blockreport; incremental replies wait for `hold` to be false. */
async function fakeNameServer (t: Teardown) {
  const calls: Call[] = []
  const state = { hold: false, failNext: 0 }
  const held: Call[] = []
  const srv = http.createServer((req, res) => {
    let raw = ''
    req.on('data', (d: Buffer) => { raw += d.toString() })
    req.on('end', () => {
      const path = req.url ?? ''
      const answer = (status = 200): void => {
        res.writeHead(status, { 'content-type': 'application/json' })
        res.end(status === 200
          ? JSON.stringify(path === '/v1/ds/heartbeat' ? { commands: [] } : path === '/v1/ds/register' ? { ok: true, blockReportNow: true } : { ok: true })
          : JSON.stringify({ error: { code: 'EIO', message: 'injected' } }))
      }
      const call: Call = { path, body: raw === '' ? {} : JSON.parse(raw), answer }
      calls.push(call)
      if (path !== '/v1/ds/incremental') { answer(); return }
      if (state.failNext > 0) { state.failNext--; answer(500); return }
      if (state.hold) held.push(call)
      else answer()
    })
  })
  await new Promise<void>(resolve => srv.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => {
    for (const c of held.splice(0)) c.answer()
    srv.closeAllConnections()
    srv.close(() => resolve())
  }))
  const incremental = (): Call[] => calls.filter(c => c.path === '/v1/ds/incremental')
  const release = (): void => { for (const c of held.splice(0)) c.answer() }
  return { address: `127.0.0.1:${(srv.address() as AddressInfo).port}`, calls, state, held, incremental, release }
}

function newLink (t: Teardown, nameserver: string, clock: ManualClock): NameServerLink {
  const transport = new Transport({ tls: false })
  const link = new NameServerLink({
    id: 'ds-test',
    address: () => '127.0.0.1:1',
    nameserver,
    secret: TEST_SECRET,
    clock,
    transport,
    heartbeatMs: 1000,
    blockReportMs: 3_600_000,
    timeoutMs: 5000,
    storage: async () => ({ capacity: 100, used: 0, remaining: 100, activeStreams: 0 }),
    replicas: () => [],
    blockCount: () => 0,
    onCommands: () => {},
    log: silentLogger,
  })
  t.teardown(async () => { await link.stop({ unregister: false }); transport.close() })
  return link
}

/** A fake NameServer and a link to it on a manual clock, once registered. */
async function registeredLink (t: Teardown): Promise<{ ns: Awaited<ReturnType<typeof fakeNameServer>>, clock: ManualClock, link: NameServerLink }> {
  const ns = await fakeNameServer(t)
  const clock = new ManualClock()
  const link = newLink(t, ns.address, clock)
  link.start()
  await waitFor(() => link.registered, 5000, 'registration')
  return { ns, clock, link }
}

t.test('received reports are queued while one is in flight and sent together in the next', async t => {
  const { ns, link } = await registeredLink(t)
  ns.state.hold = true
  t.equal(link.reportReceived([1, 1, 10]) as unknown, undefined, 'reporting does not return a promise to wait on')
  await waitFor(() => ns.held.length === 1, 5000, 'the first incremental report')
  t.same(ns.held[0]!.body.received, [[1, 1, 10]], 'the first report goes out at once, alone')
  link.reportReceived([2, 1, 20])
  link.reportReceived([3, 1, 30])
  link.reportDeleted(9, 1)
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(ns.incremental().length, 1, 'nothing else is sent while the first report is in flight')
  ns.state.hold = false
  ns.release()
  await waitFor(() => ns.incremental().length === 2, 5000, 'the second incremental report')
  const second = ns.incremental()[1]!.body
  t.same(second.received, [[2, 1, 20], [3, 1, 30]], 'the reports queued meanwhile go out in one call')
  t.same(second.deleted, [[9, 1]])
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(ns.incremental().length, 2, 'and nothing is sent twice')
})

t.test('a failed received report is retried with the next heartbeat', async t => {
  const { ns, clock, link } = await registeredLink(t)
  ns.state.failNext = 1
  link.reportReceived([7, 2, 70])
  await waitFor(() => ns.incremental().length === 1, 5000, 'the failing report')
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(ns.incremental().length, 1, 'no hot retry loop')
  clock.advance(1000)
  await waitFor(() => ns.incremental().length === 2, 5000, 'the retry with the heartbeat')
  t.same(ns.incremental()[1]!.body.received, [[7, 2, 70]], 'the same replica is reported again')
})

t.test('a block write is acknowledged while its received report is still unanswered', async t => {
  const ns = await fakeNameServer(t)
  const { ds, addr } = await startDataServer(t, t.testdir(), ns.address, { 'heartbeat.interval.ms': 3_600_000 })
  await waitFor(() => ds.registered, 5000, 'registration')
  ns.state.hold = true
  const data = bytes(4096, 3)
  const started = Date.now()
  const r = await putBlock(addr, 77, 1, data)
  t.equal(r.status, 200, 'acknowledged')
  t.ok(Date.now() - started < 4000, 'well before the report could time out')
  await waitFor(() => ns.held.length === 1, 5000, 'the report')
  t.same(ns.held[0]!.body.received, [[77, 1, 4096]], 'and the NameServer is told about the replica')
  ns.state.hold = false
  ns.release()
})
