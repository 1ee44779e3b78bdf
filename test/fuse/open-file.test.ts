// The open-file write path without FUSE or servers: OpenFile over an in-memory fake of
// the client (immutable blocks, block-list commits, leases), driven by random writes,
// reads, truncates, fsyncs and closes against a plain Buffer model, including uploads
// that fail. Also the attribute cache and the block cache on their own.
import t, { type Test } from 'tap'
import { Readable } from 'node:stream'
import { ManualClock, SystemClock, type Timer } from '../../src/common/clock.js'
import { HissError } from '../../src/common/errors.js'
import { silentLogger } from '../../src/common/log.js'
import type { BlockRef, FileStat, LocatedBlock } from '../../src/common/protocol.js'
import type { WriteSession } from '../../src/client/types.js'
import { AttrCache } from '../../src/fuse/attr-cache.js'
import { BlockCache } from '../../src/fuse/block-cache.js'
import { DirCache, RELIST_MAX_NAMES } from '../../src/fuse/dir-cache.js'
import { OpenFile, newReadCursor } from '../../src/fuse/open-file.js'
import { waitUntil } from '../helpers/wait-until.js'
import { Spool } from '../../src/fuse/spool.js'
import { Rng } from '../helpers/rng.js'

/** Wait (bounded) for the spool's descriptors to close: a discard closes them asynchronously. */
async function closesDone (spool: Spool): Promise<void> {
  await waitUntil(() => spool.openFiles === 0, { timeoutMs: 2000, intervalMs: 10, what: 'spool files closed' }).catch(() => {})
}


/** rnd(n) is an integer in [0, n), from a seeded generator. */
function prng (seed: number): (n: number) => number {
  const r = new Rng(seed)
  return (n: number): number => r.below(n)
}

const BS = 64 * 1024

/** One file's worth of a NameServer + DataServers, in memory. */
class FakeFs {
  readonly stored = new Map<string, Buffer>()
  blocks: BlockRef[] = []
  mtimeNs = '1000'
  nextId = 1
  commits = 0
  leaseHeld = false
  opens = 0
  aborts = 0
  /** Probability that a storeBlock fails (after reading its stream). */
  failRate = 0
  reads = 0
  private readonly r = prng(7)

  private rnd (): number { return this.r(1_000_000) / 1_000_000 }

  get size (): number { return this.blocks.reduce((n, b) => n + b.length, 0) }

  content (): Buffer {
    return Buffer.concat(this.blocks.map(b => this.stored.get(`${b.id}:${b.gen}`)!))
  }

  stat (): FileStat {
    return { ino: 5, type: 'file', mode: 0o644, uid: 0, gid: 0, size: this.size, nlink: 1, atimeNs: '0', mtimeNs: this.mtimeNs, ctimeNs: '0', replication: 1, blockSize: BS }
  }

  located (): LocatedBlock[] {
    let off = 0
    return this.blocks.map(b => { const l = { ...b, offset: off, locations: [], token: '' }; off += b.length; return l })
  }

  async getBlocks (): Promise<{ stat: FileStat, blocks: LocatedBlock[] }> {
    return { stat: this.stat(), blocks: this.located() }
  }

  readBlock (block: LocatedBlock, offset: number, length: number): Readable {
    this.reads++
    const data = this.stored.get(`${block.id}:${block.gen}`)
    if (data === undefined) return new Readable({ read () { this.destroy(HissError.from('BLOCK_LOST')) } })
    return Readable.from([data.subarray(offset, offset + length)])
  }

  async openWrite (): Promise<WriteSession> {
    if (this.leaseHeld) throw HissError.from('LEASE_HELD')
    this.leaseHeld = true
    this.opens++
    const fs = this
    let open = true
    const allocated = new Set<string>()
    return {
      writeId: 'w',
      ino: 5,
      blockSize: BS,
      replication: 1,
      baseBlocks: this.located(),
      baseSize: this.size,
      async storeBlock (data: Readable | Buffer): Promise<BlockRef> {
        const chunks: Buffer[] = []
        if (Buffer.isBuffer(data)) chunks.push(data)
        else for await (const c of data) chunks.push(c as Buffer)
        const buf = Buffer.concat(chunks)
        if (buf.length > BS) throw HissError.EINVAL('block too large')
        if (fs.rnd() < fs.failRate) throw HissError.EIO('injected pipeline failure')
        const ref = { id: fs.nextId++, gen: 1, length: buf.length }
        fs.stored.set(`${ref.id}:1`, buf)
        allocated.add(`${ref.id}:1`)
        return ref
      },
      async commit (blocks: BlockRef[], opts?: { mtimeNs?: string, keepOpen?: boolean }): Promise<FileStat> {
        if (!open) throw HissError.from('LEASE_EXPIRED')
        const current = new Set(fs.blocks.map(b => `${b.id}:${b.gen}`))
        for (const b of blocks) {
          const k = `${b.id}:${b.gen}`
          if (!current.has(k) && !allocated.has(k)) throw HissError.EINVAL(`unknown block ${k}`)
          if (fs.stored.get(k)!.length !== b.length) throw HissError.EINVAL(`bad length for ${k}`)
        }
        fs.blocks = blocks.map(b => ({ ...b }))
        if (opts?.mtimeNs !== undefined) fs.mtimeNs = opts.mtimeNs
        fs.commits++
        if (opts?.keepOpen !== true) { open = false; fs.leaseHeld = false }
        return fs.stat()
      },
      async abort (): Promise<void> { open = false; fs.leaseHeld = false; fs.aborts++ },
    }
  }

  async stat2 (): Promise<FileStat> { return this.stat() }
}

/** Real time, except that retry pauses pass at once. */
class HurryClock extends SystemClock {
  override setTimeout (fn: () => void, _ms: number): Timer { setImmediate(fn); return { id: 0 } }
}

function makeFile (fake: FakeFs, spool: Spool, readaheadBytes = 128 * 1024, cache = new BlockCache(fake, { capacityBytes: 512 * 1024, pieceBytes: 16 * 1024, log: silentLogger })): OpenFile {
  return new OpenFile({ client: fake, cache, spool, clock: new HurryClock(), log: silentLogger, readaheadBytes }, fake.stat(), '/f')
}

async function randomWorkout (t: Test, failRate: number, seed: number): Promise<void> {
  const fake = new FakeFs()
  const spool = new Spool()
  t.teardown(() => spool.destroy())
  let file = makeFile(fake, spool)
  file.refs = 1
  let model = Buffer.alloc(0)
  const rnd = prng(seed)
  let mismatches = 0
  let first = ''
  const miss = (what: string): void => { mismatches++; if (first === '') first = what }
  const diff = (): string => {
    const c = fake.content()
    let k = 0
    while (k < c.length && k < model.length && c[k] === model[k]) k++
    return `committed ${c.length} bytes, model ${model.length}, first difference at ${k}`
  }
  const ops: string[] = []
  for (let i = 0; i < 400; i++) {
    const op = rnd(20)
    if (op < 9) {
      const append = rnd(4) === 0
      const data = Buffer.alloc(1 + rnd(150_000), i % 251)
      for (let k = 0; k < data.length; k += 997) data[k] = rnd(256)
      const pos = append ? model.length : rnd(400_000)
      ops.push(`write ${data.length}@${append ? 'end=' + model.length : pos}`)
      await file.write(data, pos, append)
      const at = append ? model.length : pos
      if (at + data.length > model.length) model = Buffer.concat([model, Buffer.alloc(at + data.length - model.length)])
      data.copy(model, at)
    } else if (op < 14) {
      const len = 1 + rnd(200_000)
      const pos = rnd(450_000)
      const buf = Buffer.alloc(len)
      const n = await file.read(buf, len, pos, newReadCursor())
      const want = model.subarray(Math.min(pos, model.length), Math.min(pos + len, model.length))
      if (n !== want.length || !buf.subarray(0, n).equals(want)) miss(`op ${i}: read ${len}@${pos} gave ${n} bytes, wanted ${want.length}${n === want.length ? ' (different bytes)' : ''}`)
    } else if (op < 16) {
      const size = rnd(450_000)
      ops.push(`truncate ${size} (from ${model.length})`)
      await file.truncate(size)
      model = size <= model.length ? model.subarray(0, size) : Buffer.concat([model, Buffer.alloc(size - model.length)])
    } else if (op < 17) {
      ops.push('fsync')
      await file.fsync()
      if (!fake.content().equals(model)) miss(`op ${i}: content after fsync: ${diff()}; ops before: ${ops.slice(-6).join(', ')}`)
    } else if (op < 19) {
      ops.push('flush')
      await file.flush()
      if (!fake.content().equals(model)) miss(`op ${i}: content after flush: ${diff()}; ops before: ${ops.slice(-6).join(', ')}`)
    } else {
      // Last close, then a fresh open of the same file (close-to-open).
      await file.flush()
      await file.closeLast()
      await file.dispose()
      file = makeFile(fake, spool)
      file.refs = 1
      file.applyRemote(fake.stat(), fake.located())
    }
    if (file.size !== model.length) miss(`op ${i}: size ${file.size}, wanted ${model.length}`)
  }
  await file.flush()
  await file.closeLast()
  t.equal(mismatches, 0, `every read, size and commit matched the model${first === '' ? '' : '; first mismatch: ' + first}`)
  t.ok(fake.content().equals(model), 'committed content equals the model')
  t.notOk(fake.leaseHeld, 'lease given back on last close')
  const lens = fake.blocks.map(b => b.length)
  t.ok(lens.slice(0, -1).every(l => l === BS), 'every block but the last is full')
  await file.dispose()
  // Descriptors close asynchronously: give them a moment.
  await closesDone(spool)
  t.equal(spool.openFiles, 0, 'no spool file left open')
}



for (const seed of [1, 2, 3]) {
  t.test(`random writes, reads, truncates and commits match a model (seed ${seed})`, async t => {
    await randomWorkout(t, 0, seed)
  })
}

t.test('the same with one upload in seven failing', async t => {
  await randomWorkout(t, 0.15, 99)
})

t.test('sequential writes stream blocks as they fill and commit once on flush', async t => {
  const fake = new FakeFs()
  const spool = new Spool()
  t.teardown(() => spool.destroy())
  const file = makeFile(fake, spool)
  file.refs = 1
  const chunk = Buffer.alloc(8192, 1)
  for (let i = 0; i < 40; i++) await file.write(chunk, i * chunk.length, false)
  t.equal(fake.commits, 0, 'nothing visible before close')
  t.ok(fake.stored.size >= 4, `full blocks already uploaded while writing (${fake.stored.size})`)
  await file.flush()
  t.equal(fake.commits, 1, 'one commit on close')
  t.equal(fake.size, 40 * 8192)
  t.same(fake.blocks.map(b => b.length), [BS, BS, BS, BS, BS])
  await file.closeLast()
  await file.dispose()
})

t.test('appending to a partial last block copies only that block', async t => {
  const fake = new FakeFs()
  const spool = new Spool()
  t.teardown(() => spool.destroy())
  let file = makeFile(fake, spool)
  file.refs = 1
  await file.write(Buffer.alloc(BS * 2 + 100, 3), 0, false)
  await file.flush()
  await file.closeLast()
  const before = fake.blocks.map(b => b.id)
  file = makeFile(fake, spool)
  file.refs = 1
  file.applyRemote(fake.stat(), fake.located())
  await file.write(Buffer.from('tail'), 0, true)
  await file.flush()
  const after = fake.blocks.map(b => b.id)
  t.same(after.slice(0, 2), before.slice(0, 2), 'full blocks reused')
  t.not(after[2], before[2], 'partial block rewritten')
  t.equal(fake.content().subarray(-4).toString(), 'tail')
  t.equal(fake.size, BS * 2 + 104)
  await file.closeLast()
  await file.dispose()
})

t.test('a truncate into a stored, uncommitted block is committed by the next fsync', async t => {
  // Regression (found by seed 3 of the random workout): cutting into a stored block
  // commits the list part-way to read the block back, which cleared the dirty flag, so
  // the truncate itself never reached the NameServer.
  const fake = new FakeFs()
  const spool = new Spool()
  t.teardown(() => spool.destroy())
  const file = makeFile(fake, spool)
  file.refs = 1
  // Full blocks upload while being written: they are stored but not yet committed.
  await file.write(Buffer.alloc(BS * 2 + 500, 7), 0, false)
  await file.truncate(1000)
  await file.fsync()
  t.equal(fake.size, 1000, 'the committed file has the truncated size')
  t.ok(fake.content().equals(Buffer.alloc(1000, 7)), 'and the kept bytes')
  await file.closeLast()
  await file.dispose()
})

t.test('a second writer gets the lease error', async t => {
  const fake = new FakeFs()
  const spool = new Spool()
  t.teardown(() => spool.destroy())
  const a = makeFile(fake, spool)
  const b = makeFile(fake, spool)
  await a.write(Buffer.from('a'), 0, false)
  await t.rejects(b.write(Buffer.from('b'), 0, false), { code: 'LEASE_HELD' })
  await a.flush()
  await a.dispose()
  await b.dispose()
})

t.test('attribute cache: TTL, generations, trees and inodes', async t => {
  const clock = new ManualClock()
  const c = new AttrCache(clock, 1000)
  const st = (ino: number, size = 0): FileStat => ({ ino, type: 'file', mode: 0o644, uid: 0, gid: 0, size, nlink: 1, atimeNs: '0', mtimeNs: '0', ctimeNs: '0', replication: 1, blockSize: BS })
  c.set('/a', st(1))
  t.equal(c.get('/a')?.ino, 1)
  clock.advance(999)
  t.ok(c.get('/a'), 'still fresh')
  clock.advance(1)
  t.equal(c.get('/a'), undefined, 'expired')
  const gen = c.generation
  c.delete('/x')
  c.set('/a', st(1), gen)
  t.equal(c.get('/a'), undefined, 'a lookup older than an invalidation is not cached')
  c.set('/d', st(2)); c.set('/d/e', st(3)); c.set('/d/e/f', st(4)); c.set('/dd', st(5))
  c.deleteTree('/d')
  t.equal(c.get('/d/e/f'), undefined)
  t.ok(c.get('/dd'), 'a sibling with the same prefix survives')
  c.set('/p', st(6, 1)); c.set('/q', st(6, 1))
  c.updateIno(st(6, 99))
  t.equal(c.get('/p')?.size, 99)
  t.equal(c.get('/q')?.size, 99)
  c.deleteIno(6)
  t.equal(c.get('/q'), undefined)
})

t.test('block cache: shared fetches, hits, bounded size, retry after failure', async t => {
  const data = Buffer.alloc(100_000)
  for (let i = 0; i < data.length; i++) data[i] = i % 253
  const block: LocatedBlock = { id: 1, gen: 1, length: data.length, offset: 0, locations: [], token: '' }
  let calls = 0
  let failNext = false
  const reader = {
    readBlock (_b: LocatedBlock, offset: number, length: number): Readable {
      calls++
      if (failNext) { failNext = false; return new Readable({ read () { this.destroy(HissError.EIO('boom')) } }) }
      return Readable.from([data.subarray(offset, offset + length)])
    },
  }
  const cache = new BlockCache(reader, { capacityBytes: 40_000, pieceBytes: 10_000, log: silentLogger })
  const a = Buffer.alloc(25_000)
  const b = Buffer.alloc(25_000)
  await Promise.all([cache.read(block, 1, 5_000, 25_000, a, 0), cache.read(block, 1, 5_000, 25_000, b, 0)])
  t.ok(a.equals(data.subarray(5_000, 30_000)) && b.equals(a), 'bytes right')
  t.equal(calls, 1, 'two concurrent readers share one ranged fetch')
  await cache.read(block, 1, 12_000, 100, a, 0)
  t.equal(calls, 1, 'hit')
  t.ok(cache.cachedBytes <= 40_000, 'bounded')
  failNext = true
  const c = Buffer.alloc(10_000)
  await cache.read(block, 1, 90_000, 10_000, c, 0)
  t.ok(c.equals(data.subarray(90_000)), 'a failed fetch is retried')
})

t.test('write() borrows its buffer: reusing it after the write changes nothing', async t => {
  // The kernel's write buffer is reused once a write is answered; appends are fed to the
  // upload from memory, overwrites of bytes fed but not yet sent must win, and a failed
  // pipeline is retried from the spool.
  for (const failRate of [0, 0.5]) {
    const fake = new FakeFs()
    fake.failRate = failRate
    const spool = new Spool()
    t.teardown(() => spool.destroy())
    const file = makeFile(fake, spool)
    file.refs = 1
    const model = Buffer.alloc(BS * 3 + 5000)
    const kernelBuf = Buffer.alloc(10_000)
    const rnd = prng(11)
    let pos = 0
    while (pos < model.length) {
      const n = Math.min(1 + rnd(10_000), model.length - pos)
      for (let k = 0; k < n; k++) kernelBuf[k] = rnd(256)
      await file.write(kernelBuf.subarray(0, n), pos, false)
      kernelBuf.copy(model, pos, 0, n)
      kernelBuf.fill(0xee) // what the next request leaves there
      pos += n
      if (rnd(5) === 0 && pos > 100) {
        // Overwrite something just appended (likely fed to the upload, not yet sent).
        const at = pos - 1 - rnd(Math.min(pos, 3000))
        const m = Math.min(1 + rnd(500), pos - at)
        for (let k = 0; k < m; k++) kernelBuf[k] = rnd(256)
        await file.write(kernelBuf.subarray(0, m), at, false)
        kernelBuf.copy(model, at, 0, m)
        kernelBuf.fill(0xdd)
      }
    }
    await file.flush()
    t.ok(fake.content().equals(model), `committed content matches (fail rate ${failRate})`)
    await file.closeLast()
    await file.dispose()
  }
})

t.test('a file created with its write session: no open round trip, abort when never written', async t => {
  const fake = new FakeFs()
  const spool = new Spool()
  t.teardown(() => spool.destroy())
  const cache = new BlockCache(fake, { capacityBytes: 512 * 1024, pieceBytes: 16 * 1024, log: silentLogger })
  let file = makeFile(fake, spool, 0, cache)
  file.refs = 1
  file.adoptSession(await fake.openWrite())
  t.equal(fake.opens, 1)
  const data = Buffer.alloc(5000, 9)
  await file.write(data, 0, false)
  await file.flush()
  t.equal(fake.opens, 1, 'the write used the adopted session')
  t.equal(fake.commits, 1)
  t.ok(fake.content().equals(data))
  await file.closeLast()
  await file.dispose()

  // Read back through a fresh open: the block this mount stored is in the read cache.
  file = makeFile(fake, spool, 0, cache)
  file.refs = 1
  file.applyRemote(fake.stat(), fake.located())
  const back = Buffer.alloc(data.length)
  t.equal(await file.read(back, back.length, 0), data.length)
  t.ok(back.equals(data), 'bytes right')
  t.equal(fake.reads, 0, 'no DataServer read for a block just written here')
  await file.closeLast()
  await file.dispose()

  // Created and closed without a write: the lease ends with an abort, not a commit.
  const empty = new FakeFs()
  const f2 = makeFile(empty, spool)
  f2.refs = 1
  f2.adoptSession(await empty.openWrite())
  await f2.flush()
  await f2.closeLast()
  t.equal(empty.commits, 0, 'nothing committed')
  t.equal(empty.aborts, 1, 'lease given back')
  t.notOk(empty.leaseHeld)
  await f2.dispose()

  // A session offered to a file that already has one is aborted, not leaked.
  const busy = new FakeFs()
  const f3 = makeFile(busy, spool)
  f3.refs = 1
  await f3.write(Buffer.from('x'), 0, false)
  busy.leaseHeld = false
  f3.adoptSession(await busy.openWrite())
  await new Promise(resolve => setImmediate(resolve))
  t.equal(busy.aborts, 1, 'second session aborted')
  busy.leaseHeld = true
  await f3.flush()
  t.equal(busy.content().toString(), 'x')
  await f3.dispose()
})

t.test('block cache: a seeded block is read without a fetch', async t => {
  let calls = 0
  const reader = { readBlock (): Readable { calls++; return Readable.from([]) } }
  const cache = new BlockCache(reader, { capacityBytes: 40_000, pieceBytes: 10_000, log: silentLogger })
  const data = Buffer.from('seeded bytes')
  cache.seed({ id: 7, gen: 2, length: data.length }, data)
  const out = Buffer.alloc(6)
  await cache.read({ id: 7, gen: 2, length: data.length, offset: 0, locations: [], token: '' }, 1, 7, 5, out, 1)
  t.equal(out.subarray(1).toString(), 'bytes')
  t.equal(calls, 0, 'hit')
  cache.seed({ id: 8, gen: 1, length: 20_000 }, Buffer.alloc(20_000))
  t.notOk(cache.has({ id: 8, gen: 1 }, 0), 'a block larger than a piece is not seeded')
  cache.seed({ id: 9, gen: 1, length: 10 }, Buffer.alloc(5))
  t.notOk(cache.has({ id: 9, gen: 1 }, 0), 'nor a partial one')
})

t.test('attribute cache: patch keeps the entry age and only touches cached entries', async t => {
  const clock = new ManualClock()
  const c = new AttrCache(clock, 1000)
  const dir: FileStat = { ino: 1, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, nlink: 2, atimeNs: '0', mtimeNs: '5', ctimeNs: '5', replication: 0, blockSize: 0 }
  c.set('/d', dir)
  const gen = c.generation
  clock.advance(600)
  c.patch('/d', d => ({ ...d, mtimeNs: '9', nlink: d.nlink + 1 }))
  t.not(c.generation, gen, 'in-flight lookups started before the change are not cached')
  t.match(c.get('/d'), { mtimeNs: '9', nlink: 3 })
  clock.advance(400)
  t.equal(c.get('/d'), undefined, 'still expires when first fetched + TTL')
  c.patch('/nope', d => d)
  t.equal(c.get('/nope'), undefined, 'nothing cached for an unknown path')
})

t.test('directory listings: absent names, our own changes, expiry, re-list hints', async t => {
  const clock = new ManualClock()
  const d = new DirCache(clock, 1000)
  t.notOk(d.knowsAbsent('/a', 'x'), 'unknown directory: ask')
  d.set('/a', ['x', 'y'])
  t.ok(d.knowsAbsent('/a', 'z'))
  t.notOk(d.knowsAbsent('/a', 'x'), 'a listed name is not absent')
  d.added('/a', 'z')
  t.notOk(d.knowsAbsent('/a', 'z'), 'our create is seen')
  d.removed('/a', 'x')
  t.ok(d.knowsAbsent('/a', 'x'), 'our removal is seen')
  const gen = d.generation
  d.added('/other', 'n')
  d.set('/b', ['q'], gen)
  t.notOk(d.knowsAbsent('/b', 'r'), 'a listing older than one of our changes is not kept')
  d.set('/b', [])
  d.set('/b/c', [])
  d.set('/bb', [])
  d.forgetTree('/b')
  t.notOk(d.knowsAbsent('/b/c', 'r'), 'forgotten with its parent')
  t.ok(d.knowsAbsent('/bb', 'r'), 'a sibling with the same prefix stays')
  t.notOk(d.worthRelisting('/a'), 'fresh: no need to list again')
  clock.advance(1000)
  t.notOk(d.knowsAbsent('/a', 'q'), 'expired: ask again')
  t.ok(d.worthRelisting('/a'), 'a small directory listed before is worth listing again')
  d.set('/big', Array.from({ length: RELIST_MAX_NAMES + 1 }, (_v, i) => `n${i}`))
  clock.advance(1000)
  t.notOk(d.worthRelisting('/big'), 'a big one is not')
  t.notOk(d.worthRelisting('/never'), 'nor one never listed')
  d.forget('/a')
  t.notOk(d.worthRelisting('/a'))
  const off = new DirCache(clock, 0)
  off.set('/a', [])
  t.notOk(off.knowsAbsent('/a', 'x'), 'a zero timeout keeps nothing')
})

t.test('spool: a read started while a write is in flight sees the written bytes', async t => {
  // The upload reads the spool while an overwrite writes it; the read must not overtake
  // the write (seen once under load as an upload sending the old bytes).
  const spool = new Spool()
  t.teardown(() => spool.destroy())
  const f = await spool.create()
  let stale = 0
  for (let i = 0; i < 200; i++) {
    const data = Buffer.alloc(64 * 1024, i & 0xff)
    const w = f.write(data, 0)
    data.fill(0xaa) // the caller's buffer may change once write() was called
    const back = Buffer.alloc(data.length)
    await f.read(back, 0, back.length, 0, true)
    await w
    if (back.some(b => b !== (i & 0xff))) stale++
  }
  t.equal(stale, 0, 'no read saw old bytes')
})
