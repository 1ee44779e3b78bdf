// Failure handling against a real cluster: a read survives the DataServer it streams
// from going away mid-block, and a write rides over a DataServer that died without
// the NameServer knowing yet.
import t from 'tap'
import { Readable } from 'node:stream'
import { buffer as readAll } from 'node:stream/consumers'
import { open } from 'node:fs/promises'
import { createLogger } from '../../src/common/log.js'
import { StorageLayout } from '../../src/dataserver/storage-layout.js'
import { startCluster } from '../helpers/inprocess-cluster.js'
import { Rng } from '../helpers/rng.js'
import { sha256 } from '../helpers/cluster-files.js'

const MiB = 1024 * 1024
const sha = sha256

/** Deterministic pseudo-random bytes (so block boundaries fall inside varied data). */
const bytes = (len: number, seed: number): Buffer => new Rng(seed).bytes(len)

t.test('a read survives its DataServer closing mid-stream', async t => {
  // Big blocks, so a paused reader is really in the middle of one when the server goes
  // (socket buffers cannot hold the rest of the block).
  const c = await startCluster(t, { dataServers: 3, replication: 2, blockSize: 8 * MiB })
  const lines: Array<Record<string, unknown>> = []
  const log = createLogger('client', 'debug', l => { lines.push(JSON.parse(l) as Record<string, unknown>) })
  const reader = c.newClient({ log })
  const data = bytes(24 * MiB, 11)
  await c.client.put('/big', Readable.from((function * () { for (let i = 0; i < data.length; i += 256 * 1024) yield data.subarray(i, i + 256 * 1024) })()))

  const plan = await reader.getBlocks({ path: '/big' })
  const stream = reader.createReadStream('/big')
  const parts: Buffer[] = []
  let received = 0
  // Read 1 MiB, then stop reading (backpressure) and close the server mid-block.
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      parts.push(chunk)
      received += chunk.length
      if (received >= MiB) { stream.pause(); stream.off('data', onData); resolve() }
    }
    stream.on('data', onData)
    stream.once('error', reject)
  })
  // The server streaming to us is the one with an open block stream.
  let victim = -1
  for (let i = 0; i < c.dataServers.length; i++) if ((await c.dataServers[i]!.storageReport()).activeStreams > 0) victim = i
  t.ok(victim >= 0, 'a DataServer is mid-stream')
  const victimId = c.dataServers[victim]!.id
  await c.stopDataServer(victim, { unregister: false })
  for await (const chunk of stream) parts.push(chunk as Buffer)
  const back = Buffer.concat(parts)
  t.equal(back.length, data.length)
  t.equal(sha(back), sha(data), 'every byte once, in order')
  const failures = lines.filter(l => l.msg === 'replica read failed' && l.dataserver === victimId)
  t.ok(failures.length >= 1, 'a replica read failed on the closed server')
  t.ok(failures.some(l => typeof l.delivered === 'number' && l.delivered > 0 && l.block === plan.blocks[0]!.id), 'and the read resumed mid-block')
  t.notOk(lines.some(l => l.msg === 'reported bad replica'), 'a server that went away is not reported as corrupt')
})

t.test('a write rides over a DataServer that died unnoticed', async t => {
  const c = await startCluster(t, { dataServers: 3, replication: 2, blockSize: MiB })
  const ids = c.dataServers.map(d => d!.id)
  await c.stopDataServer(0, { unregister: false })
  // The NameServer still lists it as live (heartbeat.dead.ms not over): some pipelines
  // will start with it and must be retried elsewhere.
  const data = bytes(6 * MiB + 3, 12)
  const st = await c.client.put('/w', Readable.from([data]))
  t.equal(st.size, data.length)
  const plan = await c.client.getBlocks({ path: '/w' })
  for (const b of plan.blocks) t.notOk(b.locations.some(l => l.id === ids[0]), `block ${b.id} not on the dead server`)
  t.equal(sha(await readAll(c.client.createReadStream('/w'))), sha(data))
  // Buffers given to storeBlock are retried too.
  const s = await c.client.openWrite({ path: '/w2' }, { create: true })
  const refs = []
  for (let i = 0; i < 4; i++) refs.push(await s.storeBlock(bytes(1000 + i, i)))
  const st2 = await s.commit(refs)
  t.equal(st2.size, 4000 + 6)
})

t.test('a corrupt replica is never served: the read fails over to a good one', async t => {
  const c = await startCluster(t, { dataServers: 2, replication: 2, blockSize: MiB })
  const lines: Array<Record<string, unknown>> = []
  const reader = c.newClient({ log: createLogger('client', 'debug', l => { lines.push(JSON.parse(l) as Record<string, unknown>) }) })
  const data = bytes(3 * MiB, 13)
  await c.client.put('/c', Readable.from([data]))
  const plan = await reader.getBlocks({ path: '/c' })
  const b = plan.blocks[1]!
  t.equal(b.locations.length, 2, 'two replicas')
  const first = b.locations[0]!
  const i = c.indexOf(first.id)
  // Flip one byte in the middle of the first replica's data file.
  const fh = await open(new StorageLayout(c.dataServerDirs[i]!).dataPath(b.id, b.gen), 'r+')
  try {
    const one = Buffer.alloc(1)
    await fh.read(one, 0, 1, 300_000)
    one[0] = one[0]! ^ 0xff
    await fh.write(one, 0, 1, 300_000)
  } finally {
    await fh.close()
  }
  // Replicas are tried in the order given: the corrupt one first.
  const others = b.locations.filter(l => l.id !== first.id)
  const blockBytes = await readAll(reader.readBlock({ ...b, locations: [first, ...others] }, 0, b.length, { ino: plan.stat.ino }))
  t.ok(blockBytes.equals(data.subarray(b.offset, b.offset + b.length)), 'the reader got the good bytes of the block')
  t.ok(lines.some(l => l.msg === 'replica read failed' && l.dataserver === first.id && l.block === b.id), 'the corrupt replica failed the read')
  t.equal(sha(await readAll(reader.createReadStream('/c'))), sha(data), 'the whole file reads back intact')
  // The client reports it too (after checking the DataServer is alive, so it was a cut
  // for corruption, not a crash). Fire-and-forget: wait for it, bounded.
  for (let k = 0; k < 100 && !lines.some(l => l.msg === 'reported bad replica'); k++) await new Promise(resolve => setTimeout(resolve, 30))
  t.ok(lines.some(l => l.msg === 'reported bad replica' && l.dataserver === first.id), 'bad replica reported to the NameServer')
})
