// Local-disk copy of the blocks being written by `put` from an input it cannot re-read
// (stdin, a pipe), so that a block whose pipeline fails midway can be sent again from
// disk. One file per block in flight (slot), rewritten for each block: disk use is at
// most PUT_BLOCKS_IN_FLIGHT blocks, and memory stays at a stream buffer. Spooling is
// best effort: if the spool disk fails, the put goes on without the ability to retry a
// block.
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import type { Logger } from '../common/log.js'

export class SpoolWriter {
  private failed = false
  private readonly ws: WriteStream

  constructor (file: string, log: Logger) {
    this.ws = createWriteStream(file, { flags: 'w' })
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
  private constructor (private readonly dir: string, private readonly log: Logger) {}

  static async create (parent: string, log: Logger): Promise<BlockSpool | undefined> {
    try {
      return new BlockSpool(await mkdtemp(join(parent, 'hiss-put-')), log)
    } catch (err) {
      log.warn('cannot create a spool directory; failed blocks will not be retried', { err: err as Error, parent })
      return undefined
    }
  }

  private file (slot: number): string { return join(this.dir, `block-${slot}`) }

  begin (slot: number): SpoolWriter { return new SpoolWriter(this.file(slot), this.log) }
  open (slot: number): Readable { return createReadStream(this.file(slot)) }

  async dispose (): Promise<void> {
    await rm(this.dir, { recursive: true, force: true }).catch(err => { this.log.warn('cannot remove spool directory', { err, dir: this.dir }) })
  }
}
