// A block of zeros (WriteSession.storeZeros) stays sparse through re-replication: when a
// DataServer holding it dies, the copy made on another one is sized, not streamed
// (Replicator sends it with HEADER_ZERO_LENGTH), so it takes no data blocks on disk;
// a dense block next to it is copied as ever, and the file reads back the same.
import t from 'tap'
import { stat } from 'node:fs/promises'
import { buffer as readAll } from 'node:stream/consumers'
import { startCluster } from '../helpers/inprocess-cluster.js'
import { findBlockFiles } from '../helpers/cluster-files.js'
import { Rng } from '../helpers/rng.js'
import { waitUntil } from '../helpers/wait-until.js'

const MiB = 1024 * 1024

t.test('re-replication keeps a block of zeros sparse', async t => {
  const c = await startCluster(t, { dataServers: 3, replication: 2, blockSize: 4 * MiB })
  const data = new Rng(5).bytes(100_000)
  const s = await c.client.openWrite({ path: '/holes' }, { create: true })
  const refs = [await s.storeZeros(4 * MiB), await s.storeZeros(4 * MiB), await s.storeBlock(data)]
  await s.commit(refs)
  const model = Buffer.concat([Buffer.alloc(8 * MiB), data])

  /** Every block with two live replicas, none of them on `gone`. */
  const healthy = async (gone?: string): Promise<void> => {
    await waitUntil(async () => {
      const f = await c.client.fsck('/holes')
      const ok = f.healthy && f.entries[0]!.blocks.every(b => {
        const live = b.replicas.filter(r => r.state === 'live')
        return live.length === 2 && !live.some(r => r.dataserver === gone)
      })
      return ok ? true : undefined
    }, { timeoutMs: 30_000, intervalMs: 200, what: '/holes with two live replicas per block' })
  }
  await healthy()

  // Crash a DataServer holding a replica of the first hole.
  const f = await c.client.fsck('/holes')
  const victimId = f.entries[0]!.blocks[0]!.replicas[0]!.dataserver
  const victim = c.indexOf(victimId)
  t.ok(victim >= 0, 'found a holder of the first hole')
  await c.stopDataServer(victim, { unregister: false })
  await healthy(victimId)

  const zeroIds = new Set([refs[0]!.id, refs[1]!.id])
  let zeroReplicas = 0
  for (const [i, dir] of c.dataServerDirs.entries()) {
    if (i === victim) continue
    for (const file of await findBlockFiles(dir)) {
      if (!zeroIds.has(file.id) || !file.rel.startsWith('current/')) continue
      zeroReplicas++
      const st = await stat(file.path)
      t.equal(st.size, 4 * MiB, `${file.rel}: the block's length`)
      t.ok(st.blocks * 512 < 64 * 1024, `${file.rel}: sparse on disk (${st.blocks * 512} bytes allocated)`)
    }
  }
  t.equal(zeroReplicas, 4, 'both holes have their two replicas on the live DataServers')
  t.ok((await readAll(c.client.createReadStream('/holes'))).equals(model), 'the file reads back the same')
})
