// DataServers that hang (SIGSTOP: they accept connections and never answer) while the
// NameServer still lists them: a read fails over to the other replica after
// client.timeout.ms, and then tries the hung servers last for the rest of the read,
// instead of waiting client.timeout.ms again for every block they come first for (twice:
// the direct read and its fallback).
import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createClient } from '../../src/client/index.js'
import { loadConfigFile } from '../../src/common/config.js'
import { startCluster, TEST_TIMINGS } from '../helpers/cluster.js'
import { randomData, sha256, tempDir } from '../helpers/cluster-files.js'

const KiB = 1024

t.test('cat with two of three DataServers frozen waits for them once, not per block', { timeout: 180_000 }, async t => {
  // The frozen server must stay "live" on the NameServer for the whole read.
  const c = await startCluster(t, { dataServers: 3, replication: 3, blockSize: 256 * KiB, nameServerExtra: { 'heartbeat.dead.ms': 120_000 } })
  const local = await tempDir(t)
  const data = randomData(24 * 256 * KiB + 100) // 25 blocks
  await writeFile(join(local, 'f'), data)
  t.equal((await c.cli(['put', join(local, 'f'), '/f'])).code, 0, 'stored on all three')
  // Freeze the DataServer the NameServer lists first for the most blocks (and one more):
  // those blocks send the read to a frozen server first.
  const client = createClient(loadConfigFile(c.configPath))
  const plan = await client.getBlocks({ path: '/f' })
  await client.close()
  const firsts = new Map<string, number>()
  for (const b of plan.blocks) firsts.set(b.locations[0]!.id, (firsts.get(b.locations[0]!.id) ?? 0) + 1)
  const byCount = [...firsts].sort((a, b) => b[1] - a[1]).map(([id]) => id)
  const others = c.dataServers.map(d => d.id).filter(id => !byCount.includes(id))
  const frozenIds = [...byCount, ...others].slice(0, 2)
  t.comment(`blocks listing each DataServer first: ${JSON.stringify([...firsts])}; freezing ${frozenIds.join(', ')}`)
  const frozen = c.dataServers.filter(d => frozenIds.includes(d.id)).map(d => d.pid)
  t.equal(frozen.length, 2)
  for (const pid of frozen) process.kill(pid, 'SIGSTOP')
  t.teardown(() => { for (const pid of frozen) { try { process.kill(pid, 'SIGCONT') } catch {} } })
  const timeoutMs = TEST_TIMINGS['client.timeout.ms']
  const t0 = Date.now()
  const cat = await c.cli(['cat', '/f'], { timeoutMs: 170_000 })
  const ms = Date.now() - t0
  t.equal(cat.code, 0, `cat succeeds: ${cat.stderr.trim().slice(-300)}`)
  t.equal(sha256(cat.stdout), sha256(data), 'with the right bytes')
  // At most a timeout per frozen server; without the memory every block that lists a
  // frozen server first cost one or more timeouts.
  t.ok(ms < 4 * timeoutMs, `in ${ms} ms (client.timeout.ms ${timeoutMs})`)
})
