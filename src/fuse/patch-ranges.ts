// The changed byte ranges of a block being patched (OpenFile's patch slots): sorted,
// disjoint, merged when they touch, and bounded (count and bytes) so a file with many
// small changes stays small in memory; the bytes themselves live in the spool file.
// Past the bounds a block is cheaper to store anew, and OpenFile does that instead.
import { Readable } from 'node:stream'
import type { PatchRange } from '../client/block-patcher.js'
import { MAX_PATCH_RANGES } from '../common/protocol.js'
import type { SpoolFile } from './spool.js'

export interface PatchLimits {
  /** Ranges per block (the protocol allows MAX_PATCH_RANGES). */
  maxRanges: number
  /** Changed bytes per block. */
  maxBytes: number
}

export const MAX_PATCH_RANGES_PER_BLOCK = MAX_PATCH_RANGES
export const MAX_PATCH_BYTES = 16 * 1024 * 1024

/** A patch is worth it up to a quarter of the block (it is journalled, then applied: written twice). */
export function patchLimits (blockSize: number): PatchLimits {
  return { maxRanges: MAX_PATCH_RANGES_PER_BLOCK, maxBytes: Math.min(MAX_PATCH_BYTES, Math.floor(blockSize / 4)) }
}

export class DirtyRanges {
  /** [start, end) pairs, ascending, disjoint and not touching. */
  private list: Array<[number, number]> = []
  private total = 0

  constructor (private readonly limits: PatchLimits) {}

  get count (): number { return this.list.length }
  get bytes (): number { return this.total }

  /** Whether adding [off, off+n) surely stays within the limits. */
  fits (off: number, n: number): boolean {
    if (this.total + n <= this.limits.maxBytes && this.list.length < this.limits.maxRanges) return true
    // Inside a range already: costs nothing.
    return this.list.some(([a, b]) => a <= off && off + n <= b)
  }

  add (start: number, end: number): void {
    if (end <= start) return
    const out: Array<[number, number]> = []
    let a = start
    let b = end
    let placed = false
    for (const r of this.list) {
      if (r[1] < a) { out.push(r); continue }
      if (r[0] > b) {
        if (!placed) { out.push([a, b]); placed = true }
        out.push(r)
        continue
      }
      a = Math.min(a, r[0])
      b = Math.max(b, r[1])
    }
    if (!placed) out.push([a, b])
    this.list = out
    this.total = out.reduce((n, [x, y]) => n + y - x, 0)
  }

  /** Ranges that intersect [start, end), whole. */
  overlapping (start: number, end: number): Array<[number, number]> {
    return this.list.filter(([a, b]) => a < end && b > start)
  }

  /** The parts of [start, end) no range covers. */
  gaps (start: number, end: number): Array<[number, number]> {
    const out: Array<[number, number]> = []
    let p = start
    for (const [a, b] of this.list) {
      if (b <= p) continue
      if (a >= end) break
      if (a > p) out.push([p, a])
      p = Math.max(p, b)
    }
    if (p < end) out.push([p, end])
    return out
  }

  toList (): PatchRange[] { return this.list.map(([a, b]) => ({ offset: a, length: b - a })) }
}

const PIECE_BYTES = 256 * 1024

/** The bytes of `ranges`, concatenated, read from the spool (block offsets) piece by piece. */
export function rangeSource (spool: SpoolFile, ranges: readonly PatchRange[]): Readable {
  return Readable.from((async function * () {
    for (const r of ranges) {
      for (let off = 0; off < r.length; off += PIECE_BYTES) {
        const n = Math.min(PIECE_BYTES, r.length - off)
        const buf = Buffer.allocUnsafe(n)
        await spool.read(buf, 0, n, r.offset + off)
        yield buf
      }
    }
  })())
}
