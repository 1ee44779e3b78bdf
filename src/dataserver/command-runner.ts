// Runs the commands a heartbeat reply carries. Commands come from the NameServer (an
// authenticated peer) but are still checked: a malformed one is logged and skipped.
import { isHissError } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import { parseBlockNumber } from '../common/paths.js'
import type { BlockRef, DataServerCommand, ReplicaTuple } from '../common/protocol.js'
import type { BlockStore } from './block-store.js'
import type { Replicator } from './replicator.js'

export interface CommandRunnerOptions {
  store: BlockStore
  replicator: Pick<Replicator, 'enqueue'>
  reportDeleted: (id: number, gen: number) => void
  /** A replica made here (a block of zeros) is durable: tell the NameServer. */
  reportReceived: (t: ReplicaTuple) => void
  requestFullReport: () => Promise<void>
  log: Logger
}

/** A command's block, every field checked (a malformed one throws: the command is skipped). */
function parseBlock (b: Partial<BlockRef> | undefined): BlockRef {
  return { id: parseBlockNumber(b?.id), gen: parseBlockNumber(b?.gen, 'generation stamp'), length: parseBlockNumber(b?.length, 'length') }
}

export class CommandRunner {
  private readonly o: CommandRunnerOptions
  /** Deletes run one batch after another, in order. */
  private deletes: Promise<void> = Promise.resolve()
  /** Blocks of zeros are made one after another (a lost file's holes can be many). */
  private zeros: Promise<void> = Promise.resolve()

  constructor (o: CommandRunnerOptions) { this.o = o }

  run (cmds: DataServerCommand[]): void {
    for (const c of cmds) {
      try {
        this.runOne(c)
      } catch (err) {
        this.o.log.warn('skipping malformed command', { type: (c as { type?: unknown })?.type, err: err as Error })
      }
    }
  }

  /** Resolves when every delete and block of zeros queued so far is done (tests, shutdown). */
  async idle (): Promise<void> { await Promise.all([this.deletes, this.zeros]) }

  private runOne (c: DataServerCommand): void {
    switch (c?.type) {
      case 'replicate': {
        const block = parseBlock(c.block)
        if (!Array.isArray(c.targets) || typeof c.token !== 'string') throw new Error('bad replicate command')
        const targets = c.targets.filter(t => typeof t?.id === 'string' && typeof t?.address === 'string')
        void this.o.replicator.enqueue({ block, targets, token: c.token })
        return
      }
      case 'delete': {
        if (!Array.isArray(c.blocks)) throw new Error('bad delete command')
        const blocks = c.blocks.map(b => [parseBlockNumber(b?.[0]), parseBlockNumber(b?.[1], 'generation stamp')] as const)
        this.deletes = this.deletes.then(async () => {
          for (const [id, gen] of blocks) {
            try {
              await this.o.store.delete(id, gen)
            } catch (err) {
              this.o.log.warn('delete failed', { id, gen, err: err as Error })
              continue
            }
            // Reported even when we no longer had it: the NameServer only wants it gone.
            this.o.reportDeleted(id, gen)
          }
        })
        return
      }
      case 'report':
        void this.o.requestFullReport()
        return
      case 'zero': {
        const block = parseBlock(c.block)
        this.zeros = this.zeros.then(async () => {
          try {
            const r = await this.o.store.writeZero(block.id, block.gen, block.length)
            this.o.reportReceived([block.id, block.gen, r.length])
          } catch (err) {
            const have = this.o.store.index.get(block.id)
            if (isHissError(err) && err.code === 'EEXIST' && have !== undefined) { this.o.reportReceived([block.id, have.gen, have.length]); return }
            // No room, a newer generation here, or shutting down: the NameServer asks
            // again after its pending timeout if the block still has too few replicas.
            this.o.log.warn('making a block of zeros failed', { id: block.id, gen: block.gen, err: err as Error })
          }
        })
        return
      }
      default:
        throw new Error('unknown command type')
    }
  }
}
