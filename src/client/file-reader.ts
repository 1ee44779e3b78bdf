// Whole-file or ranged streaming read: one read plan from the NameServer, then block
// after block through BlockReadStream (failover per block), with backpressure. The next
// block's request starts when the current one has NEXT_BLOCK_LEAD_BYTES left, so its
// first bytes are there when they are needed (it buffers at most one stream buffer).
import { Readable } from 'node:stream'
import { HissError } from '../common/errors.js'
import type { LocatedBlock } from '../common/protocol.js'
import { toHissError } from './http-errors.js'
import type { NameServerClient } from './nameserver-client.js'
import type { ReadOptions } from './types.js'

export type OpenBlock = (block: LocatedBlock, offset: number, length: number, opts: { ino?: number, path?: string }) => Readable

export interface Segment { block: LocatedBlock, offset: number, length: number }

/** Bytes left in the current block when the next block's request starts. */
export const NEXT_BLOCK_LEAD_BYTES = 2 * 1024 * 1024
/** Bytes a file stream buffers before it pauses its block stream (1 MiB). */
const FILE_STREAM_HWM = 1024 * 1024

/** The parts of `blocks` covering [start, end), in file order. */
export function planSegments (blocks: readonly LocatedBlock[], start: number, end: number): Segment[] {
  const out: Segment[] = []
  for (const b of [...blocks].sort((x, y) => x.offset - y.offset)) {
    const from = Math.max(start, b.offset)
    const to = Math.min(end, b.offset + b.length)
    if (to > from) out.push({ block: b, offset: from - b.offset, length: to - from })
  }
  return out
}

/** What to read of a file: its stat and the block segments covering [start, end). */
export interface ReadPlan { ino: number, start: number, end: number, segments: Segment[] }

/**
 * Ask the NameServer for `path`'s blocks and plan the read of [start, start+length)
 * (all of it by default). Refuses a directory and a plan that does not cover the range.
 */
export async function planRead (ns: NameServerClient, path: string, start = 0, length?: number): Promise<ReadPlan> {
  if (!Number.isSafeInteger(start) || start < 0) throw HissError.EINVAL('read start must be a non-negative integer')
  if (length !== undefined && (!Number.isSafeInteger(length) || length < 0)) throw HissError.EINVAL('read length must be a non-negative integer')
  const plan = await ns.blocks({ path }, length === undefined ? undefined : { offset: start, length })
  if (plan.stat.type === 'dir') throw HissError.EISDIR(path)
  const end = length === undefined ? plan.stat.size : Math.min(plan.stat.size, start + length)
  const segments = planSegments(plan.blocks, start, end)
  const covered = segments.reduce((s, x) => s + x.length, 0)
  if (covered < Math.max(0, end - start)) throw HissError.EIO(`read plan of ${path} covers ${covered} of ${end - start} bytes`)
  return { ino: plan.stat.ino, start, end, segments }
}

export class FileReadStream extends Readable {
  private started = false
  private source: Readable | undefined
  /** The next segment's stream, opened ahead of time. */
  private upcoming: Readable | undefined
  private segments: Segment[] = []
  private next = 0
  private ino: number | undefined
  private bytes = 0

  constructor (
    private readonly ns: NameServerClient,
    private readonly openBlock: OpenBlock,
    private readonly path: string,
    private readonly opts: ReadOptions = {},
  ) {
    super({ highWaterMark: FILE_STREAM_HWM })
  }

  override _read (): void {
    if (!this.started) {
      this.started = true
      this.start().catch(err => { this.destroy(toHissError(err)) })
      return
    }
    this.source?.resume()
  }

  override _destroy (err: Error | null, cb: (err?: Error | null) => void): void {
    this.source?.destroy()
    this.source = undefined
    this.upcoming?.destroy()
    this.upcoming = undefined
    cb(err)
  }

  private async start (): Promise<void> {
    const plan = await planRead(this.ns, this.path, this.opts.start, this.opts.length)
    this.ino = plan.ino
    this.segments = plan.segments
    this.openNext()
  }

  private open (seg: Segment): Readable {
    return this.openBlock(seg.block, seg.offset, seg.length, { ...(this.ino === undefined ? {} : { ino: this.ino }), path: this.path })
  }

  /** Open the segment after the current one and let it start (it stops at its buffer). */
  private openUpcoming (): void {
    const seg = this.segments[this.next]
    if (seg === undefined || this.upcoming !== undefined || this.destroyed) return
    const src = this.open(seg)
    // Its error is taken up when it becomes the current source; until then, keep it.
    src.on('error', () => {})
    src.read(0)
    this.upcoming = src
  }

  private openNext (): void {
    if (this.destroyed) return
    const seg = this.segments[this.next++]
    if (seg === undefined) { this.push(null); return }
    const src = this.upcoming ?? this.open(seg)
    this.upcoming = undefined
    this.source = src
    let left = seg.length
    src.on('data', (chunk: Buffer) => {
      this.bytes += chunk.length
      left -= chunk.length
      this.opts.onProgress?.(this.bytes)
      if (left <= NEXT_BLOCK_LEAD_BYTES) this.openUpcoming()
      if (!this.push(chunk)) src.pause()
    })
    src.once('end', () => {
      this.source = undefined
      this.openNext()
    })
    src.once('error', err => { this.destroy(toHissError(err)) })
    // An upcoming stream that already failed has emitted its error: read() rethrows nothing,
    // so surface a destroyed stream's error here.
    if (src.destroyed && src.errored !== null) this.destroy(toHissError(src.errored))
  }
}
