// The round-trip savers the mount relies on, against a real NameServer and DataServers:
// create with openWrite (file, lease and first block in one request), delete with the
// parent's stat in the reply, and the parent times the mount derives on its own after
// create/mkdir/symlink/rename (mtime = ctime = the new entry's ctime).
import t from 'tap'
import { Readable } from 'node:stream'
import { createLogger } from '../../src/common/log.js'
import { HEADER_GIDS, HEADER_UID } from '../../src/common/protocol.js'
import { startCluster } from '../helpers/inprocess-cluster.js'

async function readAll (r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of r) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

t.test('create + write lease + first block in one request, then one store and one commit', async t => {
  const cluster = await startCluster(t, { dataServers: 3, replication: 3 })
  const lines: string[] = []
  const c = cluster.newClient({ log: createLogger('client', 'debug', l => { lines.push(l) }) })
  await c.mkdir('/d')
  const requests = (): string[] => lines.filter(l => l.includes('"nameserver request"')).map(l => JSON.parse(l).req as string)

  lines.length = 0
  const { stat, grant } = await c.createOpen('/d/f', { mode: 0o640, leaseHolder: c.clientId })
  t.equal(stat.type, 'file')
  t.equal(stat.mode, 0o640)
  t.ok(grant, 'the NameServer opened the write')
  t.ok(grant?.block, 'and allocated the first block')
  t.equal(grant?.reply.ino, stat.ino, 'on the new inode')
  t.same(requests(), ['POST /v1/ns/create'], 'one request')
  t.ok(await c.exists('/d/f'), 'visible at once')

  lines.length = 0
  const w = c.adoptWrite(grant!)
  const data = Buffer.from('hello, small file\n')
  const ref = await w.storeBlock(Readable.from([data]))
  t.equal(ref.id, grant?.block?.block.id, 'the store used the pre-allocated block')
  const committed = await w.commit([ref])
  t.equal(committed.size, data.length)
  t.same(requests(), ['POST /v1/ns/write/commit'], 'no write/open, no addblock')
  t.ok((await readAll(c.createReadStream('/d/f'))).equals(data), 'content reads back')
  t.equal(c.openWrites, 0, 'lease given back')

  // A second createOpen of the same name: EEXIST, nothing opened.
  await t.rejects(c.createOpen('/d/f', { leaseHolder: c.clientId }), { code: 'EEXIST' })

  // Created and never written: abort ends the lease and frees the unused block.
  const e = await c.createOpen('/d/empty', { leaseHolder: c.clientId })
  const we = c.adoptWrite(e.grant!)
  await we.abort()
  t.equal((await c.stat('/d/empty')).size, 0, 'the empty file stays')
  const again = await c.openWrite({ ino: e.stat.ino })
  await again.abort()
  t.pass('no lease left behind')
})

t.test('a create whose mode denies writing still creates the file, without a write', async t => {
  const cluster = await startCluster(t, { dataServers: 1, replication: 1 })
  await cluster.client.mkdir('/pub', { mode: 0o777 })
  const user = cluster.newClient({ identity: { uid: 1000, gids: [1000] } })
  const r = await user.createOpen('/pub/ro', { mode: 0o444, leaseHolder: cluster.client.clientId })
  t.equal(r.stat.uid, 1000, 'owned by the caller')
  t.equal(r.grant, undefined, 'no write opened for a mode without owner write')
  // What the mount does then: open the write with its own client.
  const w = await cluster.client.openWrite({ ino: r.stat.ino })
  const ref = await w.storeBlock(Buffer.from('x'))
  t.equal((await w.commit([ref])).size, 1)
})

t.test('over HTTP: openWrite needs exclusive, delete can answer with the parent', async t => {
  const cluster = await startCluster(t, { dataServers: 1, replication: 1 })
  const post = async (path: string, body: unknown): Promise<{ status: number, body: any }> => {
    const res = await fetch(`http://${cluster.nameServerAddress}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [HEADER_UID]: '0', [HEADER_GIDS]: '0' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    })
    return { status: res.status, body: await res.json() }
  }
  const bad = await post('/v1/ns/create', { path: '/x', openWrite: { clientId: 'c1' } })
  t.equal(bad.status, 400, 'openWrite without exclusive is refused')
  t.notOk(await cluster.client.exists('/x'), 'and creates nothing')
  t.equal((await post('/v1/ns/create', { path: '/x', exclusive: true, openWrite: { clientId: '' } })).status, 400, 'empty clientId refused')
  t.equal((await post('/v1/ns/create', { path: '/x', exclusive: true, openWrite: { clientId: 'c1', extra: 1 } })).status, 400, 'unknown field refused')
  t.notOk(await cluster.client.exists('/x'))

  const plain = await post('/v1/ns/create', { path: '/x', exclusive: true })
  t.same(Object.keys(plain.body), ['stat'], 'a plain create answers as before')
  await cluster.client.mkdir('/dir')
  await cluster.client.mkdir('/dir/sub')
  await cluster.client.create('/dir/file')
  t.same((await post('/v1/ns/delete', { path: '/x' })).body, { deleted: true }, 'a plain delete answers as before')
  const del = await post('/v1/ns/delete', { path: '/dir/sub', parent: true })
  t.equal(del.status, 200)
  const parent = await cluster.client.stat('/dir')
  t.same(del.body.parent, parent, 'the parent as it is after the removal')
  t.equal(parent.nlink, 2, 'one subdirectory fewer')
  const viaClient = await cluster.client.delete('/dir/file', { parent: true })
  t.same(viaClient.parent, await cluster.client.stat('/dir'), 'the client passes it on')
  t.same(await cluster.client.delete('/dir'), {}, 'nothing asked, nothing given')
})

t.test('parent times after create, mkdir, symlink and rename are the new entry\'s ctime', async t => {
  // The mount updates its cached directory from this rule instead of asking again.
  const cluster = await startCluster(t, { dataServers: 1, replication: 1 })
  const c = cluster.client
  await c.mkdir('/p')
  await c.mkdir('/q')
  const check = async (dir: string, ctimeNs: string, what: string): Promise<void> => {
    const d = await c.stat(dir)
    t.equal(d.mtimeNs, ctimeNs, `${what}: parent mtime`)
    t.equal(d.ctimeNs, ctimeNs, `${what}: parent ctime`)
  }
  await check('/p', (await c.create('/p/f', { exclusive: true })).ctimeNs, 'create')
  await check('/p', (await c.createOpen('/p/g', { leaseHolder: c.clientId })).stat.ctimeNs, 'createOpen')
  await check('/p', (await c.mkdir('/p/sub')).ctimeNs, 'mkdir')
  await check('/p', (await c.symlink('f', '/p/l')).ctimeNs, 'symlink')
  const moved = await c.rename('/p/f', '/q/f')
  await check('/p', moved.ctimeNs, 'rename source')
  await check('/q', moved.ctimeNs, 'rename target')
})
