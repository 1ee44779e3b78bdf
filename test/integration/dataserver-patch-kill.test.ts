// kill -9 of a real DataServer process in the middle of a block patch: the patch's body
// is half-way into its journal when the process dies. After a restart the torn journal
// is gone, the replica is the old generation, intact (checksums match), and a patch sent
// again applies.
import t from 'tap'
import http from 'node:http'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { signBlockToken } from '../../src/common/auth.js'
import { startCluster, TEST_SECRET } from '../helpers/cluster.js'
import { randomData, sha256 } from '../helpers/cluster-files.js'
import { waitUntil } from '../helpers/wait-until.js'

const KiB = 1024
const MiB = 1024 * KiB

t.test('kill -9 of a DataServer while a patch arrives', async t => {
  const c = await startCluster(t, { dataServers: 1, replication: 1, blockSize: 4 * MiB })
  await c.waitForLive(1)
  const data = randomData(3 * MiB)
  const put = await c.cli(['put', '-', '/f'], { input: data })
  t.equal(put.code, 0, put.stderr)
  const block = (await c.fsck('/f')).entries[0]!.blocks[0]!
  const ds = c.dataServers[0]!
  const journalDir = join(ds.dir, 'journal')

  const newGen = block.gen + 1_000_000
  const token = signBlockToken(TEST_SECRET, { b: block.id, g: newGen, a: 'w', e: Date.now() + 600000, f: [block.gen] })
  // Larger than a patch the DataServer keeps in memory: it streams into the journal.
  const body = randomData(1.5 * MiB)
  const req = http.request({
    host: '127.0.0.1',
    port: ds.port,
    method: 'POST',
    path: `/v1/blocks/${block.id}/patch?gen=${newGen}&length=${3 * MiB}`,
    headers: { 'x-hiss-token': token, 'x-hiss-patch-ranges': `${100 * KiB}+${body.length}`, 'content-length': String(body.length), 'content-type': 'application/octet-stream' },
    agent: false,
  })
  req.on('error', () => {})
  req.on('response', res => { res.resume() })
  req.write(body.subarray(0, 768 * KiB))
  // The first half reached the journal; the rest never comes.
  const journal = await waitUntil(async () => {
    const names = await readdir(journalDir).catch(() => [] as string[])
    const name = names[0]
    if (name === undefined) return undefined
    return (await stat(join(journalDir, name))).size >= 512 * KiB ? name : undefined
  }, { timeoutMs: 15000, intervalMs: 20, what: 'the journal to hold the first half of the patch' })
  t.match(journal, new RegExp(`^blk_${block.id}_${block.gen}_${newGen}\\.patch$`))
  const exit = await c.killDataServer(0, 'SIGKILL')
  t.equal(exit.signal, 'SIGKILL')
  req.destroy()

  await c.restartDataServer(0)
  await c.waitForLive(1)
  t.same(await readdir(journalDir), [], 'the torn journal is dropped at start')
  const back = await c.cli(['cat', '/f'])
  t.equal(back.code, 0, back.stderr)
  t.equal(sha256(back.stdout), sha256(data), 'the old generation is intact and verifies')
  const f = await c.fsck('/f')
  t.equal(f.healthy, true)
  t.same(f.entries[0]!.blocks[0]!.replicas.map(r => r.state), ['live'])
})
