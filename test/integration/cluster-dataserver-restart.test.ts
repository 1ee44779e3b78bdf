// A DataServer that comes back with its directory intact: its first block report
// restores its replicas (nothing needs re-replicating). One that missed an overwrite
// and a delete while it was down has the stale and orphaned replicas discarded.
import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FsckReply } from '../../src/common/protocol.js'
import { startCluster } from '../helpers/cluster.js'
import { findBlockFiles, randomData, sha256, tempDir } from '../helpers/cluster-files.js'
import { waitUntil } from '../helpers/wait-until.js'

const KiB = 1024

function liveOn (f: FsckReply, path: string, dsId: string): number {
  const e = f.entries.find(x => x.path === path)
  return e?.blocks.filter(b => b.replicas.some(r => r.dataserver === dsId && r.state === 'live')).length ?? 0
}

function blockIds (f: FsckReply, path: string): number[] {
  return f.entries.find(x => x.path === path)?.blocks.map(b => b.id) ?? []
}

t.test('DataServer restarts', async t => {
  // Replication 3 on 3 servers: while one is down nothing can be re-replicated, so
  // what it holds after the restart is exactly what it reported.
  const c = await startCluster(t, { dataServers: 3, replication: 3, blockSize: 256 * KiB })
  const local = await tempDir(t)
  const put = async (name: string, data: Buffer): Promise<void> => {
    await writeFile(join(local, name), data)
    const r = await c.cli(['put', join(local, name), `/${name}`])
    t.equal(r.code, 0, `put /${name}: ${r.stderr}`)
  }
  const healthy = (): Promise<FsckReply> => waitUntil(async () => {
    const f = await c.fsck('/')
    return f.healthy && f.underReplicated === 0 ? f : undefined
  }, { timeoutMs: 30000, intervalMs: 400, what: 'fsck healthy' })

  await t.test('the first block report after a restart restores the replicas', async t => {
    const a = randomData(1024 * KiB + 5)
    await put('a', a)
    await healthy()
    const ds = c.dataServers[0]
    if (ds === undefined) throw new Error('no dataserver')
    const before = (await findBlockFiles(ds.dir)).map(b => b.rel).sort()
    t.equal(before.length, 5, 'it holds all 5 blocks')

    await c.killDataServer(0, 'SIGKILL')
    const degraded = await waitUntil(async () => {
      const f = await c.fsck('/')
      return liveOn(f, '/a', ds.id) === 0 && f.underReplicated > 0 ? f : undefined
    }, { timeoutMs: 15000, what: 'its replicas to stop counting' })
    t.equal(degraded.underReplicated, 5, 'fsck: all 5 blocks under-replicated while it is down')
    t.equal(degraded.missing, 0, 'but none missing')
    const human = await c.cli(['fsck', '/'])
    t.equal(human.code, 0, 'under-replicated alone is still healthy (as in HDFS): fsck exits 0')
    t.match(human.stdout.toString(), /UNDER-REPLICATED/, 'fsck names the under-replicated blocks')
    t.equal(sha256((await c.cli(['cat', '/a'])).stdout), sha256(a), 'still readable from the other two')

    await c.restartDataServer(0)
    const f = await healthy()
    t.equal(liveOn(f, '/a', ds.id), 5, 'the restarted DataServer holds its 5 replicas again')
    const after = (await findBlockFiles(ds.dir)).map(b => b.rel).sort()
    t.same(after, before, 'same replica files: nothing was re-replicated to it')
  })

  await t.test('stale and orphaned replicas of a DataServer that was down are discarded', async t => {
    const keep = randomData(300 * KiB)
    const v1 = randomData(600 * KiB)
    const gone = randomData(400 * KiB)
    await put('keep', keep)
    await put('victim', v1)
    await put('gone', gone)
    const f1 = await healthy()
    const ds = c.dataServers[1]
    if (ds === undefined) throw new Error('no dataserver')
    const doomed = new Set([...blockIds(f1, '/victim'), ...blockIds(f1, '/gone')])
    const held = (await findBlockFiles(ds.dir)).filter(b => doomed.has(b.id))
    t.equal(held.length, doomed.size, `dataserver-1 holds all ${doomed.size} blocks of /victim and /gone`)

    await c.killDataServer(1, 'SIGKILL')
    await waitUntil(async () => (await c.report()).dataservers.find(d => d.id === ds.id)?.state === 'dead' || undefined,
      { timeoutMs: 15000, what: 'dataserver-1 dead' })
    // While it is down: overwrite one file, delete another.
    const v2 = randomData(500 * KiB)
    await put('victim', v2)
    const rm = await c.cli(['rm', '/gone'])
    t.equal(rm.code, 0, `rm /gone: ${rm.stderr}`)

    await c.restartDataServer(1)
    await waitUntil(async () => {
      const left = (await findBlockFiles(ds.dir)).filter(b => doomed.has(b.id) && held.some(h => h.gen === b.gen && h.id === b.id))
      return left.length === 0 || undefined
    }, { timeoutMs: 30000, intervalMs: 500, what: 'the stale and orphaned replica files to be deleted from dataserver-1' })
    t.pass('stale (overwritten) and orphaned (deleted) replica files are gone from its directory')

    const f2 = await healthy()
    t.notOk(f2.entries.some(e => e.path === '/gone'), '/gone stays deleted')
    t.equal(sha256((await c.cli(['cat', '/victim'])).stdout), sha256(v2), 'the new content reads back')
    t.equal(sha256((await c.cli(['cat', '/keep'])).stdout), sha256(keep), 'untouched file reads back')
    t.equal(liveOn(f2, '/keep', ds.id), 2, 'its replicas of the untouched file count again')
    for (const b of f2.entries.find(e => e.path === '/victim')?.blocks ?? []) {
      t.notOk(doomed.has(b.id) && held.some(h => h.id === b.id && h.gen === b.gen), `block ${b.id} gen ${b.gen} is not a stale one`)
    }
  })

  await t.test('a block whose only replica is down is missing until its DataServer returns', async t => {
    const solo = randomData(100 * KiB)
    await writeFile(join(local, 'solo'), solo)
    t.equal((await c.cli(['put', '-r', '1', join(local, 'solo'), '/solo'])).code, 0, 'put -r 1')
    const f = await c.fsck('/solo')
    const holderId = f.entries[0]?.blocks[0]?.replicas.find(r => r.state === 'live')?.dataserver
    const holder = c.dataServers.findIndex(d => d.id === holderId)
    t.ok(holder >= 0, `the single replica is on dataserver-${holder}`)
    await c.killDataServer(holder, 'SIGKILL')
    await waitUntil(async () => (await c.fsck('/solo')).missing === 1 || undefined, { timeoutMs: 15000, what: 'the block to be missing' })
    const bad = await c.cli(['fsck', '/solo'])
    t.equal(bad.code, 1, 'fsck exits 1 with a missing block')
    t.match(bad.stdout.toString(), /MISSING[\s\S]*Status: CORRUPT/, 'and says so')
    const cat = await c.cli(['cat', '/solo'], { timeoutMs: 60000 })
    t.equal(cat.code, 1, 'cat of a file with a lost block fails')
    t.match(cat.stderr, /^hissdfs: cat: \/solo: [^\n]+\n$/, `with one line: ${cat.stderr.trim()}`)
    await c.restartDataServer(holder)
    await waitUntil(async () => (await c.fsck('/solo')).healthy || undefined, { timeoutMs: 20000, what: 'the block to be back' })
    t.equal(sha256((await c.cli(['cat', '/solo'])).stdout), sha256(solo), 'readable again once its DataServer is back')
  })
})
