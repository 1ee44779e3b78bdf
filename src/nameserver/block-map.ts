// The block map: soft state, rebuilt from the namespace (what each referenced block
// should be) and from block reports (where its replicas are). A reported replica is
// judged against what its block should be: a block nobody references is an orphan, an
// older generation is stale; both are queued for deletion on their DataServer and never
// handed to clients. Replicas reported corrupt stay known (so they are not re-added as
// good by the next report) until their DataServer deletes them.
import { blockRef } from '../common/block-ref.js'
import type { BlockRef } from '../common/protocol.js'

/**
 * `zero`: the block holds only zeros (written as a hole): clients make its bytes without
 * reading a replica, and a lost one can be made again from nothing (replication monitor).
 */
export interface Expected { gen: number, length: number, replication: number, zero?: true }

export function expectedOf (b: BlockRef, replication: number): Expected {
  return b.zero === true ? { gen: b.gen, length: b.length, replication, zero: true } : { gen: b.gen, length: b.length, replication }
}
/**
 * A committed block being patched in place (see block-updates.ts): its replicas move
 * from generation `base` to one of [first, last] as the patch reaches them, before the
 * commit makes the new generation the file's. Replicas already moved are kept here, not
 * judged stale; the committed generation's replicas stay in the main map.
 */
export interface PendingUpdate {
  base: number
  first: number
  last: number
  /** writeId of the write session patching it; undefined once that session is gone. */
  owner: string | undefined
  holders: Map<string, { gen: number, length: number }>
}
export interface Replica { gen: number, length: number, corrupt: boolean }
export type ReplicaState = 'live' | 'corrupt' | 'stale' | 'orphan'

export class BlockMap {
  /** Blocks referenced by committed files. */
  readonly expected = new Map<number, Expected>()
  /** Blocks allocated to write sessions and not (yet) committed: blockId -> gen. */
  readonly writing = new Map<number, number>()
  /** blockId -> dataserver id -> replica. */
  private readonly replicas = new Map<number, Map<string, Replica>>()
  /** dataserver id -> blockIds it holds (any state). */
  private readonly byDs = new Map<string, Set<number>>()
  /** dataserver id -> blockId -> gen of replicas known corrupt. */
  private readonly corruptMarks = new Map<string, Map<number, number>>()
  /** dataserver id -> blockId -> gen waiting to be sent as a delete command. */
  private readonly deletions = new Map<string, Map<number, number>>()
  /** Committed blocks being patched in place: blockId -> update. */
  readonly pending = new Map<number, PendingUpdate>()

  /** Judge one replica of a block against what the block should be. */
  stateOf (blockId: number, r: { gen: number, length: number, corrupt?: boolean }): ReplicaState {
    const exp = this.expected.get(blockId)
    if (exp !== undefined) {
      if (r.gen !== exp.gen) return 'stale'
      if (r.corrupt === true || r.length !== exp.length) return 'corrupt'
      return 'live'
    }
    const gen = this.writing.get(blockId)
    if (gen !== undefined) {
      if (r.gen !== gen) return 'stale'
      return r.corrupt === true ? 'corrupt' : 'live'
    }
    return 'orphan'
  }

  replicasOf (blockId: number): ReadonlyMap<string, Replica> {
    return this.replicas.get(blockId) ?? new Map()
  }

  blocksOn (dsId: string): number { return this.byDs.get(dsId)?.size ?? 0 }

  /** Record a replica a DataServer reported; orphans and stale ones are queued for deletion instead. */
  addReplica (dsId: string, blockId: number, gen: number, length: number): ReplicaState | 'pending' {
    const up = this.pending.get(blockId)
    if (up !== undefined && gen >= up.first && gen <= up.last) {
      // Patched, not yet committed: it no longer holds the committed generation.
      this.removeReplica(dsId, blockId)
      up.holders.set(dsId, { gen, length })
      this.deletions.get(dsId)?.delete(blockId)
      return 'pending'
    }
    const corrupt = this.corruptMarks.get(dsId)?.get(blockId) === gen
    const state = this.stateOf(blockId, { gen, length, corrupt })
    this.removeReplica(dsId, blockId)
    if (state === 'orphan' || state === 'stale') {
      this.queueDeletion(dsId, blockId, gen)
      return state
    }
    let m = this.replicas.get(blockId)
    if (m === undefined) { m = new Map(); this.replicas.set(blockId, m) }
    m.set(dsId, { gen, length, corrupt: state === 'corrupt' })
    let s = this.byDs.get(dsId)
    if (s === undefined) { s = new Set(); this.byDs.set(dsId, s) }
    s.add(blockId)
    this.deletions.get(dsId)?.delete(blockId)
    return state
  }

  removeReplica (dsId: string, blockId: number): void {
    this.pending.get(blockId)?.holders.delete(dsId)
    const m = this.replicas.get(blockId)
    if (m !== undefined && m.delete(dsId) && m.size === 0) this.replicas.delete(blockId)
    this.byDs.get(dsId)?.delete(blockId)
  }

  /** A DataServer wrote this block afresh: an older corrupt verdict no longer applies. */
  clearCorruptMark (dsId: string, blockId: number): void {
    this.corruptMarks.get(dsId)?.delete(blockId)
  }

  /**
   * The DataServer's complete replica list replaces what we knew of it. Replicas known
   * corrupt are the exception: a DataServer quarantines them and leaves them out of its
   * reports, but they stay on its disk until we delete them or it receives a good copy.
   */
  fullReport (dsId: string, tuples: ReadonlyArray<readonly [number, number, number]>): void {
    const reported = new Set<number>()
    for (const [id] of tuples) reported.add(id)
    for (const id of [...(this.byDs.get(dsId) ?? [])]) {
      if (!reported.has(id) && this.replicas.get(id)?.get(dsId)?.corrupt !== true) this.removeReplica(dsId, id)
    }
    for (const [id, up] of this.pending) if (!reported.has(id)) up.holders.delete(dsId)
    const marks = this.corruptMarks.get(dsId)
    if (marks !== undefined) {
      for (const id of [...marks.keys()]) {
        if (!reported.has(id) && this.replicas.get(id)?.get(dsId) === undefined) marks.delete(id)
      }
    }
    // Deletions already queued stay queued unless the replica is gone.
    const del = this.deletions.get(dsId)
    if (del !== undefined) for (const id of [...del.keys()]) if (!reported.has(id)) del.delete(id)
    for (const [id, gen, length] of tuples) this.addReplica(dsId, id, gen, length)
  }

  /** A replica was found corrupt (by its DataServer or by a client). */
  markCorrupt (dsId: string, blockId: number, gen: number): void {
    const up = this.pending.get(blockId)
    if (up !== undefined && up.holders.get(dsId)?.gen === gen) {
      up.holders.delete(dsId)
      this.queueDeletion(dsId, blockId, gen)
      return
    }
    let marks = this.corruptMarks.get(dsId)
    if (marks === undefined) { marks = new Map(); this.corruptMarks.set(dsId, marks) }
    marks.set(blockId, gen)
    const r = this.replicas.get(blockId)?.get(dsId)
    if (r !== undefined && r.gen === gen) { r.corrupt = true; return }
    // Not (or no longer) in our map, yet on its disk: track it so it is shown and handled.
    const length = this.expected.get(blockId)?.length ?? 0
    if (r === undefined && this.stateOf(blockId, { gen, length, corrupt: true }) === 'corrupt') this.addReplica(dsId, blockId, gen, length)
  }

  /** Forget every replica of a DataServer (dead or unregistered). */
  dropDataServer (dsId: string): void {
    for (const up of this.pending.values()) up.holders.delete(dsId)
    for (const id of [...(this.byDs.get(dsId) ?? [])]) this.removeReplica(dsId, id)
    this.byDs.delete(dsId)
    this.deletions.delete(dsId)
  }

  queueDeletion (dsId: string, blockId: number, gen: number): void {
    let m = this.deletions.get(dsId)
    if (m === undefined) { m = new Map(); this.deletions.set(dsId, m) }
    m.set(blockId, gen)
  }

  /** Queue a known replica for deletion and stop counting it. */
  deleteReplica (dsId: string, blockId: number): void {
    const r = this.replicas.get(blockId)?.get(dsId)
    if (r === undefined) return
    this.removeReplica(dsId, blockId)
    this.queueDeletion(dsId, blockId, r.gen)
  }

  /** Up to `max` queued deletions for one DataServer, removed from the queue. */
  takeDeletions (dsId: string, max = Infinity): Array<[number, number]> {
    const m = this.deletions.get(dsId)
    if (m === undefined || m.size === 0) return []
    const out: Array<[number, number]> = []
    for (const [id, gen] of m) {
      if (out.length >= max) break
      out.push([id, gen])
    }
    for (const [id] of out) m.delete(id)
    if (m.size === 0) this.deletions.delete(dsId)
    return out
  }

  isDeletionQueued (dsId: string, blockId: number): boolean {
    return this.deletions.get(dsId)?.has(blockId) === true
  }

  pendingDeletions (): number {
    let n = 0
    for (const m of this.deletions.values()) n += m.size
    return n
  }

  /** Blocks no file references any more: every replica goes. */
  free (blockIds: Iterable<number>): void {
    for (const id of blockIds) {
      this.dropPending(id)
      this.expected.delete(id)
      this.writing.delete(id)
      for (const dsId of [...this.replicasOf(id).keys()]) this.deleteReplica(dsId, id)
    }
  }

  /** A block became (or stays) part of a committed file. */
  setExpected (b: BlockRef, replication: number): void {
    this.writing.delete(b.id)
    this.expected.set(b.id, expectedOf(b, replication))
    // Replicas recorded while writing are judged again against the committed length.
    for (const [dsId, r] of [...this.replicasOf(b.id)]) {
      if (this.stateOf(b.id, r) === 'stale') this.deleteReplica(dsId, b.id)
      else if (r.length !== b.length) r.corrupt = true
    }
  }

  /** The patch of a block is given up: its moved replicas are deleted. */
  dropPending (blockId: number): void {
    const up = this.pending.get(blockId)
    if (up === undefined) return
    this.pending.delete(blockId)
    for (const [dsId, r] of up.holders) this.queueDeletion(dsId, blockId, r.gen)
  }

  /**
   * The patched generation became the block's (commit, or recovery): the replicas that
   * hold it exactly are live, the rest (older or other attempts) stale.
   */
  finishUpdate (b: BlockRef, replication: number): void {
    const up = this.pending.get(b.id)
    this.pending.delete(b.id)
    // A patched block holds written bytes: never zeros only.
    this.setExpected(blockRef(b.id, b.gen, b.length, false), replication)
    for (const [dsId, r] of up?.holders ?? []) {
      if (r.gen === b.gen && r.length === b.length) this.addReplica(dsId, b.id, r.gen, r.length)
      else this.queueDeletion(dsId, b.id, r.gen)
    }
  }

  /** Live DataServers holding a patched generation `gen` (any, when undefined) of length `length`. */
  pendingHolders (blockId: number, isLive: (dsId: string) => boolean, gen?: number, length?: number): string[] {
    const out: string[] = []
    for (const [dsId, r] of this.pending.get(blockId)?.holders ?? []) {
      if (isLive(dsId) && (gen === undefined || r.gen === gen) && (length === undefined || r.length === length)) out.push(dsId)
    }
    return out
  }

  setReplication (blockIds: Iterable<number>, replication: number): void {
    for (const id of blockIds) {
      const e = this.expected.get(id)
      if (e !== undefined) e.replication = replication
    }
  }

  /** Replica holders of a block in a given state, restricted to live DataServers. */
  holders (blockId: number, isLive: (dsId: string) => boolean, state: ReplicaState = 'live'): string[] {
    const out: string[] = []
    for (const [dsId, r] of this.replicasOf(blockId)) {
      if (isLive(dsId) && this.stateOf(blockId, r) === state) out.push(dsId)
    }
    return out
  }
}
