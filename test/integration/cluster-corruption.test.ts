// Bit rot: one flipped byte in a replica file on disk. Readers still get the right
// bytes (the checksum catches it and the client fails over), the NameServer shows the
// corrupt replica, and replaces it: eventually 3 good replicas and the bad file gone.
import t from 'tap'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startCluster } from '../helpers/cluster.js'
import { findBlockFiles, flipByte, randomData, sha256, tempDir } from '../helpers/cluster-files.js'
import { waitUntil } from '../helpers/wait-until.js'

const KiB = 1024
const BLOCK = 256 * KiB

t.test('a corrupt replica is never served and gets replaced', async t => {
  // A slower replication monitor keeps the corrupt state visible long enough to see it.
  const c = await startCluster(t, { dataServers: 3, replication: 3, blockSize: BLOCK, extra: { 'replication.interval.ms': 1500 } })
  const local = await tempDir(t)
  const data = randomData(4 * BLOCK)
  await writeFile(join(local, 'f'), data)
  t.equal((await c.cli(['put', join(local, 'f'), '/f'])).code, 0, 'put')
  const f0 = await waitUntil(async () => { const f = await c.fsck('/'); return f.healthy ? f : undefined }, { timeoutMs: 20000, what: 'healthy' })
  const target = f0.entries[0]?.blocks[1]
  if (target === undefined) throw new Error('no block 1')
  const ds = c.dataServers[0]
  if (ds === undefined) throw new Error('no dataserver')
  const file = (await findBlockFiles(ds.dir)).find(b => b.id === target.id && b.gen === target.gen)
  if (file === undefined) throw new Error(`dataserver-0 has no replica of block ${target.id}`)
  const expected = data.subarray(BLOCK, 2 * BLOCK)
  t.equal(sha256(await readFile(file.path)), sha256(expected), 'the replica file holds exactly the block bytes')

  await flipByte(file.path, 1000)
  t.not(sha256(await readFile(file.path)), sha256(expected), 'the replica on disk is now corrupt')

  // Several reads: whichever replica a read picks, the bytes are right.
  for (let i = 0; i < 3; i++) {
    const r = await c.cli(['cat', '/f'])
    t.equal(r.code, 0, `cat ${i}: ${r.stderr}`)
    t.equal(sha256(r.stdout), sha256(data), `cat ${i} returns the right bytes`)
  }
  const get = await c.cli(['get', '/f', join(local, 'back')])
  t.equal(get.code, 0, 'get')
  t.equal(sha256(await readFile(join(local, 'back'))), sha256(data), 'get returns the right bytes')

  // The corruption shows (in report or fsck) until it is repaired.
  const seen = await waitUntil(async () => {
    const [rep, f] = await Promise.all([c.report(), c.fsck('/')])
    const inFsck = f.entries.some(e => e.blocks.some(b => b.id === target.id && b.replicas.some(r => r.state === 'corrupt')))
    if (rep.blocks.corrupt > 0 || f.corrupt > 0 || inFsck) return { rep: rep.blocks.corrupt, fsck: f.corrupt, inFsck }
    // Already replaced before we looked? Then the file on disk must be good again.
    return undefined
  }, { timeoutMs: 10000, intervalMs: 100, what: 'the corrupt replica to show in report/fsck' })
  t.ok(seen, `corruption reported: report.corrupt=${seen.rep} fsck.corrupt=${seen.fsck} replica state corrupt=${String(seen.inFsck)}`)

  // Repaired: 3 live replicas, no corrupt one, and the bad bytes are gone from disk.
  await waitUntil(async () => {
    const f = await c.fsck('/')
    const b = f.entries[0]?.blocks.find(x => x.id === target.id)
    const good = f.healthy && f.corrupt === 0 && b !== undefined && b.replicas.filter(r => r.state === 'live').length === 3
    return good || undefined
  }, { timeoutMs: 30000, intervalMs: 500, what: 'block repaired to 3 good replicas' })
  await waitUntil(async () => {
    // The corrupt file is either gone or replaced by a good copy of the block.
    const copies = (await findBlockFiles(ds.dir)).filter(b => b.id === target.id)
    for (const copy of copies) {
      const st = await stat(copy.path).catch(() => undefined)
      if (st === undefined) continue
      if (sha256(await readFile(copy.path)) !== sha256(expected)) return undefined
    }
    return true
  }, { timeoutMs: 30000, intervalMs: 500, what: 'the corrupt replica file to disappear from dataserver-0' })
  t.pass('no corrupt copy of the block is left on dataserver-0')
  const rep = await c.report()
  t.equal(rep.blocks.corrupt, 0, 'report: no corrupt blocks')
  t.equal(sha256((await c.cli(['cat', '/f'])).stdout), sha256(data), 'reads back after the repair')
})
