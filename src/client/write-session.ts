// One open write (a lease on the NameServer). storeBlock allocates a block, streams it
// through a DataServer pipeline and, when the pipeline fails and the bytes can be sent
// again, allocates anew avoiding the DataServers that failed.
import type { Readable } from 'node:stream'
import { HissError, isHissError, type ErrorCode } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import type { Clock } from '../common/clock.js'
import type { AddBlockReply, BlockRef, FileStat, LocatedBlock, WriteOpenReply } from '../common/protocol.js'
import { sendBlock, sendZeroBlock } from './block-writer.js'
import { patchBlock, type BlockPatch } from './block-patcher.js'
import { toHissError } from './http-errors.js'
import type { HttpClient } from './http.js'
import type { LeaseRenewer } from './lease-renewer.js'
import type { NameServerClient } from './nameserver-client.js'
import type { StoreOptions, WriteSession } from './types.js'
import { bareBlockRef, blockRef } from '../common/block-ref.js'

/** Pipelines tried per block before giving up. */
export const MAX_BLOCK_ATTEMPTS = 3
/**
 * A block allocated together with the write (createOpen) is used for the first store
 * only this soon after: its write token has a limited life (`token.lifetime.ms`, 10 min
 * by default), and a stream cannot be sent twice.
 */
export const FIRST_BLOCK_MAX_AGE_MS = 60_000

// Errors that say our request itself is wrong: another pipeline would not help.
const NOT_RETRIABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['EINVAL', 'BAD_REQUEST', 'TOO_LARGE', 'EFBIG', 'LEASE_EXPIRED'])

/**
 * A body for one attempt; `undefined` when the bytes cannot be sent again. `zeros`: the
 * block is that many zero bytes, sent as HEADER_ZERO_LENGTH without a body.
 */
export type BodySource = (attempt: number) => Promise<{ body: Readable | Buffer, length?: number, onSent?: (bytes: number) => void, zeros?: number } | undefined>

export interface WriteSessionDeps {
  ns: NameServerClient
  http: HttpClient
  renewer: LeaseRenewer
  log: Logger
  /** cfg['replication.min']. */
  minReplicas: number
  /** Ages a pre-allocated first block (without a clock, one is not used). */
  clock?: Clock
}

export class HissWriteSession implements WriteSession {
  readonly writeId: string
  readonly blockSize: number
  readonly replication: number
  readonly baseBlocks: readonly LocatedBlock[]
  readonly baseSize: number
  private inode: number
  private closed = false
  private firstBlock: { alloc: AddBlockReply, at: number } | undefined

  constructor (private readonly d: WriteSessionDeps, reply: WriteOpenReply, firstBlock?: AddBlockReply) {
    this.writeId = reply.writeId
    this.inode = reply.ino
    this.blockSize = reply.blockSize
    this.replication = reply.replication
    this.baseBlocks = reply.blocks
    this.baseSize = reply.size
    d.renewer.add(reply.writeId, reply.leaseTimeoutMs)
    if (firstBlock !== undefined && d.clock !== undefined) this.firstBlock = { alloc: firstBlock, at: d.clock.now() }
  }

  /** The block allocated with the write, once, while its token is surely valid. */
  private takeFirstBlock (): AddBlockReply | undefined {
    const f = this.firstBlock
    this.firstBlock = undefined
    if (f === undefined || this.d.clock === undefined) return undefined
    return this.d.clock.now() - f.at < FIRST_BLOCK_MAX_AGE_MS ? f.alloc : undefined
  }

  get ino (): number { return this.inode }

  storeBlock (data: Readable | Buffer, length?: number, opts: StoreOptions = {}): Promise<BlockRef> {
    if (Buffer.isBuffer(data)) {
      if (length !== undefined && length !== data.length) return Promise.reject(HissError.EINVAL('length does not match the buffer'))
      if (data.length > this.blockSize) return Promise.reject(HissError.EINVAL(`block of ${data.length} bytes exceeds the block size ${this.blockSize}`))
      return this.storeWith(async () => ({ body: data, length: data.length }))
    }
    if (length !== undefined && (length < 0 || length > this.blockSize)) return Promise.reject(HissError.EINVAL(`block of ${length} bytes exceeds the block size ${this.blockSize}`))
    // A stream can be sent only once.
    const onSent = opts.onSent
    return this.storeWith(async attempt => attempt === 0 ? { body: data, ...(length === undefined ? {} : { length }), ...(onSent === undefined ? {} : { onSent }) } : undefined)
  }

  /** Store a block of `length` zero bytes (a hole): no bytes travel, replicas are sparse. */
  storeZeros (length: number): Promise<BlockRef> {
    if (!Number.isSafeInteger(length) || length < 0 || length > this.blockSize) return Promise.reject(HissError.EINVAL(`block of ${length} bytes exceeds the block size ${this.blockSize}`))
    return this.storeWith(async () => ({ body: Buffer.alloc(0), zeros: length }))
  }

  /**
   * Store one block, trying up to MAX_BLOCK_ATTEMPTS pipelines. `source(n)` is asked
   * for the body of attempt n after its block is allocated; errors it throws end the
   * store at once (they are the caller's, e.g. the input stream failed).
   */
  async storeWith (source: BodySource): Promise<BlockRef> {
    this.assertOpen()
    const exclude = new Set<string>()
    const minStored = Math.min(this.d.minReplicas, this.replication)
    let lastErr: HissError | undefined
    for (let attempt = 0; attempt < MAX_BLOCK_ATTEMPTS; attempt++) {
      let alloc = attempt === 0 ? this.takeFirstBlock() : undefined
      try {
        alloc ??= await this.d.ns.addBlock({ writeId: this.writeId, ...(exclude.size > 0 ? { exclude: [...exclude] } : {}) })
      } catch (err) {
        // Every DataServer left was excluded because it refused the block for space: the
        // cluster is full (ENOSPC), which says more than "no DataServer left".
        if (isHissError(err) && err.code === 'NO_DATASERVERS' && lastErr?.code === 'ENOSPC') throw lastErr
        throw err
      }
      const src = await source(attempt)
      if (src === undefined) throw lastErr ?? HissError.EIO('block data cannot be sent again')
      try {
        const t0 = performance.now()
        const reply = src.zeros !== undefined
          ? await sendZeroBlock(this.d.http, alloc, src.zeros)
          : await sendBlock(this.d.http, alloc, src.body, src.length, src.onSent)
        this.d.log.debug('block stored', { id: reply.id, length: reply.length, stored: reply.stored.length, ms: +(performance.now() - t0).toFixed(2) })
        // A block of zeros is flagged for the commit: it holds no space (BlockRef.zero).
        if (reply.stored.length >= minStored) return blockRef(reply.id, reply.gen, reply.length, src.zeros !== undefined)
        const failed = reply.failed.length > 0 ? reply.failed : alloc.targets.map(t => t.id).filter(id => !reply.stored.includes(id))
        for (const id of failed) exclude.add(id)
        lastErr = HissError.from('NO_DATASERVERS', `block ${alloc.block.id} reached ${reply.stored.length} of ${minStored} required replicas`)
      } catch (err) {
        const e = toHissError(err)
        if (NOT_RETRIABLE.has(e.code)) throw e
        lastErr = e
        // A refused token is about the token, not the DataServer; anything else is blamed
        // on the head of the pipeline (it reports downstream failures in its reply).
        const head = alloc.targets[0]
        if (e.code !== 'BAD_TOKEN' && head !== undefined) exclude.add(head.id)
      }
      this.d.log.info('block pipeline failed, retrying', { writeId: this.writeId, attempt, code: lastErr.code, exclude: [...exclude] })
    }
    throw lastErr ?? HissError.EIO('block write failed')
  }

  /** Patch a block of the file's committed content in place (see block-patcher.ts). */
  async patchBlock (block: LocatedBlock, patch: BlockPatch): Promise<LocatedBlock> {
    this.assertOpen()
    return patchBlock({ ns: this.d.ns, http: this.d.http, minReplicas: Math.min(this.d.minReplicas, this.replication), blockSize: this.blockSize, writeId: this.writeId }, block, patch)
  }

  async commit (blocks: BlockRef[], opts: { mtimeNs?: string, mode?: number, uid?: number, gid?: number, keepOpen?: boolean } = {}): Promise<FileStat> {
    this.assertOpen()
    // Only the BlockRef fields go on the wire (callers may pass LocatedBlocks).
    const refs = blocks.map(bareBlockRef)
    const size = refs.reduce((s, b) => s + b.length, 0)
    const stat = await this.d.ns.commit({
      writeId: this.writeId,
      blocks: refs,
      size,
      ...(opts.mtimeNs === undefined ? {} : { mtimeNs: opts.mtimeNs }),
      ...(opts.mode === undefined ? {} : { mode: opts.mode }),
      ...(opts.uid === undefined ? {} : { uid: opts.uid }),
      ...(opts.gid === undefined ? {} : { gid: opts.gid }),
      ...(opts.keepOpen === true ? { keepOpen: true } : {}),
    })
    this.inode = stat.ino
    if (opts.keepOpen !== true) this.finish()
    return stat
  }

  async abort (): Promise<void> {
    if (this.closed) return
    try {
      await this.d.ns.abort(this.writeId)
    } catch (err) {
      // The lease is gone already (expired, or the NameServer forgot it): nothing to undo.
      if (!(isHissError(err) && (err.code === 'LEASE_EXPIRED' || err.code === 'ENOENT'))) throw err
    } finally {
      this.finish()
    }
  }

  private finish (): void {
    this.closed = true
    this.d.renewer.remove(this.writeId)
  }

  private assertOpen (): void {
    if (this.closed) throw HissError.from('EBADF', `write ${this.writeId} is already committed or aborted`)
  }
}
