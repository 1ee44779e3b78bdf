// Placement: with replication 3 over 4 DataServers, every block of every file sits on
// 3 distinct live DataServers (as fsck --json reports it), and report --json has the
// documented shape.
import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FsckReply, ReportReply } from '../../src/common/protocol.js'
import { startCluster } from '../helpers/cluster.js'
import { randomData, tempDir } from '../helpers/cluster-files.js'
import { waitUntil } from '../helpers/wait-until.js'

const KiB = 1024

t.test('replication 3 across 4 DataServers', async t => {
  const c = await startCluster(t, { dataServers: 4, replication: 3, blockSize: 256 * KiB })
  const local = await tempDir(t)
  const sizes = { a: 256 * KiB * 5 + 17, b: 256 * KiB, c: 1000 }
  for (const [name, size] of Object.entries(sizes)) {
    const f = join(local, name)
    await writeFile(f, randomData(size))
    const r = await c.cli(['put', f, `/${name}`])
    t.equal(r.code, 0, `put ${name}: ${r.stderr}`)
  }

  const ids = new Set(c.dataServers.map(d => d.id))
  // Replicas beyond replication.min are made in the background: wait for them.
  const fsck = await waitUntil(async () => {
    const f = await c.fsck('/')
    return f.healthy && f.underReplicated === 0 ? f : undefined
  }, { timeoutMs: 20000, what: 'fsck healthy' })

  t.equal(fsck.files, 3, 'three files')
  t.equal(fsck.blocks, 6 + 1 + 1, 'blocks counted')
  t.equal(fsck.missing, 0)
  t.equal(fsck.corrupt, 0)
  const byPath = new Map(fsck.entries.map(e => [e.path, e]))
  t.equal(byPath.get('/a')?.blocks.length, 6, '/a has 6 blocks')
  const perServer = new Map<string, number>()
  for (const e of fsck.entries) {
    t.equal(e.replication, 3, `${e.path} replication 3`)
    for (const b of e.blocks) {
      const live = b.replicas.filter(r => r.state === 'live')
      const servers = new Set(live.map(r => r.dataserver))
      t.equal(live.length, 3, `${e.path} block ${b.id}: 3 live replicas`)
      t.equal(servers.size, 3, `${e.path} block ${b.id}: on 3 distinct DataServers`)
      for (const s of servers) {
        t.ok(ids.has(s), `replica on a known DataServer ${s}`)
        perServer.set(s, (perServer.get(s) ?? 0) + 1)
      }
    }
  }
  t.ok(perServer.size >= 3, `replicas spread over ${perServer.size} DataServers`)

  const fsckRun = await c.cli(['fsck', '/', '--json'])
  t.equal(fsckRun.code, 0, 'fsck exits 0 when healthy')
  const shape = JSON.parse(fsckRun.stdout.toString()) as FsckReply
  t.has(shape, { path: '/', healthy: true }, 'FsckReply shape')
  for (const k of ['files', 'blocks', 'underReplicated', 'missing', 'corrupt', 'healthy', 'entries']) t.ok(k in shape, `fsck --json has ${k}`)
  t.match(shape.entries[0], { path: String, blocks: [{ id: Number, length: Number, replicas: [{ dataserver: String, address: String, state: String }] }] })

  const rep = await c.report()
  t.equal(rep.dataservers.length, 4)
  const r0 = rep.dataservers[0] as ReportReply['dataservers'][number]
  for (const k of ['id', 'address', 'state', 'capacity', 'used', 'blocks']) t.ok(k in r0, `report --json dataserver has ${k}`)
  for (const k of ['total', 'underReplicated', 'missing', 'corrupt']) t.ok(k in rep.blocks, `report --json blocks has ${k}`)
  t.equal(rep.blocks.total, 8, 'report counts the blocks')
  t.ok(rep.dataservers.every(d => d.state === 'live'), 'all live')
  t.same(new Set(rep.dataservers.map(d => d.address)), new Set(c.dataServers.map(d => d.address)), 'addresses as printed at start')
  const stored = rep.dataservers.reduce((n, d) => n + d.blocks, 0)
  t.equal(stored, 8 * 3, 'report: 3 replicas per block in total')

  const fsckFile = await c.fsck('/a')
  t.equal(fsckFile.files, 1, 'fsck of one file')
  t.equal(fsckFile.blocks, 6)

  // Clean stops: a DataServer unregisters (dead at once, not after heartbeat.dead.ms)
  // and exits 0; so does the NameServer.
  const leaving = c.dataServers[3]
  if (leaving === undefined) throw new Error('no dataserver 3')
  const ds = await c.killDataServer(3, 'SIGTERM')
  t.same(ds, { code: 0, signal: null }, 'SIGTERM: the DataServer exits 0')
  const after = await c.report()
  t.equal(after.dataservers.find(d => d.id === leaving.id)?.state ?? 'dead', 'dead', 'it unregistered on the way out')
  const ns = await c.killNameServer('SIGINT')
  t.same(ns, { code: 0, signal: null }, 'SIGINT: the NameServer exits 0')
})
