// One block write (PUT /v1/blocks/:id): store locally while forwarding down the
// pipeline (a small block to all its hops at once, see FAN_OUT_MAX_BYTES), then answer
// once (a) the local copy is durable and (b) the downstream replied or failed. The
// NameServer is told (incremental `received`) as soon as the local copy is durable,
// without holding the reply: a commit waits for the reports.
import type { Logger } from '../common/log.js'
import type { DataServerRef, ReplicaTuple, WriteBlockReply } from '../common/protocol.js'
import type { BlockStore } from './block-store.js'
import { Downstream, FanOut, forwardingSource, type BlockBody, type DownstreamLike } from './pipeline.js'
import type { Transport } from './transport.js'

/** The part of the NameServer link a write needs. */
export interface ReceivedReporter {
  /** Queue the report of a stored replica; must not block the acknowledgement. */
  reportReceived (t: ReplicaTuple): void
  reportDeleted (id: number, gen: number): void
}

export interface ReceiverDeps {
  selfId: string
  store: BlockStore
  transport: Transport
  reporter: ReceivedReporter
  downstreamTimeoutMs: number
  log: Logger
}

/**
 * A block announced at most this long goes to all downstream hops at once (FanOut)
 * rather than along the chain: the reply then waits for one hop instead of each in turn,
 * which is most of a small block's latency. Larger blocks keep the chain (each link
 * carries the bytes once).
 */
export const FAN_OUT_MAX_BYTES = 256 * 1024

export interface IncomingBlock {
  id: number
  gen: number
  token: string
  body: BlockBody
  pipeline: DataServerRef[]
  expectedLength?: number | undefined
  /** A block of this many zeros (HEADER_ZERO_LENGTH): the body is empty. */
  zeroLength?: number | undefined
}

export async function receiveBlock (d: ReceiverDeps, b: IncomingBlock): Promise<WriteBlockReply> {
  // Refuse before the downstream is contacted, so a doomed write costs nothing there.
  d.store.checkWritable(b.id, b.gen)
  if (b.zeroLength !== undefined) return await receiveZeroBlock(d, b, b.zeroLength)
  let down: DownstreamLike | undefined
  // A body of unknown length is held up to FAN_OUT_MAX_BYTES before forwarding: when it
  // ends within that, it goes on (and is stored) as a small block of known length.
  const open = b.pipeline.length === 0
    ? undefined
    : (known?: number) => {
        const length = b.expectedLength ?? known
        const opts = {
          transport: d.transport,
          hops: b.pipeline,
          block: { id: b.id, gen: b.gen },
          token: b.token,
          length,
          timeoutMs: d.downstreamTimeoutMs,
          log: d.log,
        }
        const fanOut = b.pipeline.length > 1 && length !== undefined && length <= FAN_OUT_MAX_BYTES
        return (down = fanOut ? new FanOut(opts) : new Downstream(opts))
      }
  const hold = b.expectedLength === undefined ? FAN_OUT_MAX_BYTES : 0
  let length: number
  try {
    const r = await d.store.write(b.id, b.gen, forwardingSource(b.body, open, hold), { expectedLength: b.expectedLength })
    length = r.length
    if (r.replacedGen !== undefined) d.reporter.reportDeleted(b.id, r.replacedGen)
  } catch (err) {
    // Also covers failures after the body was fully forwarded (fsync, rename).
    ;(down as DownstreamLike | undefined)?.abort()
    throw err
  }
  return await stored(d, b, length, down as DownstreamLike | undefined)
}

/** The local copy is durable: report it, wait for the downstream, answer. */
async function stored (d: ReceiverDeps, b: IncomingBlock, length: number, down: DownstreamLike | undefined): Promise<WriteBlockReply> {
  // Queued, not awaited: the commit on the NameServer waits for the reports it needs.
  d.reporter.reportReceived([b.id, b.gen, length])
  const downStored = await (down?.result() ?? Promise.resolve([] as string[]))
  return {
    id: b.id,
    gen: b.gen,
    length,
    stored: [d.selfId, ...downStored],
    // Every pipeline member that does not hold the block: stored ∪ failed = all targets.
    failed: b.pipeline.map(h => h.id).filter(id => !downStored.includes(id)),
  }
}

/**
 * A block of zeros: nothing to stream, so every downstream hop gets the same empty
 * request at once while this one sizes its sparse replica.
 */
async function receiveZeroBlock (d: ReceiverDeps, b: IncomingBlock, zeroLength: number): Promise<WriteBlockReply> {
  const down: DownstreamLike | undefined = b.pipeline.length === 0
    ? undefined
    : new FanOut({
      transport: d.transport,
      hops: b.pipeline,
      block: { id: b.id, gen: b.gen },
      token: b.token,
      timeoutMs: d.downstreamTimeoutMs,
      log: d.log,
      zeros: zeroLength,
    })
  down?.end()
  let length: number
  try {
    const r = await d.store.writeZero(b.id, b.gen, zeroLength)
    length = r.length
    if (r.replacedGen !== undefined) d.reporter.reportDeleted(b.id, r.replacedGen)
  } catch (err) {
    down?.abort()
    throw err
  }
  return await stored(d, b, length, down)
}
