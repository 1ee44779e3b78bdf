// A writer killed halfway through `put`: nothing becomes visible at the path, the path
// can be written again once the lease (lease.timeout.ms) has expired, and the replicas
// it had already stored are garbage-collected from the DataServers' disks.
import t from 'tap'
import { once } from 'node:events'
import { startCluster, TEST_TIMINGS } from '../helpers/cluster.js'
import { findBlockFiles, generatedStream, sha256, type BlockFile } from '../helpers/cluster-files.js'
import { waitUntil } from '../helpers/wait-until.js'

const MiB = 1024 * 1024

t.test('kill -9 of a writer halfway through a put', async t => {
  const c = await startCluster(t, { dataServers: 3, replication: 2, blockSize: MiB })
  const allBlocks = async (): Promise<BlockFile[]> => (await Promise.all(c.dataServers.map(d => findBlockFiles(d.dir)))).flat()
  t.same(await allBlocks(), [], 'no replicas before')

  const writer = c.spawnCli(['put', '-', '/x'])
  const writerExit = once(writer, 'exit')
  let writerStderr = ''
  writer.stderr?.on('data', (d: Buffer) => { writerStderr += d.toString() })
  writer.stdin?.on('error', () => {})
  // Feed 4.5 MiB and keep stdin open: the put stores 4 blocks and waits for more.
  const { stream } = generatedStream(4.5 * MiB)
  stream.pipe(writer.stdin as NodeJS.WritableStream, { end: false })
  const partial = await waitUntil(async () => {
    const b = await allBlocks()
    return new Set(b.map(x => x.id)).size >= 3 ? b : undefined
  }, { timeoutMs: 30000, intervalMs: 100, what: 'the writer to store 3 blocks' })
  const started = new Set(partial.map(b => b.id))
  process.kill(writer.pid as number, 'SIGKILL')
  await writerExit
  stream.unpipe()
  stream.destroy()
  const killedAt = Date.now()
  t.ok(started.size >= 3, `writer stored ${started.size} blocks before it died (${writerStderr.trim()})`)

  t.equal((await c.cli(['exists', '/x'])).code, 1, 'nothing visible at /x')
  t.notOk((await c.cli(['ls', '/'])).stdout.toString().split('\n').includes('x'), 'ls does not list it')

  // The dead writer's lease expires; then the path can be written again.
  const second = await waitUntil(async () => {
    const r = await c.cli(['put', '-', '/x'], { input: 'second writer' })
    return r.code === 0 ? r : undefined
  }, { timeoutMs: TEST_TIMINGS['lease.timeout.ms'] + 20000, intervalMs: 300, what: 'a new put of /x to succeed' })
  t.equal(second.code, 0, `the path is writable again ${Date.now() - killedAt} ms after the writer died`)
  t.equal((await c.cli(['cat', '/x'])).stdout.toString(), 'second writer', 'and holds the new content')

  // Orphaned replicas of the dead write disappear from every DataServer.
  await waitUntil(async () => {
    const left = (await allBlocks()).filter(b => started.has(b.id))
    return left.length === 0 || undefined
  }, { timeoutMs: 30000, intervalMs: 500, what: `the dead writer's replicas (blocks ${[...started].join(',')}) to be deleted` })
  t.pass('the dead writer\'s replicas are deleted')
  const f = await c.fsck('/')
  t.equal(f.files, 1, 'one file in the namespace')
  t.equal(f.blocks, 1, 'with one block')
  t.equal(sha256((await c.cli(['cat', '/x'])).stdout), sha256('second writer'))
})
