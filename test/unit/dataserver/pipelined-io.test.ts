// The DataServer's overlapped disk I/O: verified reads keep a few batches in flight
// ahead of the consumer (and settle them all before returning), and block writes go
// through a bounded write-behind queue that keeps order, handles short writes and
// reports the first error.
import t from 'tap'
import type { FileHandle } from 'node:fs/promises'
import { ChunkChecksummer, META_HEADER_BYTES } from '../../../src/dataserver/checksum.js'
import { BufferPool } from '../../../src/common/buffer-pool.js'
import { readVerified } from '../../../src/dataserver/replica-reader.js'
import { WriteBehind } from '../../../src/dataserver/write-behind.js'
import { bytes } from './helpers.js'

/** A read-only FileHandle over a buffer whose reads complete on a later turn; counts reads in flight. */
function memReader (data: Buffer, stats: { inFlight: number, maxInFlight: number }): FileHandle {
  return {
    async read (buf: Buffer, off: number, len: number, pos: number) {
      stats.inFlight++
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight)
      await new Promise(resolve => setImmediate(resolve))
      stats.inFlight--
      const n = Math.max(0, Math.min(len, data.length - pos))
      data.copy(buf, off, pos, pos + n)
      return { bytesRead: n, buffer: buf }
    },
  } as unknown as FileHandle
}

function metaFor (data: Buffer, chunk: number): Buffer {
  const s = new ChunkChecksummer(chunk)
  s.update(data)
  return s.finish()
}

t.test('verified reads run ahead of the consumer and settle before returning', async t => {
  const data = bytes(20000, 4)
  const meta = metaFor(data, 512)
  const header = { chunkBytes: 512, length: data.length }
  const ds = { inFlight: 0, maxInFlight: 0 }
  const ms = { inFlight: 0, maxInFlight: 0 }
  const parts: Buffer[] = []
  for await (const p of readVerified(memReader(data, ds), memReader(meta, ms), header, 100, 19000, { batchBytes: 1024, readAhead: 3 })) {
    parts.push(Buffer.from(p))
    // Let the batches ahead of this one finish reading.
    await new Promise(resolve => setImmediate(resolve))
  }
  t.ok(Buffer.concat(parts).equals(data.subarray(100, 19100)), 'exact range')
  t.ok(ds.maxInFlight > 1, `data reads overlapped (max ${ds.maxInFlight} in flight)`)
  t.ok(ds.maxInFlight <= 4, 'at most 1 + readAhead batches in flight')
  t.equal(ds.inFlight, 0)

  // The consumer stops early: nothing is still reading the files when the loop ends.
  const early = { inFlight: 0, maxInFlight: 0 }
  for await (const p of readVerified(memReader(data, early), memReader(meta, ms), header, 0, data.length, { batchBytes: 1024, readAhead: 3 })) {
    t.equal(p.length, 1024)
    break
  }
  t.equal(early.inFlight, 0, 'reads ahead settled when the consumer stopped')

  // Corruption: the verified prefix, then CHECKSUM_MISMATCH, and no read left running.
  const bad = Buffer.from(data)
  bad.writeUInt8(bad.readUInt8(5 * 1024 + 600) ^ 0xff, 5 * 1024 + 600) // chunk 11 (bytes 5632..6143)
  const cs = { inFlight: 0, maxInFlight: 0 }
  const got: Buffer[] = []
  await t.rejects((async () => {
    for await (const p of readVerified(memReader(bad, cs), memReader(meta, ms), header, 0, bad.length, { batchBytes: 1024, readAhead: 3 })) got.push(Buffer.from(p))
  })(), { code: 'CHECKSUM_MISMATCH' })
  t.equal(Buffer.concat(got).length, 5 * 1024 + 512, 'every chunk before the bad one')
  t.ok(Buffer.concat(got).equals(data.subarray(0, 5 * 1024 + 512)))
  t.equal(cs.inFlight, 0)

  // A paced read (the scanner) reads no further ahead than it hands out.
  const ps = { inFlight: 0, maxInFlight: 0 }
  for await (const p of readVerified(memReader(data, ps), memReader(meta, ms), header, 0, data.length, { batchBytes: 1024, pace: async () => {} })) void p
  t.equal(ps.maxInFlight, 1, 'one batch at a time when paced')
  t.equal(META_HEADER_BYTES, 24)
})

t.test('verified reads reuse pooled batch buffers only once given back', async t => {
  const data = bytes(20000, 5)
  const meta = metaFor(data, 512)
  const header = { chunkBytes: 512, length: data.length }
  const st = { inFlight: 0, maxInFlight: 0 }
  const pool = new BufferPool(1024, 4)

  // Pieces kept (never given back) are never overwritten by later batches.
  const kept: Buffer[] = []
  for await (const p of readVerified(memReader(data, st), memReader(meta, st), header, 100, 19000, { batchBytes: 1024, readAhead: 2, pool })) kept.push(p)
  t.ok(Buffer.concat(kept).equals(data.subarray(100, 19100)), 'bytes intact when nothing is given back')
  t.equal(pool.freeCount, 0)

  // Given back after use: the same few buffers go round, and every byte is right.
  const seen = new Set<ArrayBufferLike>()
  const copies: Buffer[] = []
  for await (const p of readVerified(memReader(data, st), memReader(meta, st), header, 0, data.length, { batchBytes: 1024, readAhead: 2, pool })) {
    seen.add(p.buffer)
    copies.push(Buffer.from(p))
    pool.give(p)
    pool.give(p) // a second give of the same buffer is ignored
  }
  t.ok(Buffer.concat(copies).equals(data), 'exact bytes through recycled buffers')
  t.ok(seen.size <= 4, `at most 1 + readAhead + 1 buffers in use (${seen.size})`)
  t.ok(pool.freeCount <= 4)

  // A buffer the pool did not make is never taken in.
  const before = pool.freeCount
  pool.give(Buffer.alloc(1024))
  t.equal(pool.freeCount, before)

  // The consumer stops early: the batches read ahead come back once settled.
  const p2 = new BufferPool(1024, 8)
  for await (const p of readVerified(memReader(data, st), memReader(meta, st), header, 0, data.length, { batchBytes: 1024, readAhead: 3, pool: p2 })) {
    void p
    break
  }
  t.equal(p2.freeCount, 3, 'read-ahead batches returned, the yielded one stays with the consumer')
  // Larger than the pool's buffers: a plain allocation, never pooled.
  const big = p2.take(4096)
  t.equal(big.length, 4096)
  p2.give(big)
  t.equal(p2.freeCount, 3)
})

interface FakeWriter {
  fh: FileHandle
  written: Buffer[]
  calls: number
  maxQueuedSeen: number
  release: () => void
}

/** A FileHandle whose writev writes at most `cap` bytes per call and waits for release() when `gated`. */
function fakeWriter (cap: number, opts: { gated?: boolean, failAt?: number } = {}): FakeWriter {
  let gate: (() => void) | undefined
  const w: FakeWriter = {
    written: [],
    calls: 0,
    maxQueuedSeen: 0,
    release: () => { const g = gate; gate = undefined; g?.() },
    fh: {
      async writev (bufs: Uint8Array[]) {
        w.calls++
        if (opts.gated === true) await new Promise<void>(resolve => { gate = resolve })
        else await new Promise(resolve => setImmediate(resolve))
        if (opts.failAt !== undefined && w.calls >= opts.failAt) throw Object.assign(new Error('no space'), { code: 'ENOSPC' })
        let left = cap
        let n = 0
        for (const b of bufs) {
          if (left === 0) break
          const take = Math.min(left, b.length)
          w.written.push(Buffer.from(b.subarray(0, take)))
          left -= take
          n += take
        }
        return { bytesWritten: n, buffers: bufs }
      },
    } as unknown as FileHandle,
  }
  return w
}

t.test('write-behind keeps order across short writes and batches pieces', async t => {
  const data = bytes(50000, 9)
  const w = fakeWriter(3000)
  const wb = new WriteBehind(w.fh, 8000)
  for (let off = 0; off < data.length; off += 700) await wb.push(data.subarray(off, off + 700))
  await wb.flush()
  t.ok(Buffer.concat(w.written).equals(data), 'bytes on "disk" in order')
  t.ok(w.calls < Math.ceil(50000 / 700), `fewer writes (${w.calls}) than pieces`)
})

t.test('write-behind holds the producer back beyond its bound', async t => {
  const w = fakeWriter(1 << 20, { gated: true })
  const wb = new WriteBehind(w.fh, 1000)
  await wb.push(Buffer.alloc(600))
  await wb.push(Buffer.alloc(300)) // 900 queued: still under the bound
  let third = false
  const p = wb.push(Buffer.alloc(300)).then(() => { third = true })
  await new Promise(resolve => setImmediate(resolve))
  t.notOk(third, 'the push over the bound waits for the disk')
  w.release()
  for (let i = 0; i < 5 && !third; i++) { await new Promise(resolve => setImmediate(resolve)); w.release() }
  await p
  t.ok(third)
  const f = wb.flush()
  for (let i = 0; i < 5; i++) { await new Promise(resolve => setImmediate(resolve)); w.release() }
  await f
  t.equal(Buffer.concat(w.written).length, 1200)
})

t.test('write-behind reports the first write error to the producer and flush', async t => {
  const w = fakeWriter(1 << 20, { failAt: 2 })
  const wb = new WriteBehind(w.fh, 100)
  await t.rejects((async () => { for (let i = 0; i < 100; i++) await wb.push(Buffer.alloc(150)) })(), { code: 'ENOSPC' })
  await t.rejects(wb.flush(), { code: 'ENOSPC' })
  await wb.settle()
  t.pass('settle never rejects')
})

t.test('write-behind waits for a full batch before writing, and flush writes the rest', async t => {
  const w = fakeWriter(1 << 20)
  const wb = new WriteBehind(w.fh, 4096, 1000)
  for (let i = 0; i < 9; i++) await wb.push(Buffer.alloc(100, i))
  await new Promise(resolve => setImmediate(resolve))
  t.equal(w.calls, 0, 'nothing written below the batch size')
  await wb.push(Buffer.alloc(100, 9))
  await new Promise(resolve => setTimeout(resolve, 5))
  t.equal(w.calls, 1, 'one write for the full batch')
  await wb.push(Buffer.alloc(50, 10))
  // Pushes without waiting, then flush: every queued byte is written before flush returns.
  const more = Array.from({ length: 5 }, (_, i) => wb.push(Buffer.alloc(10, 11 + i)))
  await wb.flush()
  await Promise.all(more)
  t.equal(Buffer.concat(w.written).length, 1000 + 50 + 50)
  t.equal(w.calls, 2)
})

t.test('write-behind takes a file handle that is still opening: pieces wait for it, in order', async t => {
  const data = bytes(3000, 4)
  const w = fakeWriter(1 << 20)
  let opened!: (fh: FileHandle) => void
  const wb = new WriteBehind(new Promise<FileHandle>(resolve => { opened = resolve }), 4096, 1000)
  for (let off = 0; off < data.length; off += 500) await wb.push(data.subarray(off, off + 500))
  await new Promise(resolve => setTimeout(resolve, 5))
  t.equal(w.calls, 0, 'nothing written before the handle exists')
  const f = wb.flush()
  opened(w.fh)
  await f
  t.ok(Buffer.concat(w.written).equals(data), 'every piece written once it opened, in order')
})

t.test('write-behind: a handle that fails to open fails the pushes and flush', async t => {
  const failed = Promise.reject(Object.assign(new Error('no space'), { code: 'ENOSPC' }))
  failed.catch(() => {})
  const wb = new WriteBehind(failed, 100, 50)
  await t.rejects((async () => { for (let i = 0; i < 10; i++) await wb.push(Buffer.alloc(60)) })(), { code: 'ENOSPC' })
  await t.rejects(wb.flush(), { code: 'ENOSPC' })
  await wb.settle()
})
