// Patching an existing block in place: ask the NameServer for a new generation of the
// block (POST /v1/ns/write/updateblock), then send only the changed byte ranges to the
// replicas' pipeline (POST /v1/blocks/:id/patch). The caller commits the block at the
// new generation afterwards. See protocol.ts (UpdateBlockRequest) for the contract.
import type { Readable } from 'node:stream'
import { HissError } from '../common/errors.js'
import {
  HEADER_PATCH_RANGES, MAX_PATCH_RANGES,
  type LocatedBlock, type UpdateBlockReply, type WriteBlockReply,
} from '../common/protocol.js'
import { toHissError } from './http-errors.js'
import { sendToPipeline } from './block-writer.js'
import type { HttpClient } from './http.js'
import type { NameServerClient } from './nameserver-client.js'

export interface PatchRange { offset: number, length: number }

export interface BlockPatch {
  /** The block's length after the patch (>= its length now; the gap reads as zeros). */
  length: number
  /** Ascending, non-overlapping, non-empty ranges inside [0, length). */
  ranges: PatchRange[]
  /** The ranges' bytes, concatenated in order (called once per attempt). */
  body: () => Readable | Buffer
}

/** Pipelines tried per patch: the second attempt also applies to replicas the first one moved. */
export const MAX_PATCH_ATTEMPTS = 2

function checkPatch (block: { id: number, length: number }, p: BlockPatch, blockSize: number): number {
  if (!Number.isSafeInteger(p.length) || p.length < block.length || p.length > blockSize) throw HissError.EINVAL(`bad patched length ${p.length} for block ${block.id}`)
  if (p.ranges.length === 0 || p.ranges.length > MAX_PATCH_RANGES) throw HissError.EINVAL(`a patch has 1 to ${MAX_PATCH_RANGES} ranges`)
  let end = 0
  let total = 0
  for (const r of p.ranges) {
    if (!Number.isSafeInteger(r.offset) || !Number.isSafeInteger(r.length) || r.length <= 0 || r.offset < end || r.offset + r.length > p.length) {
      throw HissError.EINVAL('patch ranges must be ascending, disjoint and inside the block')
    }
    end = r.offset + r.length
    total += r.length
  }
  return total
}

/** One patch through one pipeline; resolves with the head DataServer's reply. */
export async function sendPatch (http: HttpClient, up: UpdateBlockReply, p: BlockPatch, total: number): Promise<WriteBlockReply> {
  const headers = {
    [HEADER_PATCH_RANGES]: p.ranges.map(r => `${r.offset}+${r.length}`).join(','),
    'content-length': String(total),
  }
  const reply = await sendToPipeline(http, 'post', up, up.block, `/v1/blocks/${up.block.id}/patch`, { length: p.length }, p.body(), headers, 'block patch')
  if (reply.length !== p.length) throw HissError.EIO(`DataServer ${up.targets[0]!.address} acknowledged another patch`)
  return reply
}

/**
 * Patch `block` (committed at block.gen) under write `writeId`. Resolves with the block
 * at its new generation, located where the patch is durable (at least `minReplicas`
 * DataServers), with a token that reads it; rejects when no pipeline got it that far.
 */
export async function patchBlock (
  d: { ns: NameServerClient, http: HttpClient, minReplicas: number, blockSize: number, writeId: string },
  block: LocatedBlock, p: BlockPatch,
): Promise<LocatedBlock> {
  const total = checkPatch(block, p, d.blockSize)
  let lastErr: HissError | undefined
  for (let attempt = 0; attempt < MAX_PATCH_ATTEMPTS; attempt++) {
    const up = await d.ns.updateBlock({ writeId: d.writeId, block: { id: block.id, gen: block.gen } })
    try {
      const reply = await sendPatch(d.http, up, p, total)
      if (reply.stored.length >= d.minReplicas) {
        const stored = new Set(reply.stored)
        return { id: block.id, gen: up.block.gen, length: p.length, offset: block.offset, locations: up.targets.filter(t => stored.has(t.id)), token: up.token }
      }
      lastErr = HissError.from('NO_DATASERVERS', `patch of block ${block.id} reached ${reply.stored.length} of ${d.minReplicas} required replicas`)
    } catch (err) {
      lastErr = toHissError(err)
      if (lastErr.code === 'BAD_REQUEST' || lastErr.code === 'EINVAL' || lastErr.code === 'LEASE_EXPIRED') throw lastErr
    }
  }
  throw lastErr ?? HissError.EIO(`patch of block ${block.id} failed`)
}
