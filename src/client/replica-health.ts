// Which DataServers this client found failing lately, so that its next reads try the
// other replicas first (HDFS's DFSInputStream keeps "dead nodes" per stream the same way).
// A DataServer that hangs without closing its connections (frozen, overloaded, a network
// that drops packets) costs a full client.timeout.ms per attempt; a read of a file spans
// many blocks and pieces, each a new attempt, and each tried the same server first again
// (a 20 MB read through the mount with one of three DataServers frozen took 60 s).
// A failing server is only moved to the end, never skipped: when it is the last replica
// left it is still tried. It counts as healthy again after `memoryMs`, or at once when a
// read from it succeeds.
import type { Clock } from '../common/clock.js'

/** How long a DataServer that failed a read stays at the back of the line. */
export const SUSPECT_MEMORY_MS = 30_000

export class ReplicaHealth {
  /** DataServer id -> until when (clock.now) it is tried last. */
  private readonly suspects = new Map<string, number>()

  constructor (private readonly clock: Clock, private readonly memoryMs = SUSPECT_MEMORY_MS) {}

  failed (dsId: string): void {
    this.suspects.set(dsId, this.clock.now() + this.memoryMs)
  }

  succeeded (dsId: string): void {
    this.suspects.delete(dsId)
  }

  isSuspect (dsId: string): boolean {
    const until = this.suspects.get(dsId)
    if (until === undefined) return false
    if (this.clock.now() < until) return true
    this.suspects.delete(dsId)
    return false
  }

  /** `locations` with the suspects moved to the end; otherwise in the NameServer's order. */
  order<T extends { id: string }> (locations: readonly T[]): T[] {
    if (this.suspects.size === 0) return [...locations]
    const good: T[] = []
    const bad: T[] = []
    for (const l of locations) (this.isSuspect(l.id) ? bad : good).push(l)
    return [...good, ...bad]
  }
}
