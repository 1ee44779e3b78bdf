// The NameServer's state and its periodic work, without any HTTP: the durable
// namespace, the soft-state block map rebuilt from it, the DataServer registry, write
// sessions, safe mode and the replication monitor. Routes call into this; unit tests
// drive it directly with a ManualClock.
import type { Clock } from '../common/clock.js'
import type { HissConfig } from '../common/config.js'
import { requireSecret } from '../common/config.js'
import { HissError } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import { nowNs } from '../common/paths.js'
import { signBlockToken, type BlockAccess } from '../common/auth.js'
import type { BlockRef, BlocksReply, DataServerRef, LocatedBlock, PingReply, StatfsReply } from '../common/protocol.js'
import { PROTOCOL_VERSION } from '../common/protocol.js'
import { BlockMap, expectedOf } from './block-map.js'
import { NamespaceStore, type InodeRow, type StoreOptions } from './namespace-store.js'
import { Namespace } from './namespace.js'
import { Permissions, R, type Identity } from './permissions.js'
import type { Random } from './placement.js'
import { Registry } from './registry.js'
import { ReplicationMonitor } from './replication-monitor.js'
import { SafeMode } from './safe-mode.js'
import { WriteSessions } from './write-sessions.js'
import { WriteService } from './write-service.js'
import { DataServerService } from './ds-service.js'
import { BlockUpdates } from './block-updates.js'
import { repeat } from './loops.js'
import { bareBlockRef } from '../common/block-ref.js'

export interface CoreDeps {
  clock: Clock
  log: Logger
  random?: Random
  /** The namespace's WAL fsync (tests hold or fail it); fs.fdatasync by default. */
  fdatasync?: StoreOptions['fdatasync']
}

export class NameServerCore {
  readonly cfg: HissConfig
  readonly clock: Clock
  readonly log: Logger
  readonly random: Random
  readonly secret: string
  readonly store: NamespaceStore
  readonly ns: Namespace
  readonly perms: Permissions
  readonly blocks = new BlockMap()
  readonly registry: Registry
  readonly sessions: WriteSessions
  readonly safeMode: SafeMode
  readonly monitor: ReplicationMonitor
  readonly writes: WriteService
  readonly dataservers: DataServerService
  readonly updates: BlockUpdates
  private stopLoops: Array<() => void> = []
  private closed = false
  /** Resolvers waiting for the next replica report (commits waiting for their blocks). */
  private reportWaiters = new Set<() => void>()

  constructor (cfg: HissConfig, deps: CoreDeps) {
    const rootDir = cfg['nameserver.root.dir']
    if (rootDir === undefined) throw new HissError('CONFIG', 'missing required config key "nameserver.root.dir"')
    this.cfg = cfg
    this.clock = deps.clock
    this.log = deps.log
    this.random = deps.random ?? Math.random
    this.secret = requireSecret(cfg)
    this.perms = new Permissions({
      enabled: cfg['permissions.enabled'],
      superuserUid: cfg['permissions.superuser.uid'],
      supergroupGid: cfg['permissions.supergroup.gid'],
    })
    this.store = new NamespaceStore(rootDir, {
      sync: cfg['nameserver.sync'],
      nowNs: nowNs(this.clock.wallNow()),
      defaultReplication: cfg.replication,
      defaultBlockSize: cfg['block.size'],
      ...(deps.fdatasync === undefined ? {} : { fdatasync: deps.fdatasync }),
      // A failed group commit leaves freed blocks and sessions in memory that the disk
      // does not have: stop (fail-stop, as an HDFS NameNode does when it cannot sync its
      // edit log); a restart rebuilds everything from the durable namespace.
      onFatal: (err) => {
        this.log.error('namespace commit failed; stopping the nameserver', { err })
        process.exit(1)
      },
    })
    this.ns = new Namespace(this.store, {
      perms: this.perms,
      clock: this.clock,
      defaultReplication: cfg.replication,
      defaultBlockSize: cfg['block.size'],
      hooks: {
        blocksFreed: blocks => { this.freeBlocks(blocks.map(b => b.id)) },
        replicationChanged: (blocks, rep) => { this.blocks.setReplication(blocks.map(b => b.id), rep) },
      },
    })
    for (const b of this.store.allBlocks()) this.blocks.expected.set(b.id, expectedOf(b, b.replication))
    this.registry = new Registry(cfg['heartbeat.dead.ms'])
    this.sessions = new WriteSessions(cfg['lease.timeout.ms'])
    this.safeMode = new SafeMode({ threshold: cfg['safemode.threshold'], extensionMs: cfg['safemode.extension.ms'] })
    this.monitor = new ReplicationMonitor({
      blocks: this.blocks,
      registry: this.registry,
      signWrite: b => this.signToken(b, 'w'),
      maxStreams: cfg['replication.max.streams'],
      pendingTimeoutMs: cfg['replication.pending.timeout.ms'],
      deleteSettleMs: 2 * cfg['heartbeat.interval.ms'],
      log: this.log,
      random: this.random,
    })
    this.writes = new WriteService(this)
    this.dataservers = new DataServerService(this)
    this.updates = new BlockUpdates(this)
    // Writes in flight when the last run stopped: their sessions come back with a fresh
    // lease, and their uncommitted blocks are being written, not orphans.
    for (const st of this.store.storedSessions()) {
      const s = this.sessions.restore(st.writeId, st.state, st.allocs, this.clock.now())
      for (const [id, gen] of s.allocated) this.blocks.writing.set(id, gen)
    }
    // After the sessions: a patch in flight stays with its session when that came back.
    this.updates.load()
    this.checkSafeMode()
  }

  get isClosed (): boolean { return this.closed }

  close (): void {
    if (this.closed) return
    this.closed = true
    this.stopTimers()
    for (const w of this.reportWaiters) w()
    this.reportWaiters.clear()
    this.store.close()
  }

  // --- periodic work -------------------------------------------------------

  startTimers (): void {
    if (this.stopLoops.length > 0) return
    const cfg = this.cfg
    const onError = (what: string) => (err: unknown): void => {
      if (err instanceof HissError) this.log.warn(`${what} failed`, { err })
      else this.log.error(`${what} crashed`, { err: err as Error })
    }
    this.stopLoops = [
      repeat(this.clock, Math.min(cfg['heartbeat.interval.ms'], cfg['heartbeat.dead.ms']), () => { this.checkLiveness() }, onError('liveness check')),
      repeat(this.clock, Math.max(1, Math.min(1000, Math.floor(cfg['lease.timeout.ms'] / 4))), () => { this.checkLeases() }, onError('lease check')),
      repeat(this.clock, cfg['replication.interval.ms'], () => { this.runReplication() }, onError('replication monitor')),
      repeat(this.clock, Math.min(1000, cfg['heartbeat.interval.ms']), () => { this.checkSafeMode() }, onError('safe mode check')),
    ]
  }

  stopTimers (): void {
    for (const stop of this.stopLoops) stop()
    this.stopLoops = []
  }

  /** Mark DataServers without a recent heartbeat dead; their replicas stop counting. */
  checkLiveness (): string[] {
    const died = this.registry.expire(this.clock.now())
    for (const ds of died) {
      this.blocks.dropDataServer(ds.id)
      this.monitor.dataServerGone(ds.id)
      this.log.warn('dataserver dead: no heartbeat', { dataserver: ds.id, address: ds.address, silentMs: Math.round(this.clock.now() - ds.lastSeen) })
    }
    return died.map(d => d.id)
  }

  /** Abort write sessions whose lease lapsed; their new blocks become orphans. */
  checkLeases (): number {
    const lapsed = this.sessions.lapsed(this.clock.now())
    for (const s of lapsed) {
      this.writes.end(s)
      this.log.info('write lease expired', { writeId: s.writeId, clientId: s.clientId, ino: s.ino, path: s.ino === 0 ? s.path : undefined })
    }
    return lapsed.length
  }

  runReplication (): void {
    if (this.safeMode.active) return
    this.updates.resolve()
    const r = this.monitor.run(this.clock.now())
    if (r.replicationsQueued + r.replicasTrimmed + r.corruptDeleted > 0) this.log.debug('replication pass', { ...r })
  }

  /** Blocks with at least one live good replica. */
  safeBlockCount (): number {
    let n = 0
    const isLive = (ds: string): boolean => this.registry.isLive(ds)
    for (const id of this.blocks.expected.keys()) {
      // A block caught mid-patch counts by its patched replicas too (resolved later).
      if (this.blocks.holders(id, isLive).length > 0 || this.blocks.pendingHolders(id, isLive).length > 0) n++
    }
    return n
  }

  checkSafeMode (): void {
    if (!this.safeMode.active) return
    const total = this.blocks.expected.size
    const safe = total === 0 ? 0 : this.safeBlockCount()
    if (this.safeMode.update(safe, total, this.clock.now())) this.log.info('left safe mode', { blocks: total, reported: safe })
  }

  // --- helpers shared by the services ----------------------------------------

  signToken (b: { id: number, gen: number }, a: BlockAccess): string {
    return signBlockToken(this.secret, { b: b.id, g: b.gen, a, e: this.clock.wallNow() + this.cfg['token.lifetime.ms'] })
  }

  /** Blocks no file or write references any more: all their replicas are deleted. */
  freeBlocks (ids: Iterable<number>): void {
    const list = [...ids]
    this.blocks.free(list)
    for (const id of list) this.monitor.forget(id)
  }

  notifyReport (): void {
    const waiters = [...this.reportWaiters]
    this.reportWaiters.clear()
    for (const w of waiters) w()
  }

  /** Resolves at the next replica report, or after `ms`. */
  nextReport (ms: number): Promise<void> {
    return new Promise(resolve => {
      const done = (): void => { this.clock.clearTimeout(timer); this.reportWaiters.delete(done); resolve() }
      const timer = this.clock.setTimeout(done, Math.max(0, ms))
      this.reportWaiters.add(done)
    })
  }

  /** Client reports of bad replicas: `${dsId}/${blockId}` -> monotonic expiry. Bounded. */
  private readonly suspects = new Map<string, number>()

  markSuspect (dsId: string, blockId: number, forMs: number): void {
    if (this.suspects.size >= 10000) this.suspects.clear()
    this.suspects.set(`${dsId}/${blockId}`, this.clock.now() + forMs)
  }

  private isSuspect (dsId: string, blockId: number): boolean {
    const until = this.suspects.get(`${dsId}/${blockId}`)
    if (until === undefined) return false
    if (until < this.clock.now()) { this.suspects.delete(`${dsId}/${blockId}`); return false }
    return true
  }

  /**
   * Live good replicas of a block, best first: the caller's own host, then the least
   * loaded, then a choice that differs from block to block (rendezvous hash of block and
   * DataServer). Without that last rule equal replicas kept the order their reports
   * arrived in, so every block of a file, and every reader, went to the same DataServer.
   */
  locations (blockId: number, clientHost?: string): DataServerRef[] {
    const isLive = (ds: string): boolean => this.registry.isLive(ds)
    return this.blocks.holders(blockId, isLive)
      .map(id => ({ d: this.registry.get(id)!, rank: spreadRank(blockId, id) }))
      .sort(({ d: a, rank: ra }, { d: b, rank: rb }) => {
        // Replicas a client reported bad go last (they may be fine: only the DataServer
        // itself can declare its replica corrupt, see DataServerService.badBlock).
        const suspect = (this.isSuspect(a.id, blockId) ? 1 : 0) - (this.isSuspect(b.id, blockId) ? 1 : 0)
        if (suspect !== 0) return suspect
        const local = (b.host === clientHost ? 1 : 0) - (a.host === clientHost ? 1 : 0)
        if (local !== 0) return local
        return a.activeStreams !== b.activeStreams ? a.activeStreams - b.activeStreams : ra - rb
      })
      .map(({ d }) => ({ id: d.id, address: d.address }))
  }

  locate (blocks: readonly BlockRef[], clientHost?: string, range?: { offset: number, length: number }): LocatedBlock[] {
    const out: LocatedBlock[] = []
    let offset = 0
    for (const b of blocks) {
      const start = offset
      offset += b.length
      if (range !== undefined && (start + b.length <= range.offset || start >= range.offset + range.length)) continue
      out.push({ ...bareBlockRef(b), offset: start, locations: this.locations(b.id, clientHost), token: this.signToken(b, 'r') })
    }
    return out
  }

  // --- client reads and cluster facts -----------------------------------------

  /** The inode a read plan or an open-by-inode refers to. */
  inodeByIno (ino: number): InodeRow {
    const row = this.store.get(ino)
    if (row === undefined) throw HissError.ENOENT(`inode ${ino}`)
    return row
  }

  readPlan (target: { path: string } | { ino: number }, who: Identity, range?: { offset: number, length: number }, clientHost?: string): BlocksReply {
    const row = 'path' in target ? this.ns.lookup(target.path, who, true) : this.inodeByIno(target.ino)
    if (row.type === 'dir') throw HissError.EISDIR('path' in target ? target.path : `inode ${row.ino}`)
    if (row.type !== 'file') throw HissError.EINVAL('not a regular file')
    this.perms.require(row, who, R, 'read permission')
    return { stat: this.ns.toStat(row), blocks: this.locate(this.store.blocksOf(row.ino), clientHost, range) }
  }

  ping (): PingReply {
    return {
      ok: true,
      version: PROTOCOL_VERSION,
      safeMode: this.safeMode.active,
      blockSize: this.cfg['block.size'],
      replication: this.cfg.replication,
      liveDataServers: this.registry.live().length,
    }
  }

  statfs (): StatfsReply {
    let capacity = 0
    let used = 0
    let remaining = 0
    for (const d of this.registry.live()) { capacity += d.capacity; used += d.used; remaining += d.remaining }
    return { capacity, used, remaining, files: this.store.count(), blockSize: this.cfg['block.size'] }
  }
}

/** A pseudo-random rank of DataServer `dsId` for block `blockId` (32-bit FNV-1a). */
function spreadRank (blockId: number, dsId: string): number {
  let h = 0x811c9dc5
  const mix = (c: number): void => { h ^= c; h = Math.imul(h, 0x01000193) >>> 0 }
  const key = `${blockId}/${dsId}`
  for (let i = 0; i < key.length; i++) mix(key.charCodeAt(i))
  return h
}
