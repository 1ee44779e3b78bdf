// Runs the commands a heartbeat reply carries. Commands come from the NameServer (an
// authenticated peer) but are still checked: a malformed one is logged and skipped.
import type { Logger } from '../common/log.js'
import { parseBlockNumber } from '../common/paths.js'
import type { DataServerCommand } from '../common/protocol.js'
import type { BlockStore } from './block-store.js'
import type { Replicator } from './replicator.js'

export interface CommandRunnerOptions {
  store: BlockStore
  replicator: Pick<Replicator, 'enqueue'>
  reportDeleted: (id: number, gen: number) => void
  requestFullReport: () => Promise<void>
  log: Logger
}

export class CommandRunner {
  private readonly o: CommandRunnerOptions
  /** Deletes run one batch after another, in order. */
  private deletes: Promise<void> = Promise.resolve()

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

  /** Resolves when every delete queued so far is done (tests, shutdown). */
  idle (): Promise<void> { return this.deletes }

  private runOne (c: DataServerCommand): void {
    switch (c?.type) {
      case 'replicate': {
        const block = { id: parseBlockNumber(c.block?.id), gen: parseBlockNumber(c.block?.gen, 'generation stamp'), length: parseBlockNumber(c.block?.length, 'length') }
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
      default:
        throw new Error('unknown command type')
    }
  }
}
