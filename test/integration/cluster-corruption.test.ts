// Bit rot: one flipped byte in a replica file on disk. Readers still get the right
// bytes (the checksum catches it and the client fails over), the NameServer shows the
// corrupt replica, and replaces it: eventually 3 good replicas and the bad file gone.
import t from 'tap'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FsckReply, ReportReply } from '../../src/common/protocol.js'
import { startCluster } from '../helpers/cluster.js'
import { findBlockFiles, flipByte, randomData, sha256, tempDir } from '../helpers/cluster-files.js'
import { waitUntil } from '../helpers/wait-until.js'

const KiB = 1024
const BLOCK = 256 * KiB

t.test('a corrupt replica is never served and gets replaced', async t => {
  const c = await startCluster(t, { dataServers: 3, replication: 3, blockSize: BLOCK })
  const local = await tempDir(t)
  const data = randomData(4 * BLOCK)
  await writeFile(join(local, 'f'), data)
  t.equal((await c.cli(['put', join(local, 'f'), '/f'])).code, 0, 'put')
  const f0 = await waitUntil(async () => { const f = await c.fsck('/'); return f.healthy ? f : undefined }, { timeoutMs: 20000, what: 'healthy' })
  const target = f0.entries[0]?.blocks[1]
  if (target === undefined) throw new Error('no block 1')
  // Corrupt the replica readers try first: the NameServer lists live replicas best
  // first, and on an idle cluster that is the order fsck shows them in.
  const firstId = target.replicas.find(r => r.state === 'live')?.dataserver
  const ds = c.dataServers.find(d => d.id === firstId)
  if (ds === undefined) throw new Error(`no dataserver ${String(firstId)}`)
  const file = (await findBlockFiles(ds.dir)).find(b => b.id === target.id && b.gen === target.gen)
  if (file === undefined) throw new Error(`dataserver-${ds.index} has no replica of block ${target.id}`)
  const expected = data.subarray(BLOCK, 2 * BLOCK)
  t.equal(sha256(await readFile(file.path)), sha256(expected), 'the replica file holds exactly the block bytes')

  await flipByte(file.path, 1000)
  t.not(sha256(await readFile(file.path)), sha256(expected), 'the replica on disk is now corrupt')

  // The NameServer repairs a corrupt replica within a second or two, quicker than a
  // CLI process starts on a busy machine, so a watcher polls the admin API (the very
  // JSON that `report --json` and `fsck --json` print) for the transient state.
  let seen = ''
  let watching = true
  const headers = { 'x-hiss-uid': '0', 'x-hiss-gids': '0' }
  const watcher = (async () => {
    while (watching && seen === '') {
      try {
        const [rep, f] = await Promise.all([
          fetch(`http://${c.nsAddress}/v1/admin/report`, { headers }).then(async x => await x.json() as ReportReply),
          fetch(`http://${c.nsAddress}/v1/admin/fsck?path=%2F`, { headers }).then(async x => await x.json() as FsckReply),
        ])
        const inFsck = f.entries.some(e => e.blocks.some(b => b.id === target.id && b.replicas.some(x => x.state === 'corrupt')))
        if (rep.blocks.corrupt > 0 || f.corrupt > 0 || inFsck) seen = `report.blocks.corrupt=${rep.blocks.corrupt} fsck.corrupt=${f.corrupt} replica state corrupt=${String(inFsck)} healthy=${String(f.healthy)}`
      } catch {}
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  })()
  t.teardown(() => { watching = false })

  // Readers get the right bytes: the first read meets the corrupt replica, the checksum
  // catches it and the client fails over.
  const r = await c.cli(['cat', '/f'])
  t.equal(r.code, 0, `cat: ${r.stderr}`)
  t.equal(sha256(r.stdout), sha256(data), 'cat returns the right bytes')
  for (let i = 0; i < 2; i++) {
    const again = await c.cli(['cat', '/f'])
    t.equal(sha256(again.stdout), sha256(data), `cat ${i + 2} returns the right bytes`)
  }
  const get = await c.cli(['get', '/f', join(local, 'back')])
  t.equal(get.code, 0, 'get')
  t.equal(sha256(await readFile(join(local, 'back'))), sha256(data), 'get returns the right bytes')

  await waitUntil(() => seen !== '' || undefined, { timeoutMs: 15000, intervalMs: 50, what: 'the corruption to show in report/fsck' }).catch(() => {})
  watching = false
  await watcher
  t.ok(seen !== '', `the corruption showed in report/fsck: ${seen}`)

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
  }, { timeoutMs: 30000, intervalMs: 500, what: 'the corrupt replica file to disappear from its DataServer' })
  t.pass('no corrupt copy of the block is left on its DataServer')
  const rep = await c.report()
  t.equal(rep.blocks.corrupt, 0, 'report: no corrupt blocks')
  t.equal(sha256((await c.cli(['cat', '/f'])).stdout), sha256(data), 'reads back after the repair')
})
