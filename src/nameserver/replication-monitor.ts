// The replication monitor: one pass over the referenced blocks, run every
// replication.interval.ms outside safe mode. Under-replicated blocks (fewest live
// replicas first) get a replicate command to one live holder, bounded per source by
// replication.max.streams; replications not confirmed within the pending timeout are
// forgotten and retried. Over-replicated blocks lose their excess, and corrupt replicas
// are deleted once the block has enough good ones again.
import type { BlockRef, DataServerRef } from '../common/protocol.js'
import type { Logger } from '../common/log.js'
import type { BlockMap } from './block-map.js'
import type { DataServerInfo, Registry } from './registry.js'
import { chooseTargets, type Random } from './placement.js'

interface PendingReplication {
  /** The DataServer copying the block; '' for a block of zeros made anew (remakeZeros). */
  source: string
  targets: Set<string>
  deadline: number
}

export interface ReplicationMonitorOptions {
  blocks: BlockMap
  registry: Registry
  /** Write token for a replication target. */
  signWrite: (b: BlockRef) => string
  maxStreams: number
  pendingTimeoutMs: number
  /**
   * How long after a delete command for a block was sent to a DataServer that it must
   * not be a replication target for that block (the delete could remove the new copy).
   */
  deleteSettleMs: number
  log: Logger
  random?: Random
}

export interface MonitorResult { replicationsQueued: number, replicasTrimmed: number, corruptDeleted: number }

export class ReplicationMonitor {
  private readonly pending = new Map<number, PendingReplication[]>()
  /** blockId -> DataServer -> until when it is not a target (a delete was just sent). */
  private readonly recentDeletes = new Map<number, Map<string, number>>()

  constructor (private readonly o: ReplicationMonitorOptions) {}

  /** Replication targets still expected to report this block. */
  pendingTargets (blockId: number): Set<string> {
    const out = new Set<string>()
    for (const p of this.pending.get(blockId) ?? []) for (const t of p.targets) out.add(t)
    return out
  }

  streamsOf (dsId: string): number {
    let n = 0
    for (const list of this.pending.values()) for (const p of list) if (p.source === dsId) n++
    return n
  }

  pendingCount (): number {
    let n = 0
    for (const list of this.pending.values()) n += list.length
    return n
  }

  /** A target reported the block: that part of the replication is done. */
  received (dsId: string, blockId: number): void {
    const list = this.pending.get(blockId)
    if (list === undefined) return
    for (const p of list) p.targets.delete(dsId)
    this.setPending(blockId, list.filter(p => p.targets.size > 0))
  }

  /** A DataServer died or left: replications from or to it will not complete. */
  dataServerGone (dsId: string): void {
    for (const [id, list] of [...this.pending]) {
      for (const p of list) p.targets.delete(dsId)
      this.setPending(id, list.filter(p => p.source !== dsId && p.targets.size > 0))
    }
  }

  forget (blockId: number): void { this.pending.delete(blockId) }

  /** Delete commands went out in a heartbeat reply to `dsId`. */
  deletionsSent (dsId: string, dels: ReadonlyArray<readonly [number, number]>, now: number): void {
    for (const [id] of dels) {
      let m = this.recentDeletes.get(id)
      if (m === undefined) { m = new Map(); this.recentDeletes.set(id, m) }
      m.set(dsId, now + this.o.deleteSettleMs)
    }
  }

  /** DataServers that must not receive a copy of this block now. */
  private blockedTargets (id: number, now: number): Set<string> {
    const out = this.pendingTargets(id)
    for (const [ds, until] of this.recentDeletes.get(id) ?? []) if (until > now) out.add(ds)
    for (const d of this.o.registry.all()) if (this.o.blocks.isDeletionQueued(d.id, id)) out.add(d.id)
    return out
  }

  /** Copies to `targets` are under way (source '' for a block of zeros made anew). */
  private addPending (blockId: number, source: string, targets: readonly DataServerInfo[], now: number): void {
    const list = this.pending.get(blockId) ?? []
    list.push({ source, targets: new Set(targets.map(t => t.id)), deadline: now + this.o.pendingTimeoutMs })
    this.pending.set(blockId, list)
  }

  private setPending (blockId: number, list: PendingReplication[]): void {
    if (list.length === 0) this.pending.delete(blockId)
    else this.pending.set(blockId, list)
  }

  run (now: number): MonitorResult {
    const { blocks, registry } = this.o
    const result: MonitorResult = { replicationsQueued: 0, replicasTrimmed: 0, corruptDeleted: 0 }
    const isLive = (ds: string): boolean => registry.isLive(ds)
    // A copy whose source no longer holds a live replica cannot complete (its replica
    // was lost, found corrupt, or was never there: a DataServer that restarted reports
    // anew): forgotten now, not at the pending timeout, so its targets are free again.
    for (const [id, list] of [...this.pending]) {
      const holders = new Set(blocks.holders(id, isLive, 'live'))
      this.setPending(id, list.filter(p => p.deadline > now && (p.source === '' || holders.has(p.source))))
    }
    for (const [id, m] of [...this.recentDeletes]) {
      for (const [ds, until] of [...m]) if (until <= now) m.delete(ds)
      if (m.size === 0) this.recentDeletes.delete(id)
    }

    const needs: Array<{ id: number, live: string[] }> = []
    const zeros: number[] = []
    for (const [id, exp] of blocks.expected) {
      if (blocks.pending.has(id)) continue // being patched in place: settled by its commit
      const live = blocks.holders(id, isLive, 'live')
      if (live.length === 0) {
        // Nothing to copy from. A block of zeros is made again where it is wanted;
        // any other block stays missing (fsck says so) until a replica comes back.
        if (exp.zero === true && this.pendingTargets(id).size < exp.replication) zeros.push(id)
        continue
      }
      const pending = this.pendingTargets(id).size
      if (live.length + pending < exp.replication) {
        needs.push({ id, live })
      } else if (live.length > exp.replication && pending === 0) {
        result.replicasTrimmed += this.trim(id, live, live.length - exp.replication)
      }
      if (live.length >= exp.replication) {
        const pendingTo = this.pendingTargets(id)
        for (const ds of blocks.holders(id, isLive, 'corrupt')) {
          if (pendingTo.has(ds)) continue // a fresh copy is on its way there and replaces it
          blocks.deleteReplica(ds, id)
          result.corruptDeleted++
        }
      }
    }

    for (const id of zeros) {
      if (this.remakeZeros(id, now)) result.replicationsQueued++
    }
    needs.sort((a, b) => a.live.length - b.live.length)
    for (const n of needs) {
      if (this.replicate(n.id, n.live, now)) result.replicationsQueued++
    }
    return result
  }

  /**
   * Every replica of an all-zero block is lost: have the chosen DataServers each store it
   * anew from nothing (a 'zero' command), as wanted as a replication is (pending until
   * they report it). Its readers never needed a replica; fsck and the report do.
   */
  private remakeZeros (id: number, now: number): boolean {
    const { blocks } = this.o
    const exp = blocks.expected.get(id)
    if (exp === undefined) return false
    const want = exp.replication - this.pendingTargets(id).size
    // A DataServer with a corrupt copy may take the new one (it replaces the quarantined copy).
    const holders = [...blocks.replicasOf(id)].filter(([, r]) => blocks.stateOf(id, r) !== 'corrupt').map(([ds]) => ds)
    const targets = this.choose(want, new Set([...holders, ...this.blockedTargets(id, now)]), new Set(), 0)
    if (targets.length === 0) return false
    const block: BlockRef = { id, gen: exp.gen, length: exp.length }
    for (const t of targets) t.queue.push({ type: 'zero', block })
    this.addPending(id, '', targets, now)
    this.o.log.info('remaking a block of zeros whose replicas are all lost', { block: id, targets: targets.map(t => t.id) })
    return true
  }

  private replicate (id: number, live: string[], now: number): boolean {
    const { blocks, registry } = this.o
    const exp = blocks.expected.get(id)
    if (exp === undefined) return false
    const sources = live
      .map(ds => registry.get(ds))
      .filter((d): d is DataServerInfo => d !== undefined && this.streamsOf(d.id) < this.o.maxStreams)
      .sort((a, b) => (this.streamsOf(a.id) - this.streamsOf(b.id)) || (a.activeStreams - b.activeStreams))
    const source = sources[0]
    if (source === undefined) return false
    const want = exp.replication - live.length - this.pendingTargets(id).size
    const blocked = this.blockedTargets(id, now)
    const holders = blocks.replicasOf(id)
    const corruptHolders = [...holders].filter(([, r]) => blocks.stateOf(id, r) === 'corrupt').map(([ds]) => ds)
    const usedHosts = new Set(live.map(ds => registry.get(ds)?.host).filter((h): h is string => h !== undefined))
    const targets = this.choose(want, new Set([...holders.keys(), ...blocked]), usedHosts, exp.length)
    if (targets.length < want && corruptHolders.length > 0) {
      // A DataServer whose copy is corrupt may take a fresh copy (it replaces the
      // quarantined one): on a small cluster it may be the only place left.
      const exclude = new Set([...holders.keys(), ...blocked, ...targets.map(t => t.id)].filter(ds => !corruptHolders.includes(ds) || blocked.has(ds)))
      for (const t of targets) { exclude.add(t.id); usedHosts.add(t.host) }
      targets.push(...this.choose(want - targets.length, exclude, usedHosts, exp.length))
    }
    if (targets.length === 0) return false // nowhere to put it now; the next pass tries again
    for (const t of targets) t.scheduledBytes += exp.length
    const block: BlockRef = { id, gen: exp.gen, length: exp.length }
    const refs: DataServerRef[] = targets.map(t => ({ id: t.id, address: t.address }))
    source.queue.push({ type: 'replicate', block, targets: refs, token: this.o.signWrite(block) })
    this.addPending(id, source.id, targets, now)
    this.o.log.debug('replication queued', { block: id, source: source.id, targets: refs.map(r => r.id) })
    return true
  }

  private choose (count: number, exclude: Set<string>, usedHosts: Set<string>, bytes: number): DataServerInfo[] {
    try {
      return chooseTargets(this.o.registry.all(), { count, bytes, exclude, usedHosts }, this.o.random)
    } catch {
      return []
    }
  }

  /** Delete `excess` replicas: first where a host holds two, then from the fullest DataServer. */
  private trim (id: number, live: string[], excess: number): number {
    const { blocks, registry } = this.o
    const infos = live.map(ds => registry.get(ds)).filter((d): d is DataServerInfo => d !== undefined)
    let trimmed = 0
    while (trimmed < excess && infos.length > 1) {
      const perHost = new Map<string, number>()
      for (const d of infos) perHost.set(d.host, (perHost.get(d.host) ?? 0) + 1)
      infos.sort((a, b) => {
        const dup = (perHost.get(b.host)! > 1 ? 1 : 0) - (perHost.get(a.host)! > 1 ? 1 : 0)
        return dup !== 0 ? dup : a.remaining - b.remaining
      })
      const victim = infos.shift()!
      blocks.deleteReplica(victim.id, id)
      trimmed++
    }
    return trimmed
  }
}
