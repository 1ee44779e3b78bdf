// kill -9 of the NameServer in the middle of `hissdfs put` of a local file. Write
// sessions live in the NameServer's memory, so the restarted one has forgotten the put's
// (LEASE_EXPIRED); nothing was committed, and the CLI sends the file again from the start.
// While the DataServers re-register after the restart, the NameServer (in safe mode)
// answers block allocations with SAFE_MODE, which the client retries, rather than "no
// DataServers". The DataServers are held with SIGSTOP from before the put until the
// NameServer is back, so the put is certainly in flight when the NameServer dies.
import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startCluster } from '../helpers/cluster.js'
import { randomData, sha256, tempDir } from '../helpers/cluster-files.js'
import { waitUntil } from '../helpers/wait-until.js'

const KiB = 1024

t.test('hissdfs put of a local file rides out a NameServer restart', { timeout: 180_000 }, async t => {
  const c = await startCluster(t, { dataServers: 2, replication: 1, blockSize: 256 * KiB })
  const local = await tempDir(t)
  // Files already there: the restarted NameServer waits in safe mode for their reports.
  await writeFile(join(local, 'old'), randomData(300 * KiB))
  t.equal((await c.cli(['put', join(local, 'old'), '/old'])).code, 0, 'a first file is stored')
  const data = randomData(8 * 1024 * KiB + 5)
  await writeFile(join(local, 'f'), data)

  // The DataServers are held first: the put opens its write, then waits on its first block.
  const held = c.dataServers.map(d => d.pid)
  const resume = (): void => { for (const pid of held) { try { process.kill(pid, 'SIGCONT') } catch {} } }
  t.teardown(resume)
  for (const pid of held) process.kill(pid, 'SIGSTOP')
  const child = c.spawnCli(['put', join(local, 'f'), '/f'])
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString('utf8') })
  const exited = new Promise<number | null>(resolve => { child.once('exit', code => { resolve(code) }) })
  await waitUntil(async () => ((await c.report()) as { openWrites?: number }).openWrites === 1 || undefined, { timeoutMs: 30_000, what: 'the put to open its write' })
  t.equal(child.exitCode, null, 'the put is still running when the NameServer is killed')
  await c.killNameServer('SIGKILL')
  await c.restartNameServer()
  resume()

  const code = await exited
  t.equal(code, 0, `the put succeeds (stderr: ${stderr.trim().slice(-400)})`)
  t.match(stderr, /write session lost, sending the file again/, 'after sending the file again')
  const cat = await c.cli(['cat', '/f'])
  t.equal(cat.code, 0, `cat: ${cat.stderr}`)
  t.equal(sha256(cat.stdout), sha256(data), 'the file reads back identical')
})
