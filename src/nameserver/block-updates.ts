// Patching committed blocks in place (POST /v1/ns/write/updateblock). A writer that
// changed a few bytes of an existing block asks for a new generation stamp of the same
// block id; the DataServers holding it apply the changed ranges and move their replica
// to that generation; the writer's commit then lists the block at the new generation.
//
// Between the patch and the commit, the replicas that moved no longer hold the committed
// generation, so the NameServer must know, durably, that the block is in flux: a
// `block_updates` row (committed generation, range of attempted generations) is written
// before the new generation is handed out. Replicas reported at an attempted generation
// are kept aside (BlockMap.pending), never deleted as stale, and the monitor leaves the
// block alone. The commit clears the row in the same transaction that records the new
// generation. The row also names the writer and the generations it was handed, so a
// writer whose session survives a NameServer restart (write-sessions.ts) still commits
// its patch. When the writer goes away without committing (lease lost, or a session
// that does not come back), resolve() decides: if a replica of the committed generation
// survives, the patch is rolled back (its replicas deleted); if none does, the newest patched
// generation becomes the block's (its bytes are the writer's, written through an fsync
// that did not return), rather than losing the block.
import { signBlockToken } from '../common/auth.js'
import { HissError } from '../common/errors.js'
import type { BlockRef, CommitRequest, UpdateBlockReply } from '../common/protocol.js'
import type { NameServerCore } from './core.js'
import type { WriteSession } from './write-sessions.js'

export class BlockUpdates {
  /** writeId -> blockId -> generations handed out (the token's `from` list after the committed one). */
  private readonly attempts = new Map<string, Map<number, number[]>>()

  constructor (private readonly core: NameServerCore) {}

  /**
   * Start-up, after the stored write sessions are back: blocks a previous run was
   * patching stay in flux. A patch whose session came back keeps its owner and the
   * generations handed to it, so the writer's commit (or its next attempt) goes on as if
   * there had been no restart; the others wait for resolve().
   */
  load (): void {
    for (const u of this.core.store.pendingUpdates()) {
      const owner = u.owner !== null && this.core.sessions.peek(u.owner) !== undefined ? u.owner : undefined
      this.core.blocks.pending.set(u.id, { base: u.base, first: u.first, last: u.last, owner, holders: new Map() })
      if (owner !== undefined && u.tried.length > 0) this.triedBy(owner).set(u.id, u.tried)
    }
  }

  private triedBy (writeId: string): Map<number, number[]> {
    let mine = this.attempts.get(writeId)
    if (mine === undefined) { mine = new Map(); this.attempts.set(writeId, mine) }
    return mine
  }

  begin (writeId: string, block: { id: number, gen: number }): UpdateBlockReply {
    const { core } = this
    const s = core.sessions.use(writeId, core.clock.now())
    if (s.ino === 0) throw HissError.EINVAL('a file being created has no blocks to patch')
    const row = core.store.blockRow(block.id)
    if (row === undefined || row.ino !== s.ino) throw HissError.EINVAL(`block ${block.id} is not part of this file`)
    if (row.gen !== block.gen) throw HissError.EINVAL(`block ${block.id} is at generation ${row.gen}, not ${block.gen}`)
    let up = core.blocks.pending.get(block.id)
    if (up !== undefined && up.owner !== writeId) throw HissError.from('EBUSY', `block ${block.id} is being patched by another write`)
    const isLive = (ds: string): boolean => core.registry.isLive(ds)
    const holders = [...core.blocks.holders(block.id, isLive, 'live'), ...core.blocks.pendingHolders(block.id, isLive)]
    const replication = core.blocks.expected.get(block.id)?.replication ?? s.replication
    if (holders.length < replication) {
      throw HissError.from('NO_DATASERVERS', `block ${block.id} has ${holders.length} of ${replication} replicas: store it anew`)
    }
    const first = up?.first
    const mine = this.triedBy(writeId)
    const tried = mine.get(block.id) ?? []
    // The owner and its generations are stored too: a restart keeps the patch its writer's.
    const gen = core.store.transaction(() => {
      const g = core.store.allocateGen()
      core.store.setPendingUpdate({ id: block.id, base: row.gen, first: first ?? g, last: g, owner: writeId, tried: [...tried, g] })
      return g
    })
    mine.set(block.id, [...tried, gen])
    if (up === undefined) {
      up = { base: row.gen, first: gen, last: gen, owner: writeId, holders: new Map() }
      core.blocks.pending.set(block.id, up)
    } else {
      up.last = gen
    }
    const from = [row.gen, ...tried]
    const token = signBlockToken(core.secret, { b: block.id, g: gen, a: 'w', e: core.clock.wallNow() + core.cfg['token.lifetime.ms'], f: from })
    const targets = holders.map(id => core.registry.get(id)!).map(d => ({ id: d.id, address: d.address }))
    return { block: { id: block.id, gen }, from, targets, token }
  }

  /** Is `b` (listed by a commit of `s`) one of this session's patched generations? */
  isPatched (s: WriteSession, b: BlockRef): boolean {
    const up = this.core.blocks.pending.get(b.id)
    return up !== undefined && up.owner === s.writeId && (this.attempts.get(s.writeId)?.get(b.id)?.includes(b.gen) ?? false)
  }

  /** Replicas of a patched block for a commit: undefined when enough, else the error. */
  check (s: WriteSession, b: BlockRef, committedLength: number, minReplicas: number): { err: HissError, wait: boolean } | undefined {
    if (b.length < committedLength) return { err: HissError.EINVAL(`block ${b.id}: a patched block cannot be shorter than before`), wait: false }
    if (b.length > s.blockSize) return { err: HissError.EINVAL(`block ${b.id} is longer than the block size`), wait: false }
    const good = this.core.blocks.pendingHolders(b.id, ds => this.core.registry.isLive(ds), b.gen, b.length).length
    if (good < minReplicas) return { err: HissError.EINVAL(`block ${b.id} (${b.length} bytes) is patched on ${good} dataservers, needs ${minReplicas}`), wait: true }
    return undefined
  }

  /** In the commit's transaction: these blocks are no longer in flux. */
  committing (s: WriteSession, req: CommitRequest): BlockRef[] {
    const done = req.blocks.filter(b => this.isPatched(s, b))
    for (const b of done) this.core.store.clearPendingUpdate(b.id)
    return done
  }

  /** After the commit's transaction: the patched replicas become the block's. */
  committed (s: WriteSession, done: readonly BlockRef[], replication: number): void {
    for (const b of done) {
      this.core.blocks.finishUpdate(b, replication)
      this.attempts.get(s.writeId)?.delete(b.id)
    }
  }

  /** A write session ended: its uncommitted patches are left to resolve(). */
  sessionEnded (writeId: string): void {
    this.attempts.delete(writeId)
    for (const up of this.core.blocks.pending.values()) if (up.owner === writeId) up.owner = undefined
  }

  /**
   * Settle patches whose writer is gone (run outside safe mode, so every live
   * DataServer has reported): roll back while a replica of the committed generation
   * survives; otherwise make the newest patched generation the block's.
   */
  resolve (): number {
    const { core } = this
    const { blocks, store } = core
    const isLive = (ds: string): boolean => core.registry.isLive(ds)
    let settled = 0
    for (const [id, up] of [...blocks.pending]) {
      if (up.owner !== undefined && core.sessions.peek(up.owner) !== undefined) continue
      const row = store.blockRow(id)
      if (row === undefined || row.gen !== up.base || blocks.holders(id, isLive, 'live').length > 0) {
        store.transaction(() => { store.clearPendingUpdate(id) })
        blocks.dropPending(id)
        settled++
        continue
      }
      let best: { gen: number, length: number } | undefined
      for (const [ds, r] of up.holders) if (isLive(ds) && (best === undefined || r.gen > best.gen)) best = r
      if (best === undefined) continue // nothing to read yet: wait for reports
      const b = { id, gen: best.gen, length: best.length }
      store.transaction(() => {
        store.setBlockGeneration(id, b.gen, b.length)
        store.clearPendingUpdate(id)
      })
      blocks.finishUpdate(b, blocks.expected.get(id)?.replication ?? core.cfg.replication)
      core.log.warn('uncommitted block patch kept: no replica of the committed generation is left', { block: id, gen: b.gen, length: b.length, ino: row.ino })
      settled++
    }
    return settled
  }
}
