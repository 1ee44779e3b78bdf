// Reads answered inside the patched fuse-native from the pieces the mount's block cache
// holds (mirrored to the addon) instead of a hop into JS per read. Shown here: a second
// pass over cached data barely reaches the JS read (the mount logs every op at debug
// level and the test counts them) and returns the right bytes; and nothing is ever
// answered stale: a write or truncate through another handle of this mount, a commit,
// and another mount's new content (after open) all show in reads of a handle that
// had been reading natively. Reads use O_DIRECT so that each one reaches the mount
// instead of the kernel's page cache.
import t, { type Test } from 'tap'
import { constants } from 'node:fs'
import { open, readFile, writeFile } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { randomBytes, createHash } from 'node:crypto'
import { join } from 'node:path'
import { FUSE_TEST_CONFIG as STABLE, fuseSkipReason, mountOpLog, settleMountLog, startMount } from '../helpers/mount.js'
import { startCluster } from '../helpers/inprocess-cluster.js'
import { Rng } from '../helpers/rng.js'
import { writeAt } from '../helpers/model.js'

const KiB = 1024
const MiB = 1024 * KiB
const READ = 128 * KiB

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** The offsets of a file's READ-sized pieces, in an order that is never a sequential run. */
function scattered (size: number): number[] {
  const offs: number[] = []
  for (let o = 0; o < size; o += READ) offs.push(o)
  // Odd positions forwards, then even ones backwards: no two reads in a row are adjacent.
  return [...offs.filter((_, i) => i % 2 === 1), ...offs.filter((_, i) => i % 2 === 0).reverse()]
}

async function preadAll (fh: FileHandle, size: number, order: number[]): Promise<Buffer> {
  const out = Buffer.alloc(size)
  for (const off of order) {
    const { bytesRead } = await fh.read(out, off, Math.min(READ, size - off), off)
    if (bytesRead !== Math.min(READ, size - off)) throw new Error(`short read at ${off}: ${bytesRead}`)
  }
  return out
}

async function suite (t: Test): Promise<void> {
  const cluster = await startCluster(t, { config: { ...STABLE, 'block.size': 2 * MiB }, dataServers: 1, replication: 1 })
  const log = mountOpLog()
  const a = await startMount(t, cluster.cfg, { config: { 'log.level': 'debug' }, onStderr: d => { log.feed(d) } })
  const b = await startMount(t, cluster.cfg)
  const settle = (): Promise<void> => settleMountLog(a.dir, log)

  const size = 5 * MiB + 12345
  const data = randomBytes(size)
  await writeFile(join(b.dir, 'f'), data)
  const reads = scattered(size).length

  await t.test('a second pass over cached pieces stays out of JS and reads the right bytes', async t => {
    const fh = await open(join(a.dir, 'f'), constants.O_RDONLY | constants.O_DIRECT)
    try {
      await settle()
      log.take()
      t.equal(sha(await preadAll(fh, size, scattered(size))), sha(data), 'first pass: the content')
      await settle()
      t.ok((log.take()['op:read'] ?? 0) >= 1, 'the first pass went through JS (nothing was cached)')
      t.equal(sha(await preadAll(fh, size, scattered(size).reverse())), sha(data), 'second pass: the content')
      await settle()
      const js = log.take()['op:read'] ?? 0
      t.ok(js <= reads / 10, `second pass: ${js} of ${reads} reads reached JS`)
    } finally {
      await fh.close()
    }
  })

  await t.test('a write or truncate through another handle shows at once in a handle that read natively', async t => {
    const r = await open(join(a.dir, 'f'), constants.O_RDONLY | constants.O_DIRECT)
    const w = await open(join(a.dir, 'f'), 'r+')
    try {
      const buf = Buffer.alloc(READ)
      await preadAll(r, size, scattered(size))
      await preadAll(r, size, scattered(size))
      await settle()
      log.take()
      await r.read(buf, 0, READ, MiB)
      await settle()
      t.equal(log.take()['op:read'] ?? 0, 0, 'the handle reads natively before the write')
      t.same(buf, data.subarray(MiB, MiB + READ), 'and reads the committed bytes')

      await w.write(Buffer.from('NEW BYTES'), 0, 9, MiB + 100)
      const { bytesRead } = await r.read(buf, 0, READ, MiB)
      t.equal(bytesRead, READ, 'full read after the write')
      t.equal(buf.subarray(100, 109).toString(), 'NEW BYTES', 'the read-only handle sees the other handle\'s write')
      t.same(buf.subarray(0, 100), data.subarray(MiB, MiB + 100), 'and the bytes around it unchanged')

      await w.truncate(3 * MiB + 7)
      const tail = await r.read(buf, 0, READ, 3 * MiB)
      t.equal(tail.bytesRead, 7, 'a read across the new end is short')
      t.equal((await r.read(buf, 0, READ, 4 * MiB)).bytesRead, 0, 'a read past the new end reads nothing')

      await w.sync()
      await w.close()
      const after = await preadAll(r, 3 * MiB + 7, scattered(3 * MiB + 7))
      const want = Buffer.from(data.subarray(0, 3 * MiB + 7))
      want.write('NEW BYTES', MiB + 100)
      t.equal(sha(after), sha(want), 'after the commit: the new content, read again (natively or not)')
    } finally {
      await w.close().catch(() => {})
      await r.close()
    }
    t.equal(sha(await readFile(join(b.dir, 'f'))), sha(Buffer.concat([data.subarray(0, MiB + 100), Buffer.from('NEW BYTES'), data.subarray(MiB + 109, 3 * MiB + 7)])), 'the other mount reads what was committed')
  })

  await t.test('another mount\'s new content shows after open, also in handles that read natively', async t => {
    const fresh = randomBytes(4 * MiB)
    const r = await open(join(a.dir, 'g'), 'w').then(async fh => { await fh.write(data.subarray(0, 4 * MiB)); await fh.close(); return open(join(a.dir, 'g'), constants.O_RDONLY | constants.O_DIRECT) })
    try {
      await preadAll(r, 4 * MiB, scattered(4 * MiB))
      t.equal(sha(await preadAll(r, 4 * MiB, scattered(4 * MiB))), sha(data.subarray(0, 4 * MiB)), 'the first content')
      await writeFile(join(b.dir, 'g'), fresh)
      const r2 = await open(join(a.dir, 'g'), constants.O_RDONLY | constants.O_DIRECT)
      try {
        t.equal(sha(await preadAll(r2, 4 * MiB, scattered(4 * MiB))), sha(fresh), 'a new handle reads the new content')
        t.equal(sha(await preadAll(r, 4 * MiB, scattered(4 * MiB))), sha(fresh), 'and so does the older handle (the open re-read the file)')
      } finally {
        await r2.close()
      }
    } finally {
      await r.close()
    }
  })
}

/**
 * Rounds of: a reader (O_DIRECT) reads random ranges until it reads natively, then a
 * writer on another handle changes the file (writes, truncates, fsync) while the reader
 * keeps reading, then both close. Every read must match a model of the file, and enough
 * of them must have been answered natively for the test to mean something.
 */
async function modelRun (t: Test): Promise<void> {
  const cluster = await startCluster(t, { config: { ...STABLE, 'block.size': 2 * MiB }, dataServers: 1, replication: 1 })
  const log = mountOpLog()
  const a = await startMount(t, cluster.cfg, { config: { 'log.level': 'debug' }, onStderr: d => { log.feed(d) } })
  const rng = new Rng(7)
  const path = join(a.dir, 'model')
  let model = rng.bytes(3 * MiB + 300)
  await writeFile(path, model)
  const buf = Buffer.alloc(READ)
  let mismatches = 0
  let reads = 0
  const check = async (fh: FileHandle, what: string): Promise<void> => {
    // Reads within one piece (the kernel sends each as one FUSE read).
    const off = rng.below(model.length + READ)
    const len = 1 + rng.below(READ)
    const { bytesRead } = await fh.read(buf, 0, len, off)
    const want = model.subarray(Math.min(off, model.length), Math.min(off + len, model.length))
    reads++
    if (bytesRead !== want.length || !buf.subarray(0, bytesRead).equals(want)) {
      if (mismatches++ < 5) t.fail(`${what}: read ${len} at ${off} gave ${bytesRead} bytes, ${want.length} expected, ${bytesRead === want.length ? 'different' : 'short or long'}`)
    }
  }
  await settleMountLog(a.dir, log)
  log.take()
  for (let round = 0; round < 12; round++) {
    const reader = await open(path, constants.O_RDONLY | constants.O_DIRECT)
    let writer: FileHandle | undefined
    try {
      for (let k = 0; k < 24; k++) await check(reader, `round ${round}, before the writer`)
      writer = await open(path, 'r+')
      for (let step = 0; step < 6; step++) {
        const op = rng.below(8)
        if (op < 5) {
          const off = rng.below(model.length + 64 * KiB)
          const data = rng.bytes(1 + rng.below(64 * KiB))
          await writer.write(data, 0, data.length, off)
          model = writeAt(model, data, off)
        } else if (op === 5) {
          const size = rng.below(model.length + MiB)
          await writer.truncate(size)
          const next = Buffer.alloc(size)
          model.copy(next, 0, 0, Math.min(size, model.length))
          model = next
        } else {
          await writer.sync()
        }
        for (let k = 0; k < 4; k++) await check(reader, `round ${round}, step ${step}`)
      }
    } finally {
      await writer?.close()
      await reader.close()
    }
  }
  await settleMountLog(a.dir, log)
  const js = log.take()['op:read'] ?? 0
  t.equal(mismatches, 0, `${reads} random reads matched the model`)
  t.ok(js < reads * 0.8, `some reads were answered natively (${reads - js} or more of ${reads})`)
  t.equal(sha(await readFile(path)), sha(model), 'the file after the last close')
}

const skip = fuseSkipReason()
if (skip !== undefined) {
  t.test('FUSE tests', { skip }, async () => {})
} else {
  t.test('native reads', async t => { await suite(t) })
  t.test('native reads against a model of the file', async t => { await modelRun(t) })
}
