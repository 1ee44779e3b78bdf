// `hissdfs put` of a local file while its write is interrupted. (1) kill -9 of the
// NameServer: write sessions are stored, so the restarted one knows the put's write and
// the put simply goes on. (2) The put process frozen (SIGSTOP) for longer than the lease:
// the NameServer ends its write (LEASE_EXPIRED), nothing was committed, and the put sends
// the file again from the start. In both, the DataServers are held with SIGSTOP from
// before the put starts, so it is certainly in flight when the interruption comes.
import t, { type Test } from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startCluster, TEST_TIMINGS, type Cluster } from '../helpers/cluster.js'
import { randomData, sha256, tempDir } from '../helpers/cluster-files.js'
import { waitUntil } from '../helpers/wait-until.js'

const KiB = 1024

async function openWrites (c: Cluster): Promise<number | undefined> {
  return ((await c.report()) as { openWrites?: number }).openWrites
}

/** Start a put of `local` with the DataServers held; resolves once its write is open. */
async function heldPut (t: Test, c: Cluster, local: string, remote: string): Promise<{ exited: Promise<number | null>, stderr: () => string, pid: number, resumeDataServers: () => void }> {
  const held = c.dataServers.map(d => d.pid)
  const resumeDataServers = (): void => { for (const pid of held) { try { process.kill(pid, 'SIGCONT') } catch {} } }
  t.teardown(resumeDataServers)
  for (const pid of held) process.kill(pid, 'SIGSTOP')
  const child = c.spawnCli(['put', local, remote])
  t.teardown(() => { try { child.kill('SIGCONT'); child.kill('SIGKILL') } catch {} })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString('utf8') })
  const exited = new Promise<number | null>(resolve => { child.once('exit', code => { resolve(code) }) })
  await waitUntil(async () => (await openWrites(c)) === 1 || undefined, { timeoutMs: 30_000, what: 'the put to open its write' })
  t.equal(child.exitCode, null, 'the put is in flight')
  return { exited, stderr: () => stderr, pid: child.pid as number, resumeDataServers }
}

t.test('hissdfs put of a local file rides out a NameServer restart and a lost lease', { timeout: 180_000 }, async t => {
  const c = await startCluster(t, { dataServers: 2, replication: 1, blockSize: 256 * KiB })
  const local = await tempDir(t)
  // Files already there: the restarted NameServer waits in safe mode for their reports.
  await writeFile(join(local, 'old'), randomData(300 * KiB))
  t.equal((await c.cli(['put', join(local, 'old'), '/old'])).code, 0, 'a first file is stored')
  const data = randomData(8 * 1024 * KiB + 5)
  await writeFile(join(local, 'f'), data)
  const check = async (remote: string): Promise<void> => {
    const cat = await c.cli(['cat', remote])
    t.equal(cat.code, 0, `cat ${remote}: ${cat.stderr}`)
    t.equal(sha256(cat.stdout), sha256(data), `${remote} reads back identical`)
  }

  await t.test('kill -9 of the NameServer: the write goes on', async t => {
    const p = await heldPut(t, c, join(local, 'f'), '/f')
    await c.killNameServer('SIGKILL')
    await c.restartNameServer()
    p.resumeDataServers()
    t.equal(await p.exited, 0, `the put succeeds (stderr: ${p.stderr().trim().slice(-400)})`)
    t.notMatch(p.stderr(), /sending the file again/, 'without sending the file again')
    await check('/f')
  })

  await t.test('the put frozen past its lease: the file is sent again', async t => {
    const p = await heldPut(t, c, join(local, 'f'), '/g')
    process.kill(p.pid, 'SIGSTOP')
    await waitUntil(async () => (await openWrites(c)) === 0 || undefined, { timeoutMs: 10 * TEST_TIMINGS['lease.timeout.ms'], what: 'the lease to lapse' })
    p.resumeDataServers()
    await c.waitForLive(2)
    process.kill(p.pid, 'SIGCONT')
    t.equal(await p.exited, 0, `the put succeeds (stderr: ${p.stderr().trim().slice(-400)})`)
    t.match(p.stderr(), /write session lost, sending the file again/, 'after sending the file again')
    await check('/g')
  })
})
