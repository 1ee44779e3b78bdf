// The block HTTP API of one DataServer, with no NameServer reachable (the DataServer
// must serve blocks before registration succeeds).
import t from 'tap'
import net from 'node:net'
import { readdir, readFile, stat } from 'node:fs/promises'
import { ManualClock } from '../../../src/common/clock.js'
import { HissError } from '../../../src/common/errors.js'
import { parseConfig } from '../../../src/common/config.js'
import { StorageLayout } from '../../../src/dataserver/storage-layout.js'
import { DataServer } from '../../../src/dataserver/dataserver.js'
import { SMALL_WRITE_BYTES } from '../../../src/dataserver/block-store.js'
import { silentLogger } from '../../../src/common/log.js'
import { bytes, deadAddress, dsConfig, errorCode, startDataServer, type Teardown, getBlock, putBlock, request, token, waitFor } from './helpers.js'
import { flipByte } from '../../helpers/cluster-files.js'

async function startDs (t: Teardown & { testdir: () => string }, root = t.testdir()): Promise<{ ds: DataServer, addr: string, layout: StorageLayout }> {
  const { ds, addr } = await startDataServer(t, root, await deadAddress())
  return { ds, addr, layout: new StorageLayout(root) }
}


t.test('config: the storage directory is required', async t => {
  const cfg = parseConfig({ 'nameserver.address': '127.0.0.1:1', 'cluster.secret': 'x'.repeat(16) })
  t.throws(() => new DataServer(cfg), { code: 'CONFIG', message: /dataserver\.root\.dir/ })
  const noSecret = parseConfig({ 'nameserver.address': '127.0.0.1:1', 'dataserver.root.dir': t.testdir() })
  t.throws(() => new DataServer(noSecret), { code: 'CONFIG', message: /cluster\.secret/ })
})

t.test('ping, write, read ranges, id kept across restarts', async t => {
  const root = t.testdir()
  const first = await startDs(t, root)
  const ping = await request(first.addr, { method: 'GET', path: '/v1/ping' })
  t.same(JSON.parse(ping.body.toString()), { ok: true, id: first.ds.id })
  const data = bytes(3000, 7)
  const put = await putBlock(first.addr, 12, 1, data, { 'x-hiss-block-length': '3000' })
  t.equal(put.status, 200)
  t.same(JSON.parse(put.body.toString()), { id: 12, gen: 1, length: 3000, stored: [first.ds.id], failed: [] })
  const again = await putBlock(first.addr, 12, 1, bytes(3000, 8))
  t.equal(again.status, 409)
  t.equal(errorCode(again), 'EEXIST')

  const whole = await getBlock(first.addr, 12, 1)
  t.equal(whole.status, 200)
  t.equal(whole.headers['content-length'], '3000')
  t.equal(whole.headers['x-hiss-block-length'], '3000')
  t.ok(whole.body.equals(data))
  const part = await getBlock(first.addr, 12, 1, '&offset=1000&length=700')
  t.ok(part.body.equals(data.subarray(1000, 1700)))
  const tail = await getBlock(first.addr, 12, 1, '&offset=2990')
  t.ok(tail.body.equals(data.subarray(2990)))
  const past = await getBlock(first.addr, 12, 1, '&offset=2000&length=1001')
  t.equal(past.status, 416)
  t.equal(errorCode(past), 'ERANGE')
  t.equal((await getBlock(first.addr, 13, 1)).status, 404)
  t.equal(errorCode(await getBlock(first.addr, 12, 2)), 'STALE_REPLICA')

  const id = first.ds.id
  await first.ds.close()
  await first.ds.close() // idempotent
  const second = await startDs(t, root)
  t.equal(second.ds.id, id, 'same id after restart')
  t.equal((await readFile(`${root}/id`, 'utf8')).trim(), id)
  t.ok((await getBlock(second.addr, 12, 1)).body.equals(data), 'block still there after restart')
})

t.test('a block of zeros (x-hiss-zero-length): no body, a sparse replica, reads back as zeros; malformed ones refused', async t => {
  const { addr, layout } = await startDs(t)
  const n = 8 * 1024 * 1024 + 123
  const put = await putBlock(addr, 40, 1, Buffer.alloc(0), { 'x-hiss-zero-length': String(n) })
  t.equal(put.status, 200, put.body.toString())
  t.match(JSON.parse(put.body.toString()), { id: 40, gen: 1, length: n })
  const data = await stat(layout.dataPath(40, 1))
  t.equal(data.size, n, 'the data file has the block length')
  t.ok(data.blocks * 512 < 1024 * 1024, `and is sparse on disk (${data.blocks * 512} bytes allocated)`)
  const whole = await getBlock(addr, 40, 1)
  t.equal(whole.status, 200)
  t.ok(whole.body.equals(Buffer.alloc(n)), 'reads back as zeros, checksums verified')
  const part = await getBlock(addr, 40, 1, '&offset=5000000&length=100')
  t.ok(part.body.equals(Buffer.alloc(100)), 'a range too')

  const withBody = await putBlock(addr, 41, 1, bytes(10), { 'x-hiss-zero-length': '10' })
  t.equal(withBody.status, 400, 'a body with it is refused')
  const both = await putBlock(addr, 42, 1, Buffer.alloc(0), { 'x-hiss-zero-length': '10', 'x-hiss-block-length': '10' })
  t.equal(both.status, 400, 'with x-hiss-block-length too: refused')
  const bad = await putBlock(addr, 43, 1, Buffer.alloc(0), { 'x-hiss-zero-length': '-5' })
  t.equal(bad.status, 400, 'a malformed length is refused')
  const huge = await putBlock(addr, 44, 1, Buffer.alloc(0), { 'x-hiss-zero-length': String(2 ** 33) })
  t.equal(huge.status, 413, 'over the largest block: refused')
  for (const id of [41, 42, 43, 44]) t.equal((await getBlock(addr, id, 1)).status, 404, `block ${id} was not stored`)

  // A dead hop in its pipeline: this DataServer still stores it and names the hop failed.
  const dead = await deadAddress()
  const piped = await putBlock(addr, 45, 1, Buffer.alloc(0), { 'x-hiss-zero-length': '5000', 'x-hiss-pipeline': dead, 'x-hiss-pipeline-ids': 'gone-ds' })
  t.equal(piped.status, 200, piped.body.toString())
  const reply = JSON.parse(piped.body.toString()) as { stored: string[], failed: string[], length: number }
  t.same([reply.length, reply.failed], [5000, ['gone-ds']], 'stored here, the dead hop reported failed')
  t.ok((await getBlock(addr, 45, 1)).body.equals(Buffer.alloc(5000)), 'and it reads back as zeros')
})

t.test('one dataserver per storage directory', async t => {
  const root = t.testdir()
  await startDs(t, root)
  const twin = new DataServer(dsConfig(root, await deadAddress()), { log: silentLogger })
  t.teardown(() => twin.close())
  await t.rejects(twin.start(), { code: 'EBUSY' })
})

t.test('tokens: every bad token is 403 and changes nothing', async t => {
  const { addr, layout } = await startDs(t)
  const original = bytes(1000, 1)
  t.equal((await putBlock(addr, 5, 2, original)).status, 200)
  const other = bytes(1000, 2)
  const past = Date.now() - 1000
  const cases: Array<[string, Record<string, string>]> = [
    ['no token', {}],
    ['forged (other secret)', { 'x-hiss-token': token(5, 2, 'w', { secret: 'another-secret-0123456789' }) }],
    ['garbage', { 'x-hiss-token': 'not.a-token' }],
    ['expired', { 'x-hiss-token': token(5, 2, 'w', { expires: past }) }],
    ['read token used to write', { 'x-hiss-token': token(5, 2, 'r') }],
    ['token for another block', { 'x-hiss-token': token(6, 2, 'w') }],
    ['token for another generation', { 'x-hiss-token': token(5, 3, 'w') }],
  ]
  for (const [what, headers] of cases) {
    const r = await request(addr, { method: 'PUT', path: '/v1/blocks/5?gen=2', headers, body: other })
    t.equal(r.status, 403, `PUT: ${what}`)
    t.equal(errorCode(r), 'BAD_TOKEN', `PUT: ${what}`)
  }
  // A refused write of a new block creates no file at all.
  const fresh = await request(addr, { method: 'PUT', path: '/v1/blocks/99?gen=1', headers: { 'x-hiss-token': token(99, 1, 'r') }, body: other })
  t.equal(fresh.status, 403)
  t.same(await readdir(layout.tmpDir), [])
  t.same(await readdir(layout.subdir(99)), [])

  for (const [what, tok] of [
    ['no token', undefined],
    ['forged', token(5, 2, 'r', { secret: 'another-secret-0123456789' })],
    ['expired', token(5, 2, 'r', { expires: past })],
    ['another block', token(4, 2, 'r')],
    ['another generation', token(5, 1, 'r')],
  ] as const) {
    const r = await request(addr, { method: 'GET', path: '/v1/blocks/5?gen=2', headers: tok === undefined ? {} : { 'x-hiss-token': tok } })
    t.equal(r.status, 403, `GET: ${what}`)
    t.equal(r.body.includes(original.subarray(0, 16)), false, `GET ${what}: no block bytes`)
  }
  const w = await request(addr, { method: 'GET', path: '/v1/blocks/5?gen=2', headers: { 'x-hiss-token': token(5, 2, 'w') } })
  t.ok(w.body.equals(original), 'a write token also reads; the block is unchanged')
})

t.test('bad block ids, generations and ranges are 400 and read nothing', async t => {
  const { addr } = await startDs(t)
  await putBlock(addr, 1000, 1, bytes(100))
  for (const id of ['..%2F..%2Fetc%2Fpasswd', '-1', '1e3', '0x10', '1.5', '%00', '12345678901234567', '+5', '%20100']) {
    const r = await request(addr, { method: 'GET', path: `/v1/blocks/${id}?gen=1`, headers: { 'x-hiss-token': token(1000, 1, 'r') } })
    t.equal(r.status, 400, `GET id ${id}`)
    t.equal(errorCode(r), 'EINVAL')
    const w = await request(addr, { method: 'PUT', path: `/v1/blocks/${id}?gen=1`, headers: { 'x-hiss-token': token(1000, 1, 'w') }, body: bytes(10) })
    t.equal(w.status, 400, `PUT id ${id}`)
  }
  const raw = await request(addr, { method: 'GET', path: '/v1/blocks/../../etc/passwd?gen=1', headers: { 'x-hiss-token': token(1000, 1, 'r') } })
  t.not(raw.status, 200)
  t.notMatch(raw.body.toString(), /root:/)
  for (const q of ['gen=abc', 'gen=-1', 'gen=1&gen=2', '']) {
    const r = await request(addr, { method: 'GET', path: `/v1/blocks/1000?${q}`, headers: { 'x-hiss-token': token(1000, 1, 'r') } })
    t.equal(r.status, 400, `query ${q}`)
  }
  for (const q of ['&offset=-1', '&length=abc', '&offset=1e2']) {
    t.equal((await getBlock(addr, 1000, 1, q)).status, 400, `range ${q}`)
  }
  const mismatch = await putBlock(addr, 1001, 1, bytes(100), { 'x-hiss-block-length': '99' })
  t.equal(mismatch.status, 400, 'announced length differs from Content-Length')
  const pipe = await putBlock(addr, 1002, 1, bytes(100), { 'x-hiss-pipeline': '127.0.0.1:1,127.0.0.1:2', 'x-hiss-pipeline-ids': 'a' })
  t.equal(pipe.status, 400, 'pipeline lists of different lengths')
  t.equal((await getBlock(addr, 1001, 1)).status, 404, 'nothing stored by refused writes')
  t.equal((await getBlock(addr, 1002, 1)).status, 404)
})

t.test('a body that ends early stores nothing and leaves no temp file', async t => {
  const { addr, layout } = await startDs(t)
  const [host, port] = addr.split(':')
  const cut = async (id: number, announced: number): Promise<net.Socket> => {
    const sock = net.connect(Number(port), host)
    await new Promise<void>(resolve => sock.once('connect', () => resolve()))
    sock.write(`PUT /v1/blocks/${id}?gen=1 HTTP/1.1\r\nHost: x\r\nx-hiss-token: ${token(id, 1, 'w')}\r\nContent-Length: ${announced}\r\n\r\n`)
    sock.write(bytes(3000))
    return sock
  }
  // A large block streams to a temp file as it arrives.
  const big = await cut(77, SMALL_WRITE_BYTES + 10000)
  await waitFor(async () => (await readdir(layout.tmpDir)).length > 0, 5000, 'the temp file to appear')
  big.destroy()
  await waitFor(async () => (await readdir(layout.tmpDir)).length === 0, 5000, 'the temp file to be removed')
  t.same(await readdir(layout.subdir(77)), [])
  t.equal((await getBlock(addr, 77, 1)).status, 404)
  t.equal((await putBlock(addr, 77, 1, bytes(10))).status, 200, 'the block can be written afterwards')
  // A small one is gathered in memory: no file at all until its last byte is in.
  const small = await cut(78, 10000)
  await new Promise(resolve => setTimeout(resolve, 200))
  t.same(await readdir(layout.tmpDir), [], 'no temp file for a small block in flight')
  small.destroy()
  await new Promise(resolve => setTimeout(resolve, 200))
  t.same(await readdir(layout.tmpDir), [])
  t.same(await readdir(layout.subdir(78)), [])
  t.equal((await getBlock(addr, 78, 1)).status, 404)
  t.equal((await putBlock(addr, 78, 1, bytes(10))).status, 200, 'the small block can be written afterwards')
  // The same without a length (chunked): gathered in memory while it stays small.
  const sock = net.connect(Number(port), host)
  await new Promise<void>(resolve => sock.once('connect', () => resolve()))
  sock.write(`PUT /v1/blocks/79?gen=1 HTTP/1.1\r\nHost: x\r\nx-hiss-token: ${token(79, 1, 'w')}\r\nTransfer-Encoding: chunked\r\n\r\n`)
  sock.write(`bb8\r\n${'x'.repeat(3000)}\r\n`)
  await new Promise(resolve => setTimeout(resolve, 200))
  t.same(await readdir(layout.tmpDir), [], 'no temp file for a small chunked block in flight')
  sock.destroy()
  await new Promise(resolve => setTimeout(resolve, 200))
  t.same(await readdir(layout.subdir(79)), [])
  t.equal((await getBlock(addr, 79, 1)).status, 404)
})

t.test('corruption on disk: the read is cut short, then refused; scanNow finds the rest', async t => {
  const { ds, addr, layout } = await startDs(t)
  const data = bytes(4096, 3)
  for (const id of [40, 41, 42]) t.equal((await putBlock(addr, id, 1, data)).status, 200)
  await flipByte(layout.dataPath(40, 1), 3 * 512 + 10)
  const cut = await getBlock(addr, 40, 1)
  t.equal(cut.status, 200, 'the first chunks verified, so the response started')
  t.equal(cut.complete, false, 'the response is cut short')
  t.equal(cut.body.length, 3 * 512, 'only the verified chunks were sent')
  t.ok(cut.body.equals(data.subarray(0, 3 * 512)))
  const refused = await getBlock(addr, 40, 1)
  t.equal(refused.status, 500)
  t.equal(errorCode(refused), 'CHECKSUM_MISMATCH')

  await flipByte(layout.dataPath(41, 1), 0)
  const first = await getBlock(addr, 41, 1, '&offset=0&length=10')
  t.equal(errorCode(first), 'CHECKSUM_MISMATCH', 'bad from the first chunk: an error reply, no bytes')

  await t.resolveMatch(ds.scanNow(), { scanned: 1, corrupt: 0 }, 'only block 42 is still served')
  t.ok((await getBlock(addr, 42, 1)).body.equals(data))
  await flipByte(layout.dataPath(42, 1), 4095)
  await t.resolveMatch(ds.scanNow(), { scanned: 1, corrupt: 1 })
  t.equal(errorCode(await getBlock(addr, 42, 1)), 'CHECKSUM_MISMATCH')
  await t.resolveMatch(ds.scanNow(), { scanned: 0, corrupt: 0 })
})

t.test('the background scanner runs on the injected clock', async t => {
  const root = t.testdir()
  const clock = new ManualClock()
  const { ds, addr } = await startDataServer(t, root, await deadAddress(), { 'scanner.interval.ms': 60000 }, clock)
  const layout = new StorageLayout(root)
  const data = bytes(2048, 4)
  const write = await request(addr, { method: 'PUT', path: '/v1/blocks/50?gen=1', headers: { 'x-hiss-token': token(50, 1, 'w', { expires: clock.wallNow() + 60000 }) }, body: data })
  t.equal(write.status, 200)
  await flipByte(layout.dataPath(50, 1), 100)
  clock.advance(59999)
  t.equal((await ds.storageReport()).used, 2048, 'not scanned before the interval')
  clock.advance(1)
  await waitFor(async () => (await ds.storageReport()).used === 0, 5000, 'the scanner to quarantine the replica')
  const r = await request(addr, { method: 'GET', path: '/v1/blocks/50?gen=1', headers: { 'x-hiss-token': token(50, 1, 'r', { expires: clock.wallNow() + 60000 }) } })
  t.equal(errorCode(r), 'CHECKSUM_MISMATCH')
})

t.test('beyond 64 concurrent streams a request gets EAGAIN (503)', async t => {
  const { ds, addr } = await startDs(t)
  t.equal((await putBlock(addr, 60, 1, bytes(100))).status, 200)
  const [host, port] = addr.split(':')
  const socks: net.Socket[] = []
  t.teardown(() => { for (const s of socks) s.destroy() })
  for (let i = 0; i < 64; i++) {
    const s = net.connect(Number(port), host)
    s.on('error', () => {})
    s.write(`PUT /v1/blocks/${1000 + i}?gen=1 HTTP/1.1\r\nHost: x\r\nx-hiss-token: ${token(1000 + i, 1, 'w')}\r\nContent-Length: 100\r\n\r\nx`)
    socks.push(s)
  }
  await waitFor(async () => (await ds.storageReport()).activeStreams === 64, 10000, '64 streams in progress')
  const busy = await getBlock(addr, 60, 1)
  t.equal(busy.status, 503)
  t.equal(errorCode(busy), 'EAGAIN')
  t.equal(errorCode(await putBlock(addr, 61, 1, bytes(10))), 'EAGAIN')
  for (const s of socks) s.destroy()
  await waitFor(async () => (await ds.storageReport()).activeStreams === 0, 10000, 'streams to end')
  t.equal((await getBlock(addr, 60, 1)).status, 200, 'served again once streams ended')
})

t.test('HissError codes keep their HTTP status', async t => {
  // Guards the mapping the client relies on for the DataServer's refusals.
  t.equal(new HissError('BAD_TOKEN').http, 403)
  t.equal(new HissError('ERANGE').http, 416)
  t.equal(new HissError('ENOSPC').http, 507)
  t.equal(new HissError('EAGAIN').http, 503)
})
