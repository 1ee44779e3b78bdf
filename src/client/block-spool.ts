// Local-disk copy of the blocks being written by `put` from an input it cannot re-read
// (stdin, a pipe), so that a block whose pipeline fails midway can be sent again from
// disk. One file per block in flight (slot), rewritten for each block: disk use is at
// most PUT_BLOCKS_IN_FLIGHT blocks, and memory stays at a stream buffer. Spooling is
// best effort: if the spool disk fails, the put goes on without the ability to retry a
// block.
// Each slot's file is unlinked as soon as it is open and used through its descriptor
// only (as the mount's spool does), so a put killed midway (kill -9, a crash) leaves
// nothing behind in the temp directory: the kernel frees the space with the process.
import { createReadStream, createWriteStream, ftruncateSync, type WriteStream } from 'node:fs'
import { open, unlink, type FileHandle } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import type { Logger } from '../common/log.js'

export class SpoolWriter {
  private failed = false
  private readonly ws: WriteStream

  constructor (fd: number, log: Logger) {
    // From the start of the slot's file, which stays open for the next block.
    this.ws = createWriteStream('', { fd, start: 0, autoClose: false })
    this.ws.on('error', err => {
      if (!this.failed) log.warn('spool write failed; this block cannot be retried', { err })
      this.failed = true
    })
  }

  /** True when every byte so far reached the spool file. */
  get ok (): boolean { return !this.failed }

  /** Returns a promise to await for backpressure, or undefined. */
  write (chunk: Buffer): Promise<void> | undefined {
    if (this.failed) return undefined
    if (this.ws.write(chunk)) return undefined
    return new Promise(resolve => {
      const done = (): void => { this.ws.off('drain', done); this.ws.off('close', done); resolve() }
      this.ws.on('drain', done)
      this.ws.on('close', done)
    })
  }

  /** Flush and close; resolves (never rejects) once the file is complete or known bad. */
  finish (): Promise<void> {
    if (this.failed || this.ws.destroyed) return Promise.resolve()
    return new Promise(resolve => {
      this.ws.end(() => resolve())
      this.ws.once('error', () => resolve())
    })
  }

  abort (): void {
    this.failed = true
    this.ws.destroy()
  }
}

export class BlockSpool {
  private constructor (private readonly slots: FileHandle[], private readonly log: Logger) {}

  /** `slots` unlinked temp files in `parent`; undefined (no retries) if they cannot be made. */
  static async create (parent: string, log: Logger, slots: number): Promise<BlockSpool | undefined> {
    const handles: FileHandle[] = []
    try {
      for (let i = 0; i < slots; i++) {
        const path = join(parent, `hiss-put-${process.pid}-${randomBytes(6).toString('hex')}`)
        const fh = await open(path, 'wx+', 0o600)
        handles.push(fh)
        await unlink(path)
      }
      return new BlockSpool(handles, log)
    } catch (err) {
      for (const fh of handles) await fh.close().catch(() => {})
      log.warn('cannot create spool files; failed blocks will not be retried', { err: err as Error, parent })
      return undefined
    }
  }

  /**
   * Start the slot's next block. The slot's previous block is done with (stored) by now:
   * its bytes are dropped first, so a shorter block never reads back a longer one's tail.
   */
  begin (slot: number): SpoolWriter {
    const fd = this.slots[slot]!.fd
    try {
      ftruncateSync(fd, 0)
    } catch (err) {
      this.log.warn('spool truncate failed; this block cannot be retried', { err: err as Error })
      const w = new SpoolWriter(fd, this.log)
      w.abort()
      return w
    }
    return new SpoolWriter(fd, this.log)
  }

  open (slot: number): Readable { return createReadStream('', { fd: this.slots[slot]!.fd, start: 0, autoClose: false }) }

  async dispose (): Promise<void> {
    for (const fh of this.slots) await fh.close().catch(err => { this.log.warn('cannot close a spool file', { err: err as Error }) })
  }
}
