// A block patch in flight across kill -9 of the NameServer, with real processes: a
// writer patched a committed block in place (new generation on every replica) and the
// NameServer died before the commit. The restarted NameServer knows the write session
// and which generations it was handed for the block, so the commit goes through, and
// the file reads back with the change on every replica. (Before, a commit that reached
// the NameServer before its monitor settled the patch was refused with "does not match
// the file's content", and the close through the mount failed with EINVAL.)
import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { buffer as readAll } from 'node:stream/consumers'
import { createClient } from '../../src/client/index.js'
import type { HissWriteSession } from '../../src/client/write-session.js'
import { loadConfigFile } from '../../src/common/config.js'
import { startCluster } from '../helpers/cluster.js'
import { randomData, sha256, tempDir } from '../helpers/cluster-files.js'
import { waitUntil } from '../helpers/wait-until.js'

const KiB = 1024
const BLOCK = 256 * KiB

t.test('a block patch in flight rides out kill -9 of the NameServer', { timeout: 120_000 }, async t => {
  const c = await startCluster(t, { dataServers: 2, replication: 2, blockSize: BLOCK })
  const local = await tempDir(t)
  const model = randomData(2 * BLOCK + 1000)
  await writeFile(join(local, 'a'), model)
  t.equal((await c.cli(['put', join(local, 'a'), '/a'])).code, 0, 'the file is stored')

  const client = createClient(loadConfigFile(c.configPath))
  t.teardown(async () => { await client.close() })
  const s = await client.openWrite({ path: '/a' }) as HissWriteSession
  const blocks = [...s.baseBlocks]
  const edit = randomData(4096)
  const patched = await s.patchBlock(blocks[1]!, {
    length: blocks[1]!.length,
    ranges: [{ offset: 100, length: edit.length }],
    body: () => Readable.from([edit]),
  })
  t.ok(patched.gen > blocks[1]!.gen, 'both replicas moved to a new generation')

  // The DataServers are held (SIGSTOP) across the restart, so the commit reaches a
  // NameServer that has no report yet: it must recognise the patched generation as this
  // write's and wait for the reports, not refuse it, nor settle the patch on its own.
  const held = c.dataServers.map(d => d.pid)
  const resume = (): void => { for (const pid of held) { try { process.kill(pid, 'SIGCONT') } catch {} } }
  t.teardown(resume)
  for (const pid of held) process.kill(pid, 'SIGSTOP')
  await c.killNameServer('SIGKILL')
  await c.restartNameServer()
  const committing = s.commit([blocks[0]!, patched, blocks[2]!])
  await new Promise(resolve => setTimeout(resolve, 300))
  resume()
  const stat = await committing
  t.equal(stat.size, model.length, 'the commit after the restart is accepted')
  await c.waitForLive(2)
  edit.copy(model, BLOCK + 100)
  const back = await readAll(client.createReadStream('/a'))
  t.equal(sha256(back), sha256(model), 'the file reads back with the change')
  const cat = await c.cli(['cat', '/a'])
  t.equal(sha256(cat.stdout), sha256(model), 'also through the CLI')
  await waitUntil(async () => {
    const f = await c.fsck('/a')
    return f.healthy && f.underReplicated === 0 ? true : undefined
  }, { timeoutMs: 30_000, what: '/a healthy with both replicas' })
  const report = await c.report()
  t.equal((report as { openWrites?: number }).openWrites, 0, 'no write left open')
})
