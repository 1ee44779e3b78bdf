// Local spool for copy-on-write blocks: each block being modified (random writes, a
// partial last block being appended to, the block a sequential writer is streaming) lives
// in its own temp file under the OS temp dir until it is uploaded as a new block. The
// file is unlinked as soon as it is open, so nothing is left behind if the mount dies;
// its descriptor is closed only when the last reader lets go of it.
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fromNodeError } from '../common/errors.js'

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

export class SpoolFile {
  private refs = 0
  private discarded = false
  private closing: Promise<void> | undefined

  constructor (private readonly fh: FileHandle, private readonly onClosed: () => void) {}

  get isDiscarded (): boolean { return this.discarded }

  /** Hold the descriptor open across an async read (discard() waits for it). */
  acquire (): void { this.refs++ }
  release (): void {
    this.refs--
    if (this.refs === 0 && this.discarded) this.close()
  }

  async write (data: Buffer, pos: number): Promise<void> {
    let off = 0
    try {
      while (off < data.length) {
        const { bytesWritten } = await this.fh.write(data, off, data.length - off, pos + off)
        off += bytesWritten
      }
    } catch (err) {
      throw fromNodeError(err, 'spool write')
    }
  }

  /**
   * Read [pos, pos+len) into dst at dstOff; bytes past the file's end read as zeros
   * (a block's hole). Reads go through a private buffer, so a caller's buffer (the
   * kernel's, for a FUSE read answered early on an error) is never handed to the thread
   * pool, unless `owned`: the caller owns dst and waits for this read in every case.
   */
  async read (dst: Buffer, dstOff: number, len: number, pos: number, owned = false): Promise<void> {
    const tmp = owned ? dst.subarray(dstOff, dstOff + len) : Buffer.allocUnsafe(len)
    let got = 0
    this.acquire()
    try {
      while (got < len) {
        const { bytesRead } = await this.fh.read(tmp, got, len - got, pos + got)
        if (bytesRead === 0) break
        got += bytesRead
      }
    } catch (err) {
      throw fromNodeError(err, 'spool read')
    } finally {
      this.release()
    }
    tmp.fill(0, got)
    if (!owned) tmp.copy(dst, dstOff)
  }

  async truncate (len: number): Promise<void> {
    try {
      await this.fh.truncate(len)
    } catch (err) {
      throw fromNodeError(err, 'spool truncate')
    }
  }

  /** Forget this file: the descriptor closes once no read holds it. */
  discard (): void {
    if (this.discarded) return
    this.discarded = true
    if (this.refs === 0) this.close()
  }

  private close (): void {
    if (this.closing !== undefined) return
    this.closing = this.fh.close().catch(() => {}).finally(this.onClosed)
  }
}
