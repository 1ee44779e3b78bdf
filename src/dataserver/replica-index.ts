// In-memory index of the replicas on disk (rebuilt from a scan of current/ at start):
// at most one finalised replica per block id, the highest generation. Corrupt replicas
// leave this index and live in a separate set until the NameServer deletes them.
import type { ReplicaTuple } from '../common/protocol.js'

export interface ReplicaInfo { gen: number, length: number }

export class ReplicaIndex {
  private readonly replicas = new Map<number, ReplicaInfo>()
  /** id -> generations held in the corrupt/ quarantine. */
  private readonly corrupt = new Map<number, Set<number>>()
  private used = 0

  get (id: number): ReplicaInfo | undefined { return this.replicas.get(id) }

  set (id: number, info: ReplicaInfo): void {
    const old = this.replicas.get(id)
    if (old !== undefined) this.used -= old.length
    this.replicas.set(id, { gen: info.gen, length: info.length })
    this.used += info.length
  }

  /** Removes the replica only if it still has generation `gen`. */
  remove (id: number, gen: number): boolean {
    const r = this.replicas.get(id)
    if (r === undefined || r.gen !== gen) return false
    this.replicas.delete(id)
    this.used -= r.length
    return true
  }

  addCorrupt (id: number, gen: number): void {
    let s = this.corrupt.get(id)
    if (s === undefined) { s = new Set(); this.corrupt.set(id, s) }
    s.add(gen)
  }

  isCorrupt (id: number, gen: number): boolean { return this.corrupt.get(id)?.has(gen) === true }

  removeCorrupt (id: number, gen: number): boolean {
    const s = this.corrupt.get(id)
    if (s === undefined || !s.delete(gen)) return false
    if (s.size === 0) this.corrupt.delete(id)
    return true
  }

  get count (): number { return this.replicas.size }
  get usedBytes (): number { return this.used }

  /** Snapshot for a full block report (corrupt replicas are never reported as held). */
  tuples (): ReplicaTuple[] {
    const out: ReplicaTuple[] = []
    for (const [id, r] of this.replicas) out.push([id, r.gen, r.length])
    return out
  }
}
