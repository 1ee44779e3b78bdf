// Re-replication ordered by the NameServer: read our replica (verified chunk by chunk)
// and PUT it to targets[0] with the other targets as its pipeline, using the token the
// NameServer issued. A local checksum failure quarantines and reports our replica (the
// store does that) and cuts the outgoing stream, so the target drops its partial copy.
import { isHissError } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import type { BlockRef, DataServerRef } from '../common/protocol.js'
import type { BlockStore } from './block-store.js'
import { Downstream } from './pipeline.js'
import type { Transport } from './transport.js'

export interface ReplicateCommand { block: BlockRef, targets: DataServerRef[], token: string }

export interface ReplicationResult {
  outcome: 'done' | 'failed' | 'no-replica' | 'corrupt' | 'skipped'
  stored: string[]
}

export interface ReplicatorOptions {
  store: BlockStore
  transport: Transport
  maxStreams: number
  timeoutMs: number
  log: Logger
}

export class Replicator {
  private readonly o: ReplicatorOptions
  private readonly queue: Array<{ cmd: ReplicateCommand, resolve: (r: ReplicationResult) => void }> = []
  private readonly inFlight = new Set<number>()
  private running = 0
  private stopped = false

  constructor (o: ReplicatorOptions) { this.o = o }

  /** Streams in progress (part of the load we report). */
  get active (): number { return this.running }

  /** Queue a replication; resolves when it finished (never rejects). */
  enqueue (cmd: ReplicateCommand): Promise<ReplicationResult> {
    if (this.stopped) return Promise.resolve({ outcome: 'skipped', stored: [] })
    return new Promise(resolve => {
      this.queue.push({ cmd, resolve })
      this.pump()
    })
  }

  stop (): void {
    this.stopped = true
    for (const q of this.queue.splice(0)) q.resolve({ outcome: 'skipped', stored: [] })
  }

  private pump (): void {
    while (!this.stopped && this.running < this.o.maxStreams && this.queue.length > 0) {
      const { cmd, resolve } = this.queue.shift()!
      // The NameServer may repeat a command while the first copy is still running.
      if (this.inFlight.has(cmd.block.id)) { resolve({ outcome: 'skipped', stored: [] }); continue }
      this.inFlight.add(cmd.block.id)
      this.running++
      this.replicate(cmd)
        .catch((err): ReplicationResult => {
          this.o.log.warn('replication failed', { block: cmd.block.id, err: err as Error })
          return { outcome: 'failed', stored: [] }
        })
        .then(r => {
          this.inFlight.delete(cmd.block.id)
          this.running--
          resolve(r)
          this.pump()
        })
    }
  }

  private async replicate (cmd: ReplicateCommand): Promise<ReplicationResult> {
    const { block, targets, token } = cmd
    if (targets.length === 0) return { outcome: 'skipped', stored: [] }
    // A hole still sparse here goes as a block of zeros: the targets size sparse replicas
    // of their own and nothing is streamed (streamed zeros would be stored dense).
    const zeros = await this.o.store.isSparseZeros(block.id, block.gen, block.length)
    let handle
    if (!zeros) {
      try {
        handle = this.o.store.openRead(block.id, block.gen)
      } catch (err) {
        this.o.log.warn('cannot replicate: no usable replica here', { block: block.id, gen: block.gen, code: isHissError(err) ? err.code : undefined })
        return { outcome: 'no-replica', stored: [] }
      }
    }
    const down = new Downstream({
      transport: this.o.transport,
      hops: targets,
      block: { id: block.id, gen: block.gen },
      token,
      ...(handle === undefined ? { zeros: block.length } : { length: handle.length }),
      timeoutMs: this.o.timeoutMs,
      log: this.o.log,
    })
    if (handle !== undefined) {
      try {
        for await (const piece of handle.chunks) {
          if (down.failed) break
          await down.write(piece)
        }
      } catch (err) {
        down.abort()
        if (isHissError(err) && err.code === 'CHECKSUM_MISMATCH') return { outcome: 'corrupt', stored: [] }
        throw err
      }
    }
    down.end()
    const stored = await down.result()
    this.o.log.info('replicated block', { block: block.id, gen: block.gen, zeros, stored })
    return { outcome: stored.length > 0 ? 'done' : 'failed', stored }
  }
}
