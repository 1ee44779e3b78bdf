// Write pipelines between real DataServers on loopback (no NameServer reachable: a
// DataServer stores and forwards blocks before it has registered).
import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { readdir } from 'node:fs/promises'
import { StorageLayout } from '../../src/dataserver/storage-layout.js'
import { FAN_OUT_MAX_BYTES } from '../../src/dataserver/block-receiver.js'
import { bytes, deadAddress, errorCode, getBlock, putBlock, startDataServer, token, waitFor, type Teardown } from '../unit/dataserver/helpers.js'

function pipelineHeaders (hops: Array<{ addr: string, id: string }>): Record<string, string> {
  return { 'x-hiss-pipeline': hops.map(h => h.addr).join(','), 'x-hiss-pipeline-ids': hops.map(h => h.id).join(',') }
}

/** PUT without a length (chunked), written in pieces of `piece` bytes: what the mount sends. */
function chunkedPut (addr: string, id: number, data: Buffer, headers: Record<string, string>, piece = 1000): Promise<{ status: number, body: string }> {
  const [host, port] = addr.split(':')
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port: Number(port), method: 'PUT', path: `/v1/blocks/${id}?gen=1`, headers: { 'x-hiss-token': token(id, 1, 'w'), ...headers } }, res => {
      let body = ''
      res.on('data', (d: Buffer) => { body += d.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    for (let off = 0; off < data.length; off += piece) req.write(data.subarray(off, off + piece))
    req.end()
  })
}

async function three (t: Teardown & { testdir: () => string }) {
  const ns = await deadAddress()
  const dir = t.testdir()
  const roots = ['a', 'b', 'c'].map(n => join(dir, n))
  const servers = []
  for (const root of roots) {
    const { ds, addr } = await startDataServer(t, root, ns)
    servers.push({ ds, addr, id: ds.id, layout: new StorageLayout(root) })
  }
  return servers as [typeof servers[0], typeof servers[0], typeof servers[0]]
}

t.test('a pipeline PUT stores the block on every hop', async t => {
  const [a, b, c] = await three(t)
  const data = bytes(10000, 4)
  const r = await putBlock(a.addr, 100, 1, data, pipelineHeaders([b, c]))
  t.equal(r.status, 200)
  t.same(JSON.parse(r.body.toString()), { id: 100, gen: 1, length: 10000, stored: [a.id, b.id, c.id], failed: [] })
  for (const s of [a, b, c]) t.ok((await getBlock(s.addr, 100, 1)).body.equals(data), `stored on ${s.addr}`)
})

t.test('a dead or refusing downstream is reported in `failed`; this hop still succeeds', async t => {
  const [a, b] = await three(t)
  const ghost = { addr: await deadAddress(), id: 'ghost-dataserver' }
  const data = bytes(3000, 5)

  const r1 = await putBlock(a.addr, 200, 1, data, pipelineHeaders([ghost]))
  t.equal(r1.status, 200)
  t.same(JSON.parse(r1.body.toString()), { id: 200, gen: 1, length: 3000, stored: [a.id], failed: [ghost.id] })

  const r2 = await putBlock(a.addr, 201, 1, data, pipelineHeaders([b, ghost]))
  t.same(JSON.parse(r2.body.toString()), { id: 201, gen: 1, length: 3000, stored: [a.id, b.id], failed: [ghost.id] })
  t.ok((await getBlock(b.addr, 201, 1)).body.equals(data))

  // A newer generation through the same pipeline replaces the old replica on both.
  const r3 = await putBlock(a.addr, 201, 2, bytes(3000, 6), { ...pipelineHeaders([b]), 'x-hiss-token': token(201, 2, 'w') })
  t.same(JSON.parse(r3.body.toString()), { id: 201, gen: 2, length: 3000, stored: [a.id, b.id], failed: [] })
  // b already holds 203 (EEXIST): a still stores it and names b as failed.
  t.equal((await putBlock(b.addr, 203, 1, data)).status, 200)
  const r5 = await putBlock(a.addr, 203, 1, data, pipelineHeaders([b]))
  t.equal(r5.status, 200)
  t.same(JSON.parse(r5.body.toString()), { id: 203, gen: 1, length: 3000, stored: [a.id], failed: [b.id] })
  // A large block goes along the chain: a dead hop cuts off the hops behind it too.
  const large = bytes(FAN_OUT_MAX_BYTES + 1, 7)
  const r4 = await putBlock(a.addr, 202, 1, large, pipelineHeaders([ghost, b]))
  t.same(JSON.parse(r4.body.toString()), { id: 202, gen: 1, length: large.length, stored: [a.id], failed: [ghost.id, b.id] }, 'every target not holding the block is in failed')
  t.equal((await getBlock(b.addr, 202, 1)).status, 404)
  // A small block goes to every hop at once: a dead hop costs only itself.
  const r6 = await putBlock(a.addr, 204, 1, data, pipelineHeaders([ghost, b]))
  t.same(JSON.parse(r6.body.toString()), { id: 204, gen: 1, length: 3000, stored: [a.id, b.id], failed: [ghost.id] }, 'small block: the hop behind the dead one still stores it')
  t.ok((await getBlock(b.addr, 204, 1)).body.equals(data))
})

t.test('a small block is sent to every hop at once; a large one along the chain', async t => {
  const [a, b, c] = await three(t)
  // A proxy in front of b records the pipeline each PUT asks b to forward to: along the
  // chain b is told to send on to c; with fan-out, a sends to c itself and b forwards nothing.
  const forwards: string[] = []
  const lengths: string[] = []
  const proxy = http.createServer((req, res) => {
    forwards.push(String(req.headers['x-hiss-pipeline-ids'] ?? ''))
    lengths.push(String(req.headers['content-length']))
    const up = http.request({ host: '127.0.0.1', port: Number(b.addr.split(':')[1]), method: req.method, path: req.url, headers: req.headers }, r => {
      res.writeHead(r.statusCode ?? 502, r.headers)
      r.pipe(res)
    })
    req.pipe(up)
  })
  await new Promise<void>(resolve => proxy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { proxy.closeAllConnections(); proxy.close(() => resolve()) }))
  const bViaProxy = { addr: `127.0.0.1:${(proxy.address() as AddressInfo).port}`, id: b.id }
  const small = bytes(4096, 8)
  const r1 = await putBlock(a.addr, 400, 1, small, pipelineHeaders([bViaProxy, c]))
  t.same(JSON.parse(r1.body.toString()), { id: 400, gen: 1, length: 4096, stored: [a.id, b.id, c.id], failed: [] })
  t.same(forwards, [''], 'small block: b is not asked to forward')
  const large = bytes(FAN_OUT_MAX_BYTES + 1, 9)
  const r2 = await putBlock(a.addr, 401, 1, large, pipelineHeaders([bViaProxy, c]))
  t.same(JSON.parse(r2.body.toString()), { id: 401, gen: 1, length: large.length, stored: [a.id, b.id, c.id], failed: [] })
  t.same(forwards, ['', c.id], 'large block: b forwards to c')
  // Without a length (chunked, as the mount streams): held until it ends within the
  // fan-out size, then sent on with its length; past it, along the chain.
  const r3 = await chunkedPut(a.addr, 402, small, pipelineHeaders([bViaProxy, c]))
  t.same(JSON.parse(r3.body), { id: 402, gen: 1, length: 4096, stored: [a.id, b.id, c.id], failed: [] })
  t.same(forwards, ['', c.id, ''], 'small chunked block: fan-out')
  t.equal(lengths.at(-1), '4096', 'and forwarded with its length')
  const r4 = await chunkedPut(a.addr, 403, large, pipelineHeaders([bViaProxy, c]), 65536)
  t.same(JSON.parse(r4.body), { id: 403, gen: 1, length: large.length, stored: [a.id, b.id, c.id], failed: [] })
  t.same(forwards, ['', c.id, '', c.id], 'large chunked block: chain')
  t.equal(lengths.at(-1), 'undefined', 'forwarded without a length')
  for (const s of [a, b, c]) {
    t.ok((await getBlock(s.addr, 402, 1)).body.equals(small), `small chunked block on ${s.addr}`)
    t.ok((await getBlock(s.addr, 403, 1)).body.equals(large), `large chunked block on ${s.addr}`)
  }
  for (const s of [a, b, c]) {
    t.ok((await getBlock(s.addr, 400, 1)).body.equals(small), `small block on ${s.addr}`)
    t.ok((await getBlock(s.addr, 401, 1)).body.equals(large), `large block on ${s.addr}`)
  }
})

t.test('a pipeline naming the same dataserver twice is refused', async t => {
  const [a, b] = await three(t)
  const r = await putBlock(a.addr, 300, 1, bytes(10), pipelineHeaders([b, a]))
  t.equal(r.status, 400)
  t.equal(errorCode(r), 'BAD_REQUEST')
  t.equal((await getBlock(b.addr, 300, 1)).status, 404)
})

t.test('a streamed (chunked) upload of several MiB crosses the pipeline intact', async t => {
  const [a, b, c] = await three(t)
  const size = 6 * 1024 * 1024 + 123
  const data = bytes(size, 8)
  const [host, port] = a.addr.split(':')
  const reply = await new Promise<{ status: number, body: string }>((resolve, reject) => {
    const req = http.request({ host, port: Number(port), method: 'PUT', path: '/v1/blocks/400?gen=3', headers: { 'x-hiss-token': token(400, 3, 'w'), ...pipelineHeaders([b, c]) } }, res => {
      let body = ''
      res.on('data', (d: Buffer) => { body += d.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    let off = 0
    const pump = (): void => {
      while (off < size) {
        const n = Math.min(64 * 1024 + 7, size - off)
        const ok = req.write(data.subarray(off, off + n))
        off += n
        if (!ok) { req.once('drain', pump); return }
      }
      req.end()
    }
    pump()
  })
  t.equal(reply.status, 200, reply.body)
  t.same(JSON.parse(reply.body).stored, [a.id, b.id, c.id])
  for (const s of [a, b, c]) {
    const g = await getBlock(s.addr, 400, 3)
    t.equal(g.body.length, size)
    t.ok(g.body.equals(data), `intact on ${s.addr}`)
  }
})

t.test('an upstream that dies mid-block leaves no temp file on any hop', async t => {
  const [a, b] = await three(t)
  const [host, port] = a.addr.split(':')
  const req = http.request({ host, port: Number(port), method: 'PUT', path: '/v1/blocks/500?gen=1', headers: { 'x-hiss-token': token(500, 1, 'w'), ...pipelineHeaders([b]) } })
  req.on('error', () => {})
  // Past the size held back before forwarding (FAN_OUT_MAX_BYTES): it streams down the pipeline.
  req.write(bytes(FAN_OUT_MAX_BYTES + 50000))
  await waitFor(async () => (await readdir(b.layout.tmpDir)).length > 0, 5000, 'the downstream temp file')
  req.destroy()
  await waitFor(async () => (await readdir(a.layout.tmpDir)).length === 0 && (await readdir(b.layout.tmpDir)).length === 0, 5000, 'temp files to go')
  t.equal((await getBlock(a.addr, 500, 1)).status, 404)
  t.equal((await getBlock(b.addr, 500, 1)).status, 404)
  // A small one dies while still held: nothing reached b, nothing is stored anywhere.
  const small = http.request({ host, port: Number(port), method: 'PUT', path: '/v1/blocks/501?gen=1', headers: { 'x-hiss-token': token(501, 1, 'w'), ...pipelineHeaders([b]) } })
  small.on('error', () => {})
  small.write(bytes(3000))
  await new Promise(resolve => setTimeout(resolve, 200))
  small.destroy()
  await new Promise(resolve => setTimeout(resolve, 200))
  for (const s of [a, b]) {
    t.same(await readdir(s.layout.tmpDir), [], `no temp file on ${s.addr}`)
    t.equal((await getBlock(s.addr, 501, 1)).status, 404)
  }
  t.equal((await putBlock(a.addr, 501, 1, bytes(10), pipelineHeaders([b]))).status, 200, 'the block can be written afterwards')
})
