// DataServers with a real NameServer on loopback: registration, synchronous received
// reports (a commit right after the PUT succeeds), corruption found by the scanner is
// reported and repaired by re-replication, deletes, unregister, restart with a full
// report, and registration retried until a late NameServer appears.
import t from 'tap'
import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { parseConfig } from '../../src/common/config.js'
import { silentLogger } from '../../src/common/log.js'
import type { AddBlockReply, BlocksReply, ReportReply, WriteBlockReply, WriteOpenReply } from '../../src/common/protocol.js'
import { NameServer } from '../../src/nameserver/nameserver.js'
import { StorageLayout } from '../../src/dataserver/storage-layout.js'
import type { DataServer } from '../../src/dataserver/dataserver.js'
import { TEST_SECRET, bytes, deadAddress, getBlock, request, startDataServer, waitFor, type Teardown } from '../unit/dataserver/helpers.js'
import { flipByte } from '../helpers/cluster-files.js'

const FAST = {
  'heartbeat.interval.ms': 100,
  'replication.interval.ms': 100,
  'safemode.extension.ms': 0,
}

async function startNameServer (t: Teardown, root: string, address = '127.0.0.1:0', extra: Record<string, unknown> = {}): Promise<{ ns: NameServer, addr: string }> {
  const ns = new NameServer(parseConfig({
    'nameserver.address': address,
    'nameserver.root.dir': root,
    'cluster.secret': TEST_SECRET,
    'replication': 2,
    'block.size': 65536,
    'checksum.chunk.bytes': 512,
    'heartbeat.dead.ms': 60000,
    ...FAST,
    ...extra,
  }), { log: silentLogger })
  t.teardown(() => ns.close())
  return { ns, addr: await ns.start() }
}

async function nsCall<T> (addr: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const r = await request(addr, {
    method,
    path,
    headers: { 'x-hiss-uid': '0', 'x-hiss-gids': '0', 'content-type': 'application/json' },
    body: body === undefined ? undefined : Buffer.from(JSON.stringify(body)),
  })
  const json = JSON.parse(r.body.toString()) as T
  if (r.status !== 200) throw new Error(`${method} ${path}: HTTP ${r.status} ${r.body.toString()}`)
  return json
}

const report = (addr: string): Promise<ReportReply> => nsCall<ReportReply>(addr, 'GET', '/v1/admin/report')

/** Write a one-block file the way a client does: open, addblock, pipeline PUT, commit. */
async function writeFile (nsAddr: string, path: string, data: Buffer): Promise<{ put: WriteBlockReply, alloc: AddBlockReply }> {
  const open = await nsCall<WriteOpenReply>(nsAddr, 'POST', '/v1/ns/write/open', { path, clientId: 'dataserver-test', create: true, replication: 2 })
  const alloc = await nsCall<AddBlockReply>(nsAddr, 'POST', '/v1/ns/write/addblock', { writeId: open.writeId })
  const [first, ...rest] = alloc.targets
  const r = await request(first!.address, {
    method: 'PUT',
    path: `/v1/blocks/${alloc.block.id}?gen=${alloc.block.gen}`,
    headers: {
      'x-hiss-token': alloc.token,
      'x-hiss-pipeline': rest.map(x => x.address).join(','),
      'x-hiss-pipeline-ids': rest.map(x => x.id).join(','),
      'x-hiss-block-length': String(data.length),
    },
    body: data,
  })
  if (r.status !== 200) throw new Error(`PUT: HTTP ${r.status} ${r.body.toString()}`)
  const put = JSON.parse(r.body.toString()) as WriteBlockReply
  // No waiting: the DataServers reported the replica before answering the PUT.
  await nsCall(nsAddr, 'POST', '/v1/ns/write/commit', { writeId: open.writeId, blocks: [{ id: alloc.block.id, gen: alloc.block.gen, length: data.length }], size: data.length })
  return { put, alloc }
}


const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false)

interface Node { ds: DataServer, addr: string, layout: StorageLayout, root: string }

async function cluster (t: Teardown & { testdir: () => string }, n: number, extra: Record<string, unknown> = {}): Promise<{ nsAddr: string, nodes: Node[], dir: string }> {
  const dir = t.testdir()
  const { addr: nsAddr } = await startNameServer(t, join(dir, 'ns'), '127.0.0.1:0', extra)
  const nodes: Node[] = []
  for (let i = 0; i < n; i++) {
    const root = join(dir, `ds${i}`)
    const { ds, addr } = await startDataServer(t, root, nsAddr, { ...FAST, ...extra })
    nodes.push({ ds, addr, layout: new StorageLayout(root), root })
  }
  await waitFor(async () => (await report(nsAddr)).dataservers.filter(d => d.state === 'live').length === n, 10000, 'dataservers to register')
  await waitFor(() => nodes.every(x => x.ds.registered), 10000, 'full block reports')
  return { nsAddr, nodes, dir }
}

t.test('write, corruption found by the scanner, re-replication, deletion', async t => {
  const { nsAddr, nodes } = await cluster(t, 3)
  const data = bytes(20000, 11)
  const { put, alloc } = await writeFile(nsAddr, '/f', data)
  t.equal(put.stored.length, 2)
  t.same(put.failed, [])
  const { id, gen } = alloc.block

  const plan = await nsCall<BlocksReply>(nsAddr, 'GET', '/v1/ns/blocks?path=/f')
  t.equal(plan.blocks.length, 1)
  const located = plan.blocks[0]!
  t.same(located.locations.map(l => l.id).sort(), [...put.stored].sort(), 'the NameServer knows both replicas')
  const holder = nodes.find(x => x.ds.id === located.locations[0]!.id)!
  const read = await request(holder.addr, { method: 'GET', path: `/v1/blocks/${id}?gen=${gen}`, headers: { 'x-hiss-token': located.token } })
  t.ok(read.body.equals(data), 'readable with the NameServer-issued token')

  // Corrupt one replica; the scanner finds it and reports it.
  await flipByte(holder.layout.dataPath(id, gen), 12345)
  t.same(await holder.ds.scanNow(), { scanned: 1, corrupt: 1 })
  const spare = nodes.find(x => !put.stored.includes(x.ds.id))!
  await waitFor(async () => (await getBlock(spare.addr, id, gen)).status === 200, 10000, 're-replication to the spare dataserver')
  t.ok((await getBlock(spare.addr, id, gen)).body.equals(data), 'the new replica is a good copy')
  await waitFor(async () => {
    const p = await nsCall<BlocksReply>(nsAddr, 'GET', '/v1/ns/blocks?path=/f')
    const ids = p.blocks[0]!.locations.map(l => l.id)
    return ids.length === 2 && !ids.includes(holder.ds.id) && ids.includes(spare.ds.id)
  }, 10000, 'locations without the corrupt replica')
  await waitFor(async () => !(await exists(holder.layout.corruptDataPath(id, gen))), 10000, 'the corrupt replica to be deleted')

  // Deleting the file deletes every replica.
  await nsCall(nsAddr, 'POST', '/v1/ns/delete', { path: '/f' })
  await waitFor(async () => {
    for (const x of nodes) if (await exists(x.layout.dataPath(id, gen))) return false
    return true
  }, 10000, 'replicas of the deleted file to go')
  t.pass('all replicas deleted')
})

t.test('clean shutdown unregisters; a restart re-registers with a full report', async t => {
  const { nsAddr, nodes } = await cluster(t, 2)
  const data = bytes(5000, 12)
  const { alloc } = await writeFile(nsAddr, '/g', data)
  const [a] = nodes as [Node, Node]
  await a.ds.close() // unregister: true
  await waitFor(async () => (await report(nsAddr)).dataservers.find(d => d.id === a.ds.id)?.state === 'dead', 5000, 'the NameServer to drop it')
  const before = await nsCall<BlocksReply>(nsAddr, 'GET', '/v1/ns/blocks?path=/g')
  t.notOk(before.blocks[0]!.locations.some(l => l.id === a.ds.id), 'its replica is no longer offered')

  const again = await startDataServer(t, a.root, nsAddr, FAST)
  t.equal(again.ds.id, a.ds.id, 'same id')
  await waitFor(async () => {
    const p = await nsCall<BlocksReply>(nsAddr, 'GET', '/v1/ns/blocks?path=/g')
    return p.blocks[0]!.locations.some(l => l.id === a.ds.id && l.address === again.addr)
  }, 10000, 'the full report to restore the location')
  t.ok((await getBlock(again.addr, alloc.block.id, alloc.block.gen)).body.equals(data))
})

t.test('a dataserver serves before the NameServer exists and registers once it does', async t => {
  const dir = t.testdir()
  const nsAddr = await deadAddress()
  const { ds, addr } = await startDataServer(t, join(dir, 'ds'), nsAddr, FAST)
  t.equal((await request(addr, { method: 'GET', path: '/v1/ping' })).status, 200)
  t.notOk(ds.registered)
  await startNameServer(t, join(dir, 'ns'), nsAddr)
  await waitFor(() => ds.registered, 10000, 'registration after retries')
  const r = await report(nsAddr)
  t.equal(r.dataservers.find(d => d.id === ds.id)?.state, 'live')
})

t.test('a dataserver that stops (as if killed) is replaced by re-replication', async t => {
  const { nsAddr, nodes } = await cluster(t, 3, { 'heartbeat.dead.ms': 800 })
  const data = bytes(9000, 13)
  const { put, alloc } = await writeFile(nsAddr, '/h', data)
  const victim = nodes.find(x => x.ds.id === put.stored[0])!
  const spare = nodes.find(x => !put.stored.includes(x.ds.id))!
  await victim.ds.close({ unregister: false }) // no goodbye: it just stops heartbeating
  await waitFor(async () => (await getBlock(spare.addr, alloc.block.id, alloc.block.gen)).status === 200, 15000, 're-replication after the dead interval')
  t.ok((await getBlock(spare.addr, alloc.block.id, alloc.block.gen)).body.equals(data))
  const r = await report(nsAddr)
  t.equal(r.dataservers.find(d => d.id === victim.ds.id)?.state, 'dead')
})
