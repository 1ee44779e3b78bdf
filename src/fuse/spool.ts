// Local spool for copy-on-write blocks: each block being modified (random writes, a
// partial last block being appended to, the block a sequential writer is streaming) lives
// in its own temp file under the OS temp dir until it is uploaded as a new block. The
// file is unlinked as soon as it is open, so nothing is left behind if the mount dies;
// its descriptor is closed only when the last reader lets go of it. A sequential writer
// queues its data with writeBehind (written in batches, off the FUSE op's critical
// path); everything else waits for that queue.
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fromNodeError, type HissError } from '../common/errors.js'

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
    const path = join(this.dir!, `blk-${++this.seq}`)
    let fh: FileHandle
    try {
      fh = await open(path, 'w+', 0o600)
      await rm(path, { force: true })
    } catch (err) {
      throw fromNodeError(err, 'spool file')
    }
    const f = new SpoolFile(fh, () => { this.live.delete(f) })
    this.live.add(f)
    return f
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
/** Pieces per pwritev (Linux IOV_MAX is 1024). */
const MAX_IOV = 256

/** Contiguous queued writes, written with one pwritev; `done`: the writers' callbacks. */
interface Run { pos: number, bufs: Buffer[], len: number, done: Array<() => void> | undefined }

/** Tell writers their buffers are no longer used (written, dropped or failed). */
function finished (runs: readonly Run[]): void {
  for (const r of runs) if (r.done !== undefined) for (const d of r.done) d()
}

export class SpoolFile {
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

  constructor (private readonly fh: FileHandle, private readonly onClosed: () => void) {}

  get isDiscarded (): boolean { return this.discarded }

  /** Hold the descriptor open across an async read (discard() waits for it). */
  acquire (): void { this.refs++ }
  release (): void {
    this.refs--
    if (this.refs === 0 && this.discarded) this.close()
  }

  /**
   * Write `data` (the caller's: copied) at `pos` and wait until it is on the file. It goes
   * through the queue so that a read started after this call, while the write is still
   * in flight, waits for it: the upload reads the spool concurrently, and a direct write
   * racing that read let an overwrite be sent with the old bytes.
   */
  async write (data: Buffer, pos: number): Promise<void> {
    if (data.length === 0) return
    const own = Buffer.allocUnsafe(data.length)
    data.copy(own)
    await this.writeBehind(own, pos)
    await this.drain()
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
    if (this.failure !== undefined || data.length === 0) {
      done?.()
      if (this.failure !== undefined) throw this.failure
      return
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
          await pwritevAll(this.fh, run.bufs, run.pos, run.len)
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
    this.acquire()
    try {
      await this.drain()
      const tmp = owned ? dst.subarray(dstOff, dstOff + len) : Buffer.allocUnsafe(len)
      let got = 0
      try {
        while (got < len) {
          const { bytesRead } = await this.fh.read(tmp, got, len - got, pos + got)
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
    await this.drain()
    try {
      await this.fh.truncate(len)
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
    this.closing = this.fh.close().catch(() => {}).finally(this.onClosed)
  }
}

/** Write every byte of `bufs` at `pos` (a short pwritev continues). */
async function pwritevAll (fh: FileHandle, bufs: Buffer[], pos: number, total: number): Promise<void> {
  let done = 0
  let list = bufs
  for (;;) {
    const { bytesWritten } = await fh.writev(list, pos + done)
    done += bytesWritten
    if (done >= total) return
    if (bytesWritten === 0) throw Object.assign(new Error('spool write made no progress'), { code: 'EIO' })
    let skip = bytesWritten
    const rest: Buffer[] = []
    for (const b of list) {
      if (skip >= b.length) { skip -= b.length; continue }
      rest.push(skip > 0 ? b.subarray(skip) : b)
      skip = 0
    }
    list = rest
  }
}
