// Writes answered by the patched fuse-native without a hop into JS (HissFuseFs.asyncWrite):
// once a handle has written under its file's lease, its writes are copied by the addon,
// answered at once and run by the mount in order. Shown here: most writes of a stream
// take that way and the file arrives intact on another mount; every such write is seen
// at once by fstat, stat and reads of another handle on the same mount (the ops wait for
// the queued writes); and an error of a queued write reaches the program at its next
// write or at close, never lost.
import t, { type Test } from 'tap'
import { constants } from 'node:fs'
import { mkdtemp, open, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { createHash, randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { FUSE_TEST_CONFIG as STABLE, fuseSkipReason, mountOpLog, settleMountLog, sh, shOk, startMount } from '../helpers/mount.js'
import { startCluster } from '../helpers/inprocess-cluster.js'
import { Rng } from '../helpers/rng.js'
import { writeAt } from '../helpers/model.js'

const KiB = 1024
const MiB = 1024 * KiB
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
const q = (p: string): string => JSON.stringify(p)

async function suite (t: Test): Promise<void> {
  const cluster = await startCluster(t, { config: { ...STABLE, 'block.size': 2 * MiB }, dataServers: 1, replication: 1 })
  const log = mountOpLog()
  const a = await startMount(t, cluster.cfg, { config: { 'log.level': 'debug' }, onStderr: d => { log.feed(d) } })
  const b = await startMount(t, cluster.cfg)
  const settle = (): Promise<void> => settleMountLog(a.dir, log)

  await t.test('a stream of writes is answered by the addon and arrives intact', async t => {
    const data = randomBytes(5 * MiB + 777)
    const chunk = 128 * KiB
    const writes = Math.ceil(data.length / chunk)
    await settle()
    log.take()
    const fh = await open(join(a.dir, 'stream'), 'w')
    let short = 0
    try {
      for (let off = 0; off < data.length; off += chunk) {
        const n = Math.min(chunk, data.length - off)
        if ((await fh.write(data, off, n, off)).bytesWritten !== n) short++
      }
    } finally {
      await fh.close()
    }
    t.equal(short, 0, 'every write wrote all its bytes')
    await settle()
    const ops = log.take()
    const sync = ops['op:write'] ?? 0
    const queued = ops['op:awrite'] ?? 0
    t.equal(sync + queued, writes, `every write ran once (${sync} ordinary, ${queued} queued)`)
    t.ok(queued >= writes / 2, `most writes were answered by the addon: ${queued} of ${writes}`)
    t.equal(sha(await readFile(join(b.dir, 'stream'))), sha(data), 'another mount reads the whole file after close')
  })

  await t.test('each write shows at once in fstat, stat and reads of another handle', async t => {
    const rng = new Rng(7)
    let model: Buffer = Buffer.from(rng.bytes(MiB))
    const path = join(a.dir, 'rw')
    const w0 = await open(path, 'w')
    await w0.write(model, 0, model.length, 0)
    await w0.close()
    const w = await open(path, constants.O_RDWR | constants.O_DIRECT)
    const r = await open(path, constants.O_RDONLY | constants.O_DIRECT)
    let wrong = 0
    try {
      await settle()
      log.take()
      for (let i = 0; i < 300; i++) {
        const grow = i % 25 === 24
        const off = grow ? model.length + rng.below(3) * 4 * KiB : rng.below(model.length / (4 * KiB)) * 4 * KiB
        const data = Buffer.from(rng.bytes(4 * KiB))
        await w.write(data, 0, data.length, off)
        model = writeAt(model, data, off)
        const size = (await w.stat()).size
        const pathSize = (await stat(path)).size
        const back = Buffer.alloc(4 * KiB)
        const { bytesRead } = await r.read(back, 0, back.length, off)
        if (size !== model.length || pathSize !== model.length || bytesRead !== back.length || !back.equals(data)) {
          wrong++
          if (wrong <= 3) t.fail(`write ${i} at ${off}: fstat ${size}, stat ${pathSize}, want ${model.length}; read ${bytesRead} bytes, ${back.equals(data) ? 'equal' : 'different'}`)
        }
      }
      await settle()
      const ops = log.take()
      t.ok((ops['op:awrite'] ?? 0) >= 100, `the writes went the queued way: ${ops['op:awrite'] ?? 0} of 300 (${ops['op:write'] ?? 0} ordinary)`)
      t.equal(wrong, 0, 'no write was missing from fstat, stat or a read right after it')
      t.equal(sha(await readFile(path)), sha(model), 'the mount reads the model before close')
    } finally {
      await w.close()
      await r.close()
    }
    t.equal(sha(await readFile(join(b.dir, 'rw'))), sha(model), 'another mount reads the model after close')
  })

  await t.test('SIGTERM with a file still open: the writes answered before it are committed', async t => {
    // The mount commits open files at SIGTERM (HissMount.shutdown). Writes still queued at
    // that instant run first, but by the time the signal lands here they have usually run
    // already: this shows the commit of an open file's queued writes, not that ordering.
    const c = await startMount(t, cluster.cfg)
    const data = randomBytes(2 * MiB + 999)
    const fh = await open(join(c.dir, 'open-at-exit'), 'w')
    try {
      for (let off = 0; off < data.length; off += 128 * KiB) {
        await fh.write(data, off, Math.min(128 * KiB, data.length - off), off)
      }
      const r = await c.stop()
      t.equal(r.code, 0, 'the mount exits 0')
    } finally {
      // Its mount is gone: closing reports an error (ENOTCONN), which is not the point here.
      await fh.close().catch(() => {})
    }
    t.equal(sha(await readFile(join(b.dir, 'open-at-exit'))), sha(data), 'another mount reads every byte written before the signal')
  })

  await t.test('dd and cmp through the queued way, then ls -l and du see the sizes', async t => {
    const local = await mkdtemp(join(tmpdir(), 'hiss-async-'))
    t.teardown(() => rm(local, { recursive: true, force: true }))
    const src = join(local, 'src.bin')
    await shOk(`head -c ${9 * MiB + 5} /dev/urandom > ${q(src)}`)
    await shOk(`dd if=${q(src)} of=${q(join(a.dir, 'dd.bin'))} bs=1M conv=fsync status=none`)
    t.equal((await sh(`cmp ${q(src)} ${q(join(a.dir, 'dd.bin'))}`)).code, 0, 'cmp: equal on the writing mount')
    t.equal((await sh(`cmp ${q(src)} ${q(join(b.dir, 'dd.bin'))}`)).code, 0, 'cmp: equal on another mount')
    t.match(await shOk(`ls -l ${q(join(a.dir, 'dd.bin'))}`), new RegExp(` ${9 * MiB + 5} `), 'ls -l shows the size')
  })
}

const skip = fuseSkipReason()
if (skip !== undefined) {
  t.comment(`skipping FUSE async write tests: ${skip}`)
  t.test('FUSE tests', { skip }, async () => {})
} else {
  await t.test('queued writes through a real mount', async t => { await suite(t) })
}
