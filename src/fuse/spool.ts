// Local spool for copy-on-write blocks: each block being modified (random writes, a
// partial last block being appended to, the block a sequential writer is streaming) lives
// in its own temp file under the OS temp dir until it is uploaded as a new block. The
// file is unlinked as soon as it is open, so nothing is left behind if the mount dies;
// its descriptor is closed only when the last reader lets go of it. A sequential writer
// queues its data with writeBehind (written in batches, off the FUSE op's critical
// path); everything else waits for that queue.
// A spool file starts in memory and gets its temp file only when it grows past
// SPOOL_MEMORY_BYTES: most files written through a mount are small, and a temp file
// costs three thread-pool round trips (open, unlink, close) and a write and a read-back
// through the pool besides (a 4 KiB FUSE write: ~1.0 -> ~0.65 ms median, measured).
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HissError, fromNodeError } from '../common/errors.js'
import { writevAll } from '../common/writev-all.js'

export class Spool {
  private dir: string | undefined
  private seq = 0
  private readonly live = new Set<SpoolFile>()

  constructor (private readonly parent: string = tmpdir()) {}

  async init (): Promise<void> {
    if (this.dir !== undefined) return
    try {
      this.dir = await mkdtemp(join(this.parent, `hissdfs-mount-${process.pid}-`))
    } catch (err) {
      throw fromNodeError(err, `cannot create spool directory in ${this.parent}`)
    }
  }

  /** Files currently open (for tests and diagnostics). */
  get openFiles (): number { return this.live.size }

  async create (): Promise<SpoolFile> {
    await this.init()
    const f = new SpoolFile(() => this.openFile(), () => { this.live.delete(f) })
    this.live.add(f)
    return f
  }

  /** A new temp file, already unlinked. */
  private async openFile (): Promise<FileHandle> {
    await this.init()
    const path = join(this.dir!, `blk-${++this.seq}`)
    try {
      const fh = await open(path, 'w+', 0o600)
      await rm(path, { force: true })
      return fh
    } catch (err) {
      throw fromNodeError(err, 'spool file')
    }
  }

  async destroy (): Promise<void> {
    for (const f of [...this.live]) f.discard()
    if (this.dir !== undefined) await rm(this.dir, { recursive: true, force: true }).catch(() => {})
    this.dir = undefined
  }
}

/** Bytes one spool file may have queued for its disk before writeBehind() waits (4 MiB). */
export const SPOOL_WRITE_BEHIND_BYTES = 4 * 1024 * 1024
/** A queued write starts once this much is queued (or something waits for the queue). */
export const SPOOL_WRITE_BATCH_BYTES = 1024 * 1024
/** A spool file stays in memory while it is at most this long (see the top of the file). */
export const SPOOL_MEMORY_BYTES = 256 * 1024
/** Pieces per pwritev (Linux IOV_MAX is 1024). */
const MAX_IOV = 256

/** Contiguous queued writes, written with one pwritev; `done`: the writers' callbacks. */
interface Run { pos: number, bufs: Buffer[], len: number, done: Array<() => void> | undefined }

/** Tell writers their buffers are no longer used (written, dropped or failed). */
function finished (runs: readonly Run[]): void {
  for (const r of runs) if (r.done !== undefined) for (const d of r.done) d()
}

export class SpoolFile {
  /** The temp file; undefined while the content is in `mem`. */
  private fh: FileHandle | undefined
  /** The content while in memory: `memSize` bytes, zeros beyond (the buffer may be longer). */
  private mem: Buffer | undefined = Buffer.alloc(0)
  private memSize = 0
  /** Moving the content from memory to the temp file. */
  private spilling: Promise<void> | undefined
  private refs = 0
  private discarded = false
  private closing: Promise<void> | undefined
  private queue: Run[] = []
  private queued = 0
  private flushing: Promise<void> | undefined
  private failure: HissError | undefined
  private readonly waiters: Array<() => void> = []
  /** Someone waits for the queue: write out even a small batch. */
  private draining = 0

  constructor (private readonly openFile: () => Promise<FileHandle>, private readonly onClosed: () => void) {}

  get isDiscarded (): boolean { return this.discarded }

  /** Still in memory (no temp file yet): for tests and diagnostics. */
  get inMemory (): boolean { return this.mem !== undefined }

  /**
   * Copy `data` into memory at `pos` if the content is (and stays) in memory; false when
   * it is, or must now be, in the temp file. Synchronous on purpose: nothing can start
   * moving the content to the file between the check and the copy.
   */
  private memWrite (data: Buffer, pos: number): boolean {
    const end = pos + data.length
    if (this.mem === undefined || this.spilling !== undefined || end > SPOOL_MEMORY_BYTES) return false
    if (end > this.mem.length) {
      const grown = Buffer.alloc(Math.min(SPOOL_MEMORY_BYTES, Math.max(end, this.mem.length * 2, 4096)))
      this.mem.copy(grown, 0, 0, this.memSize)
      this.mem = grown
    }
    data.copy(this.mem, pos)
    if (end > this.memSize) this.memSize = end
    return true
  }

  /** Move the content to a temp file (once); every file-path operation awaits this first. */
  private toFile (): Promise<void> {
    if (this.mem === undefined && this.spilling === undefined) return Promise.resolve()
    this.spilling ??= (async () => {
      const mem = this.mem!
      const size = this.memSize
      try {
        const fh = await this.openFile()
        try {
          if (size > 0) await writevAll(fh, [mem.subarray(0, size)], size, 0)
        } catch (err) {
          await fh.close().catch(() => {})
          throw err
        }
        this.fh = fh
        this.mem = undefined
        if (this.discarded && this.refs === 0) this.close()
      } catch (err) {
        this.failure ??= fromNodeError(err, 'spool file')
        throw this.failure
      }
    })()
    return this.spilling
  }

  /** Hold the descriptor open across an async read (discard() waits for it). */
  acquire (): void { this.refs++ }
  release (): void {
    this.refs--
    if (this.refs === 0 && this.discarded) this.close()
  }

  /**
   * Write `data` (the caller's: copied) at `pos` and wait until it is on the file (or in
   * memory). queueWrite, then drain: through the queue, so that a read started after this
   * call, while the write is still in flight, waits for it (the upload reads the spool
   * concurrently, and a direct write racing that read let an overwrite be sent with the
   * old bytes).
   */
  async write (data: Buffer, pos: number): Promise<void> {
    await this.queueWrite(data, pos)
    await this.drain()
  }

  /**
   * Copy `data` and queue it for writing at `pos`; returns once queued, not written (at
   * once unless SPOOL_WRITE_BEHIND_BYTES are already queued). Reads, truncates and
   * drains wait for it like for any queued write; a failed write fails them. For random
   * writes, which would otherwise wait for a thread-pool round trip each.
   */
  async queueWrite (data: Buffer, pos: number): Promise<void> {
    if (data.length === 0) return
    if (this.failure !== undefined) throw this.failure
    if (this.memWrite(data, pos)) return
    await this.toFile()
    const own = Buffer.allocUnsafe(data.length)
    data.copy(own)
    await this.writeBehind(own, pos)
  }

  /**
   * Queue `data` (owned by the spool from now on: it must not change) for writing at
   * `pos`, and return at once unless SPOOL_WRITE_BEHIND_BYTES are already queued.
   * Contiguous writes go out together. Every read, truncate and write waits for the
   * queue first; a failed write fails them all from then on.
   * `done` (if given) is called exactly once, when the spool no longer uses `data`: it was
   * written, dropped (discard) or failed; also when this throws.
   */
  async writeBehind (data: Buffer, pos: number, done?: () => void): Promise<void> {
    if (this.failure !== undefined || data.length === 0 || this.discarded) {
      done?.()
      if (this.failure !== undefined) throw this.failure
      return
    }
    if (this.memWrite(data, pos)) { done?.(); return }
    if (this.mem !== undefined || this.spilling !== undefined) {
      try {
        await this.toFile()
      } catch (err) {
        done?.()
        throw err
      }
    }
    const last = this.queue.at(-1)
    if (last !== undefined && last.pos + last.len === pos && last.bufs.length < MAX_IOV) {
      last.bufs.push(data)
      last.len += data.length
      if (done !== undefined) (last.done ??= []).push(done)
    } else {
      this.queue.push({ pos, bufs: [data], len: data.length, done: done === undefined ? undefined : [done] })
    }
    this.queued += data.length
    this.kick()
    while (this.queued > SPOOL_WRITE_BEHIND_BYTES && this.failure === undefined) {
      await new Promise<void>(resolve => { this.waiters.push(resolve) })
    }
    if (this.failure !== undefined) throw this.failure
  }

  /** Every queued write is on disk (or the first failure is thrown). */
  async drain (): Promise<void> {
    if (this.spilling !== undefined) await this.spilling
    this.draining++
    try {
      for (;;) {
        if (this.failure !== undefined) throw this.failure
        if (this.flushing !== undefined) await this.flushing
        else if (this.queue.length > 0) this.kick()
        else return
      }
    } finally {
      this.draining--
    }
  }

  private get batchReady (): boolean {
    return this.queued >= SPOOL_WRITE_BATCH_BYTES || this.draining > 0
  }

  private kick (): void {
    if (this.flushing !== undefined || this.queue.length === 0 || this.failure !== undefined || !this.batchReady) return
    // A write queued between the loop's last check and this settling starts a new loop.
    this.flushing = this.flushLoop().finally(() => { this.flushing = undefined; this.kick() })
  }

  private async flushLoop (): Promise<void> {
    this.acquire()
    try {
      while (this.queue.length > 0 && this.batchReady) {
        // Taken off the queue first: later writes start a new run.
        const run = this.queue.shift()!
        try {
          await writevAll(this.fh!, run.bufs, run.len, run.pos)
        } finally {
          finished([run])
        }
        this.queued -= run.len
        this.wake()
      }
    } catch (err) {
      this.failure = fromNodeError(err, 'spool write')
      finished(this.queue)
      this.queue = []
      this.queued = 0
      this.wake()
    } finally {
      this.release()
    }
  }

  private wake (): void {
    for (const w of this.waiters.splice(0)) w()
  }

  /**
   * Read [pos, pos+len) into dst at dstOff; bytes past the file's end read as zeros
   * (a block's hole). Reads go through a private buffer, so a caller's buffer (the
   * kernel's, for a FUSE read answered early on an error) is never handed to the thread
   * pool, unless `owned`: the caller owns dst and waits for this read in every case.
   */
  async read (dst: Buffer, dstOff: number, len: number, pos: number, owned = false): Promise<void> {
    if (this.mem !== undefined && this.spilling === undefined) {
      if (this.failure !== undefined) throw this.failure
      const n = Math.max(0, Math.min(len, this.memSize - pos))
      if (n > 0) this.mem.copy(dst, dstOff, pos, pos + n)
      dst.fill(0, dstOff + n, dstOff + len)
      return
    }
    this.acquire()
    try {
      await this.drain()
      if (this.fh === undefined) throw HissError.EIO('spool file already discarded')
      const tmp = owned ? dst.subarray(dstOff, dstOff + len) : Buffer.allocUnsafe(len)
      let got = 0
      try {
        while (got < len) {
          const { bytesRead } = await this.fh!.read(tmp, got, len - got, pos + got)
          if (bytesRead === 0) break
          got += bytesRead
        }
      } catch (err) {
        throw fromNodeError(err, 'spool read')
      }
      tmp.fill(0, got)
      if (!owned) tmp.copy(dst, dstOff)
    } finally {
      this.release()
    }
  }

  async truncate (len: number): Promise<void> {
    if (this.failure !== undefined) throw this.failure
    if (this.mem !== undefined && this.spilling === undefined && len <= SPOOL_MEMORY_BYTES) {
      // Bytes past the end must read as zeros when the content grows again.
      if (len < this.memSize) {
        this.mem.fill(0, len, this.memSize)
      } else if (len > this.mem.length) {
        const grown = Buffer.alloc(len)
        this.mem.copy(grown, 0, 0, this.memSize)
        this.mem = grown
      }
      this.memSize = len
      return
    }
    await this.toFile()
    await this.drain()
    try {
      await this.fh!.truncate(len)
    } catch (err) {
      throw fromNodeError(err, 'spool truncate')
    }
  }

  /** Forget this file: the descriptor closes once no read or queued write holds it. */
  discard (): void {
    if (this.discarded) return
    this.discarded = true
    // Queued writes are of no use any more; the one in flight finishes first.
    finished(this.queue)
    this.queue = []
    this.queued = 0
    this.wake()
    if (this.refs === 0) this.close()
  }

  private close (): void {
    if (this.closing !== undefined) return
    // Moving to a file right now: close once it is there (toFile calls back here).
    if (this.spilling !== undefined && this.fh === undefined) {
      this.spilling.then(() => {}, () => { if (this.closing === undefined) { this.closing = Promise.resolve(); this.onClosed() } })
      return
    }
    this.mem = undefined
    const fh = this.fh
    this.closing = fh === undefined ? Promise.resolve().then(this.onClosed) : fh.close().catch(() => {}).finally(this.onClosed)
  }
}
