// Cluster report and fsck, as the admin endpoints (and the CLI's --json) present them.
// underReplicated: fewer live good replicas than wanted, but some; missing: none;
// corrupt: at least one corrupt replica still present; healthy: nothing missing or corrupt.
import { bareBlockRef } from '../common/block-ref.js'
import type { FsckReply, ReportReply } from '../common/protocol.js'
import type { NameServerCore } from './core.js'
import type { Identity } from './permissions.js'

export interface BlockHealth { live: number, corrupt: number }

function health (core: NameServerCore, blockId: number): BlockHealth {
  const isLive = (ds: string): boolean => core.registry.isLive(ds)
  return {
    live: core.blocks.holders(blockId, isLive, 'live').length,
    corrupt: core.blocks.holders(blockId, isLive, 'corrupt').length,
  }
}

export type Report = ReportReply & { pendingReplications: number, openWrites: number }

export function clusterReport (core: NameServerCore): Report {
  const now = core.clock.now()
  let underReplicated = 0
  let missing = 0
  let corrupt = 0
  for (const [id, exp] of core.blocks.expected) {
    const h = health(core, id)
    if (h.live === 0) missing++
    else if (h.live < exp.replication) underReplicated++
    if (h.corrupt > 0) corrupt++
  }
  const fs = core.statfs()
  return {
    dataservers: core.registry.all().map(d => ({
      id: d.id,
      address: d.address,
      state: d.state,
      capacity: d.capacity,
      used: d.used,
      remaining: d.remaining,
      blocks: core.blocks.blocksOn(d.id),
      lastHeartbeatMsAgo: Math.max(0, Math.round(now - d.lastSeen)),
    })),
    blocks: { total: core.blocks.expected.size, underReplicated, missing, corrupt, pendingDeletion: core.blocks.pendingDeletions() },
    capacity: fs.capacity,
    used: fs.used,
    remaining: fs.remaining,
    safeMode: core.safeMode.active,
    files: core.store.count('file'),
    dirs: core.store.count('dir'),
    pendingReplications: core.monitor.pendingCount(),
    openWrites: core.sessions.size,
  }
}

export function fsck (core: NameServerCore, path: string, who: Identity): FsckReply {
  const out: FsckReply = { path, files: 0, blocks: 0, underReplicated: 0, missing: 0, corrupt: 0, healthy: true, entries: [] }
  core.ns.walkFiles(path, who, (p, row) => {
    out.files++
    const entry: FsckReply['entries'][number] = { path: p, replication: row.replication, size: row.size, blocks: [] }
    for (const b of core.store.blocksOf(row.ino)) {
      out.blocks++
      const h = health(core, b.id)
      if (h.live === 0) out.missing++
      else if (h.live < row.replication) out.underReplicated++
      if (h.corrupt > 0) out.corrupt++
      const replicas: FsckReply['entries'][number]['blocks'][number]['replicas'] = []
      for (const [dsId, r] of core.blocks.replicasOf(b.id)) {
        const ds = core.registry.get(dsId)
        const s = core.blocks.stateOf(b.id, r)
        replicas.push({
          dataserver: dsId,
          address: ds?.address ?? '',
          state: ds?.state !== 'live' ? 'dead' : s === 'orphan' ? 'stale' : s,
        })
      }
      entry.blocks.push({ ...bareBlockRef(b), replicas })
    }
    out.entries.push(entry)
  })
  out.healthy = out.missing === 0 && out.corrupt === 0
  return out
}
