// Every DataServer gone (crashed: the NameServer still lists them as live) while a file is
// being written through the mount. The writes keep being answered (into the mount's
// spool), but the mount must not spin: after an upload fails it does not start another
// one, with a fresh block allocated on the NameServer and a connection attempt, for every
// write that follows (it did: thousands of allocations a second, until the bytes
// "scheduled" on the dead servers made the NameServer answer ENOSPC). close() reports the
// failure, the mount keeps the bytes, and once DataServers are back the next close of the
// file commits them all; new files write again.
import t, { type Test } from 'tap'
import { open, readFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { FUSE_TEST_CONFIG as STABLE, MountLogCounter, fuseSkipReason, sh, startMount } from '../helpers/mount.js'
import { waitUntil } from '../helpers/wait-until.js'
import { startCluster } from '../helpers/inprocess-cluster.js'

const KiB = 1024
const MiB = 1024 * KiB
const ADDBLOCK = 'POST /v1/ns/write/addblock'

async function suite (t: Test): Promise<void> {
  const cluster = await startCluster(t, { config: { ...STABLE, 'block.size': 1 * MiB }, dataServers: 2, replication: 1 })
  const log = new MountLogCounter(j => j.msg === 'nameserver request' && j.req === ADDBLOCK ? [ADDBLOCK] : [])
  const m = await startMount(t, cluster.cfg, { config: { 'log.level': 'debug' }, onStderr: d => { log.feed(d) } })
  const path = join(m.dir, 'f')
  const piece = 128 * KiB

  const committed = randomBytes(2 * piece)
  const fh = await open(path, 'w')
  let closed = false
  t.teardown(async () => { if (!closed) await fh.close().catch(() => {}) })
  await fh.write(committed, 0, committed.length, 0)
  await fh.sync()

  for (let i = 0; i < 2; i++) await cluster.stopDataServer(i, { unregister: false })
  await log.takeSettled(m.dir)

  // 24 MiB in 128 KiB writes (24 blocks of 1 MiB): one allocation per write would be 192.
  const writes = 192
  const more = randomBytes(piece)
  const t0 = Date.now()
  const writeErrors: string[] = []
  for (let i = 0; i < writes; i++) {
    await fh.write(more, 0, piece, committed.length + i * piece).catch((err: NodeJS.ErrnoException) => { writeErrors.push(err.code ?? err.message) })
    if (writeErrors.length > 0) break
  }
  const allocations = (await log.takeSettled(m.dir))[ADDBLOCK] ?? 0
  t.comment(`${writes} writes in ${Date.now() - t0} ms with every DataServer down: ${allocations} block allocations, write errors: ${writeErrors.join(', ') || 'none'}`)
  t.ok(allocations <= 20, `the writer did not allocate a block per write (${allocations} allocations for ${writes} writes)`)

  const closeErr = await fh.close().then(() => undefined, (err: NodeJS.ErrnoException) => err.code ?? err.message)
  closed = true
  t.ok(writeErrors.length > 0 || closeErr !== undefined, `the failure reaches the program (write: ${writeErrors.join(', ') || 'none'}; close: ${closeErr ?? 'succeeded'})`)
  t.not(closeErr ?? writeErrors[0], 'ENOSPC', 'and is not reported as a full disk')

  for (let i = 0; i < 2; i++) await cluster.restartDataServer(i)
  await cluster.waitForLive(2)
  // The mount kept what close() could not commit (nothing the program wrote is dropped):
  // the next close of the file commits it.
  const whole = Buffer.concat([committed, ...Array.from({ length: writes }, () => more)])
  const back = await readFile(path)
  t.ok(back.equals(whole), `every byte written reads back once the DataServers are back (${back.length} of ${whole.length} bytes)`)
  t.equal((await cluster.client.stat('/f')).size, whole.length, 'and is committed on the NameServer')
  const src = randomBytes(3 * MiB + 5)
  const out = await open(join(m.dir, 'after2'), 'w')
  try { await out.write(src, 0, src.length, 0) } finally { await out.close() }
  t.ok((await readFile(join(m.dir, 'after2'))).equals(src), 'with the DataServers back, a new file writes and reads back intact')
}

/** No DataServer live at all (the NameServer declared them dead): EIO, not "disk full". */
async function noneLive (t: Test): Promise<void> {
  const cluster = await startCluster(t, { config: { 'heartbeat.interval.ms': 200, 'heartbeat.dead.ms': 1500, 'lease.timeout.ms': 30_000 }, dataServers: 1, replication: 1 })
  const m = await startMount(t, cluster.cfg)
  await cluster.stopDataServer(0, { unregister: false })
  await waitUntil(async () => (await cluster.client.report()).dataservers.every(d => d.state !== 'live') || undefined, { timeoutMs: 20_000, what: 'the DataServer declared dead' })
  const r = await sh(`dd if=/dev/zero of=${JSON.stringify(join(m.dir, 'g'))} bs=64k count=4 conv=fsync status=none`, { timeoutMs: 120_000 })
  t.not(r.code, 0, 'the write fails')
  t.match(r.stderr, /Input\/output error/, `with EIO: ${r.stderr.trim()}`)
}

/**
 * Every replica of a file gone (its DataServers stopped; the NameServer still lists them):
 * a read through the mount fails with EIO after one retry window (client.retry.ms), and
 * a read right after fails at once. It took four windows: the block cache retried the
 * lost block once, and the kernel followed the failed read-ahead with a one-page read.
 */
async function replicasGone (t: Test): Promise<void> {
  const retryMs = 3000
  const cluster = await startCluster(t, { config: STABLE, dataServers: 1, replication: 1 })
  const data = randomBytes(300 * KiB)
  await cluster.client.put('/x', Readable.from([data]))
  const m = await startMount(t, cluster.cfg, { config: { 'client.retry.ms': retryMs } })
  const path = JSON.stringify(join(m.dir, 'x'))
  await cluster.stopDataServer(0, { unregister: false })
  const t0 = Date.now()
  const r = await sh(`cat ${path} > /dev/null`, { timeoutMs: 120_000 })
  const first = Date.now() - t0
  t.not(r.code, 0, 'the read fails')
  t.match(r.stderr, /Input\/output error/, `with EIO: ${r.stderr.trim()}`)
  t.ok(first < 2.5 * retryMs, `after about one retry window of ${retryMs} ms, not four (${first} ms)`)
  const t1 = Date.now()
  const again = await sh(`cat ${path} > /dev/null`, { timeoutMs: 120_000 })
  const second = Date.now() - t1
  t.match(again.stderr, /Input\/output error/, 'a read right after fails too')
  t.ok(second < retryMs, `at once (${second} ms)`)
  await cluster.restartDataServer(0)
  await cluster.waitForLive(1)
  let back: Buffer | undefined
  await waitUntil(async () => {
    back = await readFile(join(m.dir, 'x')).catch(() => undefined)
    return back !== undefined || undefined
  }, { timeoutMs: 30_000, what: 'the file to read back once its DataServer is back' })
  t.ok(back?.equals(data), 'with the DataServer back the file reads back whole')
}

const skip = fuseSkipReason()
if (skip !== undefined) {
  t.comment(`skipping: ${skip}`)
  t.test('FUSE tests', { skip }, async () => {})
} else {
  t.test('all DataServers down during a write through the mount', { timeout: 180_000 }, async t => { await suite(t) })
  t.test('no DataServer live: a write through the mount fails with EIO', { timeout: 180_000 }, async t => { await noneLive(t) })
  t.test('every replica of a file gone: a read through the mount fails with EIO, without waiting four times', { timeout: 180_000 }, async t => { await replicasGone(t) })
}
