// kill -9 of a DataServer: after heartbeat.dead.ms the NameServer reports it dead and
// re-replicates every block it held back to 3 live replicas, with no client action;
// reads keep working the whole time.
import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startCluster, TEST_TIMINGS } from '../helpers/cluster.js'
import { findBlockFiles, randomData, sha256, tempDir } from '../helpers/cluster-files.js'
import { waitUntil } from '../helpers/wait-until.js'

const KiB = 1024

t.test('a DataServer killed with SIGKILL is declared dead and its blocks re-replicated', async t => {
  const c = await startCluster(t, { dataServers: 4, replication: 3, blockSize: 256 * KiB })
  const local = await tempDir(t)
  const data = randomData(3 * 1024 * KiB + 123) // 13 blocks
  await writeFile(join(local, 'f'), data)
  const put = await c.cli(['put', join(local, 'f'), '/f'])
  t.equal(put.code, 0, `put: ${put.stderr}`)
  await waitUntil(async () => (await c.fsck('/')).healthy || undefined, { timeoutMs: 20000, what: 'initial replication' })

  // The victim: the DataServer holding the most replicas.
  const counts = await Promise.all(c.dataServers.map(async d => (await findBlockFiles(d.dir)).length))
  const victim = counts.indexOf(Math.max(...counts))
  const victimId = c.dataServers[victim]?.id as string
  t.ok((counts[victim] ?? 0) > 0, `victim dataserver-${victim} holds ${counts[victim] ?? 0} replicas`)

  // Readers run all through the failure.
  let stop = false
  let reads = 0
  const readFailures: string[] = []
  const reader = (async () => {
    while (!stop) {
      const r = await c.cli(['cat', '/f'], { timeoutMs: 60000 })
      if (r.code !== 0 || sha256(r.stdout) !== sha256(data)) readFailures.push(`exit ${r.code ?? r.signal}, ${r.stdout.length} bytes: ${r.stderr.trim()}`)
      reads++
    }
  })()

  const killedAt = Date.now()
  await c.killDataServer(victim, 'SIGKILL')
  const rep = await waitUntil(async () => {
    const r = await c.report()
    return r.dataservers.find(d => d.id === victimId)?.state === 'dead' ? r : undefined
  }, { timeoutMs: TEST_TIMINGS['heartbeat.dead.ms'] + 10000, intervalMs: 250, what: 'the killed DataServer to be reported dead' })
  const deadAfter = Date.now() - killedAt
  t.ok(deadAfter >= TEST_TIMINGS['heartbeat.dead.ms'] - 500, `declared dead after ${deadAfter} ms (heartbeat.dead.ms ${TEST_TIMINGS['heartbeat.dead.ms']})`)
  t.equal(rep.dataservers.filter(d => d.state === 'live').length, 3, 'three live DataServers remain')

  const fsck = await waitUntil(async () => {
    const f = await c.fsck('/')
    const full = f.entries.every(e => e.blocks.every(b => b.replicas.filter(r => r.state === 'live' && r.dataserver !== victimId).length >= 3))
    return full ? f : undefined
  }, { timeoutMs: 30000, intervalMs: 500, what: 'every block back to 3 live replicas' })
  for (const b of fsck.entries[0]?.blocks ?? []) {
    const live = b.replicas.filter(r => r.state === 'live')
    t.equal(new Set(live.map(r => r.dataserver)).size, live.length, `block ${b.id}: distinct DataServers`)
    t.notOk(live.some(r => r.dataserver === victimId), `block ${b.id}: no live replica on the dead server`)
  }
  t.equal(fsck.entries[0]?.blocks.length, 13)
  t.ok(fsck.healthy, 'fsck healthy again')

  stop = true
  await reader
  t.ok(reads >= 1, `${reads} full reads during the failure`)
  t.same(readFailures, [], 'every read during the failure returned the right bytes')
  const after = await c.cli(['cat', '/f'])
  t.equal(sha256(after.stdout), sha256(data), 'reads back after recovery')
})
