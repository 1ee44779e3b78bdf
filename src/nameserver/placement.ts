// Where new replicas go: never two replicas of a block on one DataServer, spread over
// distinct hosts while unused hosts remain, only on live DataServers with room for the
// block, preferring free space and few active streams (weighted random among the best
// few, so concurrent writers do not all pile onto the same server).
import { HissError } from '../common/errors.js'
import type { DataServerInfo } from './registry.js'

/** How many of the best-scored candidates a pick is drawn from. */
const TOP_K = 3

export interface PlacementRequest {
  /** How many targets are wanted. */
  count: number
  /** Size the block may reach (the file's block size for a new block). */
  bytes: number
  /** DataServer ids that must not be chosen (clients' exclude list, current holders). */
  exclude?: ReadonlySet<string>
  /** Hosts already holding a replica: avoided while other hosts remain. */
  usedHosts?: ReadonlySet<string>
}

export type Random = () => number

function score (ds: DataServerInfo): number {
  const free = Math.max(0, ds.remaining - ds.scheduledBytes)
  return free / (1 + ds.activeStreams)
}

/**
 * Choose up to `count` DataServers. Fewer eligible than wanted: as many as exist.
 * None: NO_DATASERVERS when no live DataServer is usable at all, ENOSPC when some are
 * live but none has room for the block.
 */
export function chooseTargets (servers: readonly DataServerInfo[], req: PlacementRequest, random: Random = Math.random): DataServerInfo[] {
  const exclude = req.exclude ?? new Set<string>()
  const live = servers.filter(d => d.state === 'live' && !exclude.has(d.id))
  // Only the free space a DataServer reported refuses it. The bytes scheduled since its
  // last heartbeat count a full block per allocation (a 4 KiB file's block, or one whose
  // pipeline failed, included), so they rank the choice (score, and those with room
  // after them first) but do not make a burst of small files, or a writer retrying a dead
  // pipeline, look like a full cluster.
  const eligible = live.filter(d => d.remaining >= req.bytes)
  if (req.count <= 0) return []
  if (eligible.length === 0) {
    if (live.length === 0) throw new HissError('NO_DATASERVERS', 'not enough live dataservers: none available')
    throw HissError.ENOSPC(`no live dataserver has ${req.bytes} bytes free`)
  }
  const usedHosts = new Set(req.usedHosts ?? [])
  const chosen: DataServerInfo[] = []
  const roomy = (d: DataServerInfo): boolean => d.remaining - d.scheduledBytes >= req.bytes
  let pool = [...eligible]
  while (chosen.length < req.count && pool.length > 0) {
    const fresh = pool.filter(d => !usedHosts.has(d.host))
    const hosts = fresh.length > 0 ? fresh : pool
    const withRoom = hosts.filter(roomy)
    const candidates = (withRoom.length > 0 ? withRoom : hosts).sort((a, b) => score(b) - score(a)).slice(0, TOP_K)
    const pick = weightedPick(candidates, random)
    chosen.push(pick)
    usedHosts.add(pick.host)
    pool = pool.filter(d => d.id !== pick.id)
  }
  return chosen
}

function weightedPick (candidates: DataServerInfo[], random: Random): DataServerInfo {
  const weights = candidates.map(d => score(d) + 1)
  const total = weights.reduce((a, b) => a + b, 0)
  let r = random() * total
  for (let i = 0; i < candidates.length; i++) {
    r -= weights[i]!
    if (r < 0) return candidates[i]!
  }
  return candidates[candidates.length - 1]!
}
