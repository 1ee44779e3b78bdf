// What DataServers tell the NameServer (register, heartbeats, block reports) and what it
// answers (commands), plus clients' reports of corrupt replicas. Cluster authentication
// happens in the routes; here `id` is already the authenticated DataServer id.
import { HissError } from '../common/errors.js'
import type { BadBlockRequest, BlockReportRequest, DataServerCommand, HeartbeatReply, HeartbeatRequest, IncrementalRequest, RegisterReply, RegisterRequest } from '../common/protocol.js'
import type { NameServerCore } from './core.js'

/** Delete commands are capped per heartbeat so a reply stays small. */
export const MAX_DELETES_PER_HEARTBEAT = 10000

export class DataServerService {
  constructor (private readonly core: NameServerCore) {}

  register (req: RegisterRequest): RegisterReply {
    const { core } = this
    const fresh = core.registry.register(req.id, req.address, req, core.clock.now())
    // A DataServer that was dead (or never seen) starts from nothing: its full block
    // report, which it sends right away, tells what it holds.
    if (fresh) core.blocks.dropDataServer(req.id)
    core.log.info('dataserver registered', { dataserver: req.id, address: req.address, capacity: req.capacity, remaining: req.remaining })
    return { ok: true, blockReportNow: true }
  }

  heartbeat (req: HeartbeatRequest): HeartbeatReply {
    const { core } = this
    const now = core.clock.now()
    const ds = core.registry.heartbeat(req.id, req.address, req, now)
    if (ds === undefined) return { reregister: true, commands: [] }
    const commands: DataServerCommand[] = core.registry.takeQueue(ds)
    if (!core.safeMode.active) {
      const dels = core.blocks.takeDeletions(req.id, MAX_DELETES_PER_HEARTBEAT)
      if (dels.length > 0) {
        commands.push({ type: 'delete', blocks: dels })
        core.monitor.deletionsSent(req.id, dels, now)
      }
    }
    // The report promised at registration did not arrive: ask again.
    if (ds.fullReportAt === undefined && now - ds.reportAskedAt >= 2 * core.cfg['heartbeat.interval.ms']) {
      ds.reportAskedAt = now
      commands.push({ type: 'report' })
    }
    return { commands }
  }

  private requireLive (id: string): void {
    if (!this.core.registry.isLive(id)) throw HissError.EAGAIN(`dataserver ${id} is not registered: register first`)
  }

  blockReport (req: BlockReportRequest): void {
    const { core } = this
    this.requireLive(req.id)
    core.blocks.fullReport(req.id, req.blocks)
    const ds = core.registry.get(req.id)!
    ds.fullReportAt = core.clock.now()
    for (const [id] of req.blocks) core.monitor.received(req.id, id)
    core.log.debug('full block report', { dataserver: req.id, replicas: req.blocks.length })
    core.checkSafeMode()
    core.notifyReport()
  }

  incremental (req: IncrementalRequest): void {
    const { core } = this
    const { blocks } = core
    this.requireLive(req.id)
    for (const [id, gen, length] of req.received ?? []) {
      blocks.clearCorruptMark(req.id, id)
      if (blocks.addReplica(req.id, id, gen, length) === 'live') core.monitor.received(req.id, id)
    }
    for (const [id, gen] of req.deleted ?? []) {
      const r = blocks.replicasOf(id).get(req.id)
      if (r !== undefined && r.gen === gen) blocks.removeReplica(req.id, id)
      blocks.clearCorruptMark(req.id, id)
    }
    for (const [id, gen] of req.corrupt ?? []) this.corrupt(req.id, id, gen)
    if ((req.corrupt?.length ?? 0) > 0) core.log.warn('dataserver reported corrupt replicas', { dataserver: req.id, blocks: req.corrupt })
    core.notifyReport()
  }

  private corrupt (dsId: string, id: number, gen: number): void {
    const { blocks } = this.core
    if (blocks.stateOf(id, { gen, length: -1 }) === 'orphan') {
      // Nobody needs it: just delete it.
      blocks.removeReplica(dsId, id)
      blocks.queueDeletion(dsId, id, gen)
      return
    }
    blocks.markCorrupt(dsId, id, gen)
  }

  unregister (id: string): void {
    const { core } = this
    if (core.registry.markDead(id) !== undefined) {
      core.blocks.dropDataServer(id)
      core.monitor.dataServerGone(id)
      core.log.info('dataserver unregistered', { dataserver: id })
    }
  }

  /** A client read a corrupt replica (`dataserver` is an id or an address). */
  badBlock (req: BadBlockRequest): void {
    const { core } = this
    const ds = core.registry.all().find(d => d.id === req.dataserver || d.address === req.dataserver)
    if (ds === undefined) throw HissError.EINVAL(`unknown dataserver ${req.dataserver.slice(0, 100)}`)
    core.log.warn('client reported a bad replica', { dataserver: ds.id, block: req.block.id, gen: req.block.gen })
    // Clients are not trusted to condemn replicas: anyone could otherwise get good
    // replicas deleted. The DataServer verifies checksums on every read and reports its
    // own corrupt replicas (with cluster authentication); a client's report only moves
    // the replica to the end of read plans for a while.
    core.markSuspect(ds.id, req.block.id, core.cfg['heartbeat.dead.ms'])
  }
}
