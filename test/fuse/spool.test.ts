// The mount's spool files: content starts in memory and moves to a temp file only when
// it grows past SPOOL_MEMORY_BYTES; every read, write and truncate sees the same bytes
// either way, also while the move is under way.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SPOOL_MEMORY_BYTES, Spool } from '../../src/fuse/spool.js'
import { waitUntil } from '../helpers/wait-until.js'

/** Wait (bounded) for the spool's descriptors to close: a discard closes them asynchronously. */
async function closesDone (spool: Spool): Promise<void> {
  await waitUntil(() => spool.openFiles === 0, { timeoutMs: 2000, intervalMs: 10, what: 'spool files closed' }).catch(() => {})
}

async function freshSpool (t: Test): Promise<{ spool: Spool, dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'hiss-spool-test-'))
  const spool = new Spool(dir)
  t.teardown(async () => { await spool.destroy(); await rm(dir, { recursive: true, force: true }) })
  return { spool, dir }
}

async function readAll (f: { read: (dst: Buffer, off: number, len: number, pos: number) => Promise<void> }, len: number): Promise<Buffer> {
  const b = Buffer.alloc(len, 0xaa)
  await f.read(b, 0, len, 0)
  return b
}

t.test('a small spool file stays in memory and reads back what was written', async t => {
  const { spool } = await freshSpool(t)
  const f = await spool.create()
  const a = randomBytes(5000)
  await f.write(a, 0)
  let done = 0
  const b = randomBytes(3000)
  await f.writeBehind(b, 7000, () => { done++ })
  t.equal(done, 1, 'writeBehind is done at once: the bytes were copied')
  t.ok(f.inMemory, 'no temp file for 10 KB')
  const got = await readAll(f, 12000)
  t.ok(got.subarray(0, 5000).equals(a), 'first write')
  t.ok(got.subarray(5000, 7000).equals(Buffer.alloc(2000)), 'the gap reads as zeros')
  t.ok(got.subarray(7000, 10000).equals(b), 'second write')
  t.ok(got.subarray(10000).equals(Buffer.alloc(2000)), 'past the end reads as zeros')
  t.equal(spool.openFiles, 1)
  f.discard()
  await closesDone(spool)
  t.equal(spool.openFiles, 0, 'discarded')
})

t.test('truncate in memory: shrinking then growing reads zeros, not the old bytes', async t => {
  const { spool } = await freshSpool(t)
  const f = await spool.create()
  await f.write(Buffer.alloc(8192, 7), 0)
  await f.truncate(100)
  await f.truncate(9000)
  const got = await readAll(f, 9000)
  t.ok(got.subarray(0, 100).equals(Buffer.alloc(100, 7)), 'kept bytes')
  t.ok(got.subarray(100).equals(Buffer.alloc(8900)), 'cut bytes are zeros after growing')
  t.ok(f.inMemory)
  await f.truncate(SPOOL_MEMORY_BYTES + 10)
  t.notOk(f.inMemory, 'a length past the limit moves it to a temp file')
  const after = await readAll(f, SPOOL_MEMORY_BYTES + 10)
  t.ok(after.subarray(0, 100).equals(Buffer.alloc(100, 7)) && after.subarray(100).equals(Buffer.alloc(SPOOL_MEMORY_BYTES - 90)), 'same bytes on the file')
  f.discard()
})

t.test('growing past the limit moves the content to an (unlinked) temp file, writes racing the move included', async t => {
  const { spool, dir } = await freshSpool(t)
  const f = await spool.create()
  const want = Buffer.alloc(SPOOL_MEMORY_BYTES * 3)
  const piece = (i: number): Buffer => Buffer.alloc(64 * 1024, i + 1)
  // Issued without waiting, as FUSE writes of one sequential writer can be: some land
  // in memory, one starts the move, the rest wait for it.
  const writes: Array<Promise<void>> = []
  for (let i = 0; i < 12; i++) {
    const p = piece(i)
    p.copy(want, i * p.length)
    writes.push(i % 2 === 0 ? f.write(p, i * p.length) : f.writeBehind(Buffer.from(p), i * p.length))
  }
  await Promise.all(writes)
  t.notOk(f.inMemory, 'on a temp file now')
  const got = await readAll(f, want.length)
  t.ok(got.equals(want), 'every byte where it was written')
  const names = readdirSync(dir).flatMap(d => readdirSync(join(dir, d)))
  t.same(names, [], 'the temp file is unlinked at once')
  f.discard()
  await closesDone(spool)
  t.equal(spool.openFiles, 0, 'closed after discard')
})

t.test('discard while the content moves to its temp file closes that file', async t => {
  const { spool } = await freshSpool(t)
  const f = await spool.create()
  await f.write(Buffer.alloc(1000, 1), 0)
  const move = f.write(Buffer.alloc(SPOOL_MEMORY_BYTES, 2), 1000)
  f.discard()
  await move.catch(() => {})
  await closesDone(spool)
  t.equal(spool.openFiles, 0, 'no descriptor left behind')
  await t.rejects(f.read(Buffer.alloc(10), 0, 10, 0), 'reading a discarded spool file is an error')
})

t.test('queueWrite on a temp file returns once queued; reads, truncates and drains see the bytes', async t => {
  const { spool } = await freshSpool(t)
  const f = await spool.create()
  await f.truncate(SPOOL_MEMORY_BYTES * 2)
  t.notOk(f.inMemory)
  const kernel = Buffer.alloc(4096, 5)
  const at = [SPOOL_MEMORY_BYTES + 8192, 4096, SPOOL_MEMORY_BYTES * 2 - 4096]
  for (const pos of at) await f.queueWrite(kernel, pos)
  kernel.fill(0xee) // the caller's buffer is reused at once, as fuse-native's is
  const got = await readAll(f, SPOOL_MEMORY_BYTES * 2)
  for (const pos of at) t.ok(got.subarray(pos, pos + 4096).equals(Buffer.alloc(4096, 5)), `bytes at ${pos}`)
  t.equal(got.subarray(0, 4096).equals(Buffer.alloc(4096)), true, 'untouched bytes stay zero')
  f.discard()
})

t.test('a temp file that cannot be made (its directory gone, as on a full or broken disk) fails the write and every later use, and still closes', async t => {
  const { spool, dir } = await freshSpool(t)
  const f = await spool.create()
  await f.write(Buffer.alloc(1000, 1), 0)
  t.ok(f.inMemory)
  await rm(dir, { recursive: true, force: true })
  await t.rejects(f.write(Buffer.alloc(SPOOL_MEMORY_BYTES, 2), 1000), 'the write that needs the temp file fails')
  await t.rejects(f.read(Buffer.alloc(10), 0, 10, 0), 'so does a later read')
  await t.rejects(f.queueWrite(Buffer.alloc(10), 0), 'and a later write')
  f.discard()
  await closesDone(spool)
  t.equal(spool.openFiles, 0, 'closed all the same')
})
