// Recycled write buffers (src/fuse/buffer-pool.ts): a big append's copy goes back to
// the pool only once the spool has written it and the upload's socket has taken it,
// never while a holder may still read it, and never for a failed upload.
import t from 'tap'
import { Readable } from 'node:stream'
import { SystemClock, type Timer } from '../../src/common/clock.js'
import { HissError } from '../../src/common/errors.js'
import { silentLogger } from '../../src/common/log.js'
import type { BlockRef, FileStat, LocatedBlock } from '../../src/common/protocol.js'
import type { StoreOptions, WriteSession } from '../../src/client/types.js'
import { BlockCache } from '../../src/fuse/block-cache.js'
import { BufferPool } from '../../src/common/buffer-pool.js'
import { OpenFile, WRITE_BUFFER_BYTES } from '../../src/fuse/open-file.js'
import { SPOOL_MEMORY_BYTES, Spool } from '../../src/fuse/spool.js'

const BS = 4 * 1024 * 1024
const W = WRITE_BUFFER_BYTES

class HurryClock extends SystemClock {
  override setTimeout (fn: () => void, _ms: number): Timer { setImmediate(fn); return { id: 0 } }
}

/**
 * A write session whose "socket" keeps a reference to the last chunk it was given, and
 * copies it (the kernel's copy) and reports it sent (onSent) only when the next chunk
 * arrives, slowly. A buffer recycled before onSent covered it would be overwritten by a
 * later write and show up as wrong content.
 */
class LaggingStore {
  readonly stored = new Map<number, Buffer>()
  blocks: BlockRef[] = []
  nextId = 1
  /** Stores still to fail (after reading the whole stream, with no onSent at all). */
  failStores = 0
  failed = 0
  /** The memory of every chunk a failed store was given. */
  readonly heldByFailed = new Set<ArrayBufferLike>()
  leaseHeld = false

  stat (): FileStat {
    const size = this.blocks.reduce((n, b) => n + b.length, 0)
    return { ino: 9, type: 'file', mode: 0o644, uid: 0, gid: 0, size, nlink: 1, atimeNs: '0', mtimeNs: '1', ctimeNs: '0', replication: 1, blockSize: BS }
  }

  content (): Buffer { return Buffer.concat(this.blocks.map(b => this.stored.get(b.id)!)) }

  async getBlocks (): Promise<{ stat: FileStat, blocks: LocatedBlock[] }> {
    let off = 0
    return { stat: this.stat(), blocks: this.blocks.map(b => { const l = { ...b, offset: off, locations: [], token: '' }; off += b.length; return l }) }
  }

  readBlock (block: LocatedBlock, offset: number, length: number): Readable {
    return Readable.from([this.stored.get(block.id)!.subarray(offset, offset + length)])
  }

  async openWrite (): Promise<WriteSession> {
    this.leaseHeld = true
    const fs = this
    return {
      writeId: 'w', ino: 9, blockSize: BS, replication: 1, baseBlocks: [], baseSize: 0,
      async storeBlock (data: Readable | Buffer, _length?: number, opts?: StoreOptions): Promise<BlockRef> {
        const failing = fs.failStores > 0
        if (failing) fs.failStores--
        const heldBy = failing ? fs.heldByFailed : undefined
        const held: Buffer[] = []
        const copied: Buffer[] = []
        let total = 0
        if (Buffer.isBuffer(data)) { held.push(data); total = data.length } else {
          // Flowing mode, chunk by chunk, as got's pipe into the request reads it.
          await new Promise<void>((resolve, reject) => {
            data.on('data', (b: Buffer) => {
              // The previous chunk goes "into the kernel" (copied) and is reported sent;
              // this one is still held by reference.
              if (!failing) {
                for (const h of held.splice(0)) copied.push(Buffer.from(h))
                opts?.onSent?.(total)
              }
              held.push(b)
              heldBy?.add(b.buffer)
              total += b.length
              // A slow socket: writers run meanwhile (and reuse anything released too early).
              data.pause()
              setImmediate(() => { data.resume() })
            })
            data.on('end', resolve)
            data.on('error', reject)
          })
        }
        if (failing) { fs.failed++; throw HissError.EIO('injected pipeline failure') }
        const ref = { id: fs.nextId++, gen: 1, length: total }
        fs.stored.set(ref.id, Buffer.concat([...copied, ...held]))
        return ref
      },
      async commit (blocks: BlockRef[]): Promise<FileStat> {
        fs.blocks = blocks.map(b => ({ ...b }))
        fs.leaseHeld = false
        return fs.stat()
      },
      async abort (): Promise<void> { fs.leaseHeld = false },
    }
  }
}

function patterned (n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n)
  let x = seed * 2654435761 >>> 0
  for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) >>> 0; b[i] = x >>> 24 }
  return b
}

function makeFile (fake: LaggingStore, spool: Spool, pool: BufferPool): OpenFile {
  const cache = new BlockCache(fake, { capacityBytes: 512 * 1024, pieceBytes: 16 * 1024, log: silentLogger })
  const f = new OpenFile({ client: fake, cache, spool, clock: new HurryClock(), log: silentLogger, readaheadBytes: 128 * 1024, writePool: pool }, fake.stat(), '/f')
  f.refs = 1
  return f
}

t.test('buffer pool: a chunk returns once every holder released it, at most maxFree kept', async t => {
  const pool = new BufferPool(1024, 1)
  const src = Buffer.from('hello')
  const a = pool.copyOf(src, 5, 2)
  t.equal(a.data.toString(), 'hello')
  a.release()
  t.equal(pool.freeCount, 0, 'one holder left: not back yet')
  a.release()
  t.equal(pool.freeCount, 1, 'back in the pool')
  t.throws(() => { a.release() }, /released more often/)
  const b = pool.copyOf(src, 3, 1)
  const c = pool.copyOf(src, 3, 1)
  t.equal(pool.freeCount, 0)
  b.release(); c.release()
  t.equal(pool.freeCount, 1, 'no more than maxFree kept')
  t.throws(() => pool.copyOf(Buffer.alloc(2048), 2048, 1), RangeError)
})

t.test('spool: writeBehind calls done once written, and for queued writes a discard drops', async t => {
  const spool = new Spool()
  t.teardown(() => spool.destroy())
  const f = await spool.create()
  // Past the in-memory start, so that writes go through the temp file's queue.
  await f.write(Buffer.alloc(SPOOL_MEMORY_BYTES + 1), 0)
  t.notOk(f.inMemory, 'on a temp file')
  const base = SPOOL_MEMORY_BYTES + 1
  let done = 0
  await f.writeBehind(Buffer.from('abc'), base, () => { done++ })
  t.equal(done, 0, 'a small write waits in the queue')
  const got = Buffer.alloc(3)
  await f.read(got, 0, 3, base)
  t.equal(got.toString(), 'abc')
  t.equal(done, 1, 'done once written')
  await f.writeBehind(Buffer.from('def'), base + 3, () => { done++ })
  f.discard()
  t.equal(done, 2, 'done for a queued write dropped by discard')
})

t.test('sequential big writes recycle their buffers only after the socket took them', async t => {
  const fake = new LaggingStore()
  const spool = new Spool()
  t.teardown(() => spool.destroy())
  const pool = new BufferPool(W, 64)
  const file = makeFile(fake, spool, pool)
  const parts: Buffer[] = []
  const kernel = Buffer.alloc(W)
  // 4 blocks of 128 KiB writes through one reused "kernel" buffer, as fuse-native does.
  for (let i = 0; i < (BS * 4) / W; i++) {
    const p = patterned(W, i + 1)
    parts.push(p)
    p.copy(kernel)
    await file.write(kernel, i * W, false)
    kernel.fill(0xee)
  }
  await file.flush()
  await file.closeLast()
  const want = Buffer.concat(parts)
  t.equal(fake.content().length, want.length)
  t.ok(fake.content().equals(want), 'the stored bytes are the written ones')
  t.ok(pool.returned > 0 && pool.freeCount > 0, `buffers were recycled (${pool.returned} of ${pool.taken})`)
  t.equal(pool.taken, parts.length, 'every write took a pooled buffer')
  t.ok(pool.allocated < parts.length * 0.75, `fewer buffers allocated than writes (${pool.allocated} for ${parts.length})`)
  await file.dispose()
})

t.test('a failed upload never recycles its buffers; the retry from the spool stores the right bytes', async t => {
  const fake = new LaggingStore()
  fake.failStores = 1
  const spool = new Spool()
  t.teardown(() => spool.destroy())
  const pool = new BufferPool(W, 64)
  const file = makeFile(fake, spool, pool)
  const parts: Buffer[] = []
  for (let i = 0; i < 4; i++) {
    const p = patterned(W, 100 + i)
    parts.push(p)
    await file.write(p, i * W, false)
  }
  // The streaming upload ends (and fails) at the commit, which retries from the spool.
  await file.flush()
  t.equal(fake.failed, 1, 'the streaming upload failed once')
  t.ok(fake.heldByFailed.size > 0, 'the failed upload was sent chunks from memory')
  const free = Array.from({ length: pool.freeCount }, () => pool.copyOf(Buffer.alloc(1), 1, 1).data.buffer)
  t.notOk(free.some(b => fake.heldByFailed.has(b)), 'no buffer on the failed upload\'s wire went back to the pool')
  t.ok(fake.content().equals(Buffer.concat(parts)), 'the commit stored the written bytes (from the spool)')
  await file.closeLast()
  await file.dispose()
})
