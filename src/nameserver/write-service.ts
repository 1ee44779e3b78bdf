// The write path: open (lease + session), addblock (new block id, generation stamp,
// targets, write token), commit (validate the complete block list, then replace the
// file's content in one transaction) and abort. Blocks a session allocated and did not
// commit become orphans when it ends, as do blocks a commit drops from a file.
import { HissError, isHissError } from '../common/errors.js'
import type { AddBlockReply, BlockRef, CommitRequest, FileStat, WriteOpenReply } from '../common/protocol.js'
import type { NameServerCore } from './core.js'
import type { InodeRow } from './namespace-store.js'
import { DEFAULT_FILE_MODE } from './namespace.js'
import { W, X, type Identity } from './permissions.js'
import { chooseTargets } from './placement.js'
import { inoKey, pathKey, sessionState, type WriteSession } from './write-sessions.js'
import { blockRef } from '../common/block-ref.js'

export interface OpenInput {
  path?: string | undefined
  ino?: number | undefined
  clientId: string
  create?: boolean | undefined
  overwrite?: boolean | undefined
  mode?: number | undefined
  replication?: number | undefined
  blockSize?: number | undefined
}

/** How long a commit waits for DataServers to report blocks the client already stored. */
const MAX_COMMIT_WAIT_MS = 5000

export class WriteService {
  constructor (private readonly core: NameServerCore) {}

  open (req: OpenInput, who: Identity, clientHost?: string): WriteOpenReply {
    const { core } = this
    const { ns, perms, sessions, cfg } = core
    const now = core.clock.now()
    if ((req.path === undefined) === (req.ino === undefined)) throw HissError.EINVAL('give exactly one of path and ino')
    let existing: InodeRow | undefined
    let path = ''
    if (req.ino !== undefined) {
      if (req.create === true) throw HissError.EINVAL('create needs a path')
      existing = core.inodeByIno(req.ino)
    } else {
      const r = ns.resolve(req.path!, who, true)
      path = r.path
      existing = r.node
      if (existing === undefined && req.create !== true) throw HissError.ENOENT(req.path)
      if (req.create === true) {
        if (r.parent === undefined) throw HissError.EISDIR('/')
        if (existing !== undefined && existing.type === 'dir') throw HissError.EISDIR(req.path)
        if (existing !== undefined && req.overwrite !== true) throw HissError.EEXIST(req.path)
        perms.require(r.parent, who, W | X, `write permission on the directory of ${req.path}`)
        if (existing !== undefined) perms.requireSticky(r.parent, existing, who, `replacing ${req.path}`)
      }
    }
    if (req.create === true) {
      const keys = [pathKey(path)]
      if (existing !== undefined) keys.push(inoKey(existing.ino))
      const s = sessions.open({
        clientId: req.clientId,
        ino: 0,
        path,
        create: true,
        overwrite: req.overwrite === true,
        mode: req.mode ?? DEFAULT_FILE_MODE,
        replication: req.replication ?? cfg.replication,
        blockSize: req.blockSize ?? cfg['block.size'],
        who,
      }, keys, now)
      this.stored(s)
      return { writeId: s.writeId, ino: 0, replication: s.replication, blockSize: s.blockSize, blocks: [], size: 0, leaseTimeoutMs: sessions.leaseTimeoutMs }
    }
    const node = existing!
    if (node.type === 'dir') throw HissError.EISDIR(req.path ?? `inode ${node.ino}`)
    if (node.type !== 'file') throw HissError.EINVAL('not a regular file')
    perms.require(node, who, W, `write permission on ${req.path ?? `inode ${node.ino}`}`)
    const s = sessions.open({
      clientId: req.clientId,
      ino: node.ino,
      path,
      create: false,
      overwrite: req.overwrite === true,
      mode: node.mode,
      replication: node.replication,
      blockSize: node.block_size,
      who,
    }, [inoKey(node.ino)], now)
    this.stored(s)
    const keep = req.overwrite !== true
    return {
      writeId: s.writeId,
      ino: node.ino,
      replication: node.replication,
      blockSize: node.block_size,
      blocks: keep ? core.locate(core.store.blocksOf(node.ino), clientHost) : [],
      size: keep ? node.size : 0,
      leaseTimeoutMs: sessions.leaseTimeoutMs,
    }
  }

  addBlock (writeId: string, exclude: readonly string[] = []): AddBlockReply {
    const { core } = this
    const s = core.sessions.use(writeId, core.clock.now())
    const excluded = new Set<string>()
    for (const d of core.registry.all()) if (exclude.includes(d.id) || exclude.includes(d.address)) excluded.add(d.id)
    let targets
    try {
      targets = chooseTargets(core.registry.all(), { count: s.replication, bytes: s.blockSize, exclude: excluded }, core.random)
    } catch (err) {
      // Right after a start the DataServers are still registering (they do at their next
      // heartbeat): a writer is told to retry (SAFE_MODE), as HDFS does, not that the
      // cluster has none.
      if (isHissError(err) && err.code === 'NO_DATASERVERS' && excluded.size === 0 && core.safeMode.active) {
        throw new HissError('SAFE_MODE', 'nameserver is in safe mode: no DataServer has registered since it started, try again')
      }
      throw err
    }
    // Lazy: the record of the allocation must survive a kill -9 (it is in the WAL once
    // the batch commits) but need not hold this reply for an fsync, which under a heavy
    // write load on the same disk can take long (measured: r3 dd 185 -> ~100 MB/s when
    // every addblock waited for one).
    const block = core.store.lazyTransaction(() => {
      const b = core.store.allocateBlock()
      core.store.putAlloc(s.writeId, b)
      return b
    })
    s.allocated.set(block.id, block.gen)
    core.blocks.writing.set(block.id, block.gen)
    for (const t of targets) t.scheduledBytes += s.blockSize
    return { block, targets: targets.map(t => ({ id: t.id, address: t.address })), token: core.signToken(block, 'w') }
  }

  /**
   * Check the new block list. Returns undefined when valid, or the error plus whether
   * waiting for more replica reports could make it valid.
   */
  private validate (s: WriteSession, req: CommitRequest): { err: HissError, wait: boolean } | undefined {
    const { core } = this
    const current = s.ino !== 0 && core.store.get(s.ino) !== undefined ? core.store.blocksOf(s.ino) : []
    const byId = new Map(current.map(b => [b.id, b]))
    const minReplicas = Math.min(core.cfg['replication.min'], s.replication)
    const seen = new Set<number>()
    let sum = 0
    let short: HissError | undefined
    for (const b of req.blocks) {
      if (seen.has(b.id)) return { err: HissError.EINVAL(`block ${b.id} listed twice`), wait: false }
      seen.add(b.id)
      sum += b.length
      const cur = byId.get(b.id)
      if (cur !== undefined) {
        if (cur.gen !== b.gen && core.updates.isPatched(s, b)) {
          const bad = core.updates.check(s, b, cur.length, minReplicas)
          if (bad !== undefined && !bad.wait) return bad
          if (bad !== undefined) short ??= bad.err
          continue
        }
        if (cur.gen !== b.gen || cur.length !== b.length) return { err: HissError.EINVAL(`block ${b.id} does not match the file's content`), wait: false }
        continue
      }
      const gen = s.allocated.get(b.id)
      if (gen === undefined || gen !== b.gen) return { err: HissError.EINVAL(`block ${b.id} is neither in the file nor allocated to this write`), wait: false }
      if (b.length > s.blockSize) return { err: HissError.EINVAL(`block ${b.id} is longer than the block size`), wait: false }
      let good = 0
      for (const [dsId, r] of core.blocks.replicasOf(b.id)) {
        if (core.registry.isLive(dsId) && r.gen === b.gen && r.length === b.length && !r.corrupt) good++
      }
      if (good < minReplicas) short ??= HissError.EINVAL(`block ${b.id} (${b.length} bytes) is stored on ${good} dataservers, needs ${minReplicas}`)
    }
    if (sum !== req.size) return { err: HissError.EINVAL(`size ${req.size} is not the sum of the block lengths (${sum})`), wait: false }
    return short === undefined ? undefined : { err: short, wait: true }
  }

  async commit (req: CommitRequest): Promise<FileStat> {
    const { core } = this
    let s = core.sessions.use(req.writeId, core.clock.now())
    // A DataServer may answer the client a moment before its report reaches us: wait a
    // little for the reports instead of failing the commit.
    const deadline = core.clock.now() + Math.min(MAX_COMMIT_WAIT_MS, core.cfg['client.timeout.ms'] / 2)
    for (;;) {
      const bad = this.validate(s, req)
      if (bad === undefined) break
      if (!bad.wait || core.clock.now() >= deadline) throw bad.err
      await core.nextReport(deadline - core.clock.now())
      if (core.isClosed) throw HissError.EAGAIN('nameserver is shutting down')
      s = core.sessions.use(req.writeId, core.clock.now())
    }
    return this.apply(s, req)
  }

  private apply (s: WriteSession, req: CommitRequest): FileStat {
    const { core } = this
    const { ns, store, perms } = core
    const now = ns.now()
    const mtime = req.mtimeNs ?? now
    let freed: BlockRef[] = []
    let patched: BlockRef[] = []
    let row: InodeRow | undefined
    /** The block list as stored, zero flags decided (withZeroFlags): the block map takes the same. */
    let stored: BlockRef[] = []
    if (s.ino === 0) {
      row = store.transaction(() => {
        // The parent must still exist; what is at the path now decides EEXIST/replace.
        const r = ns.resolve(s.path, s.who, true)
        if (r.parent === undefined) throw HissError.EISDIR(s.path)
        const parent = r.parent
        const victim = r.node
        if (victim !== undefined) {
          if (victim.type === 'dir') throw HissError.EISDIR(s.path)
          if (!s.overwrite) throw HissError.EEXIST(s.path)
        }
        perms.require(parent, s.who, W | X, `write permission on the directory of ${s.path}`)
        if (victim !== undefined) perms.requireSticky(parent, victim, s.who, `replacing ${s.path}`)
        if (victim !== undefined) freed = store.remove(victim.ino)
        const created = store.insert(ns.newRow(parent, r.name, 'file', s.mode, s.who, { replication: s.replication, block_size: s.blockSize }))
        stored = this.withZeroFlags(s, req.blocks, [])
        store.setContent(created.ino, stored, req.size, mtime, now)
        this.applyOwnership(created.ino, req, s, now)
        store.touchDir(parent.ino, now)
        store.deleteAllocs(req.blocks.map(b => b.id))
        return store.get(created.ino)!
      })
      s.ino = row.ino
      s.create = false
      core.sessions.addKeys(s, [inoKey(row.ino)])
      core.sessions.dropKey(s, pathKey(s.path))
      if (req.keepOpen === true) this.stored(s)
    } else {
      const ino = s.ino
      const old = store.get(ino)
      if (old !== undefined) {
        const oldBlocks = store.blocksOf(ino)
        row = store.transaction(() => {
          stored = this.withZeroFlags(s, req.blocks, oldBlocks)
          store.setContent(ino, stored, req.size, mtime, now)
          this.applyOwnership(ino, req, s, now)
          store.deleteAllocs(req.blocks.map(b => b.id))
          patched = core.updates.committing(s, req)
          return store.get(ino)!
        })
        const keep = new Set(req.blocks.map(b => b.id))
        freed = oldBlocks.filter(b => !keep.has(b.id))
      }
    }
    if (row === undefined) {
      // The file was deleted while being written: the commit succeeds, nothing shows.
      this.finish(s, req.keepOpen === true)
      return { ino: s.ino, type: 'file', mode: s.mode, uid: s.who.uid, gid: s.who.gids[0] ?? 0, size: req.size, nlink: 0, atimeNs: mtime, mtimeNs: mtime, ctimeNs: now, replication: s.replication, blockSize: s.blockSize }
    }
    for (const b of stored) {
      if (s.allocated.delete(b.id)) core.blocks.setExpected(b, row.replication)
    }
    core.updates.committed(s, patched, row.replication)
    if (freed.length > 0) core.freeBlocks(freed.map(b => b.id))
    this.finish(s, req.keepOpen === true)
    return ns.toStat(row)
  }

  /**
   * A commit's mode/uid/gid (a chmod or chown of the open file that its writer deferred
   * to the commit): applied with the same rules as setattr, for the committing identity,
   * inside the commit's transaction, so an EPERM leaves the file as it was.
   */
  private applyOwnership (ino: number, req: CommitRequest, s: WriteSession, now: string): void {
    if (req.mode === undefined && req.uid === undefined && req.gid === undefined) return
    const { ns, store } = this.core
    const row = store.get(ino)!
    const next = ns.withOwnership(row, s.who, req, s.path)
    if (next.mode !== row.mode || next.uid !== row.uid || next.gid !== row.gid) store.setAttrs({ ...next, ctime: now })
  }

  private finish (s: WriteSession, keepOpen: boolean): void {
    if (!keepOpen) this.end(s)
  }

  /**
   * Store a session as it now is (a restart brings it back); undone if that fails. Lazy
   * (see addBlock): a power loss may lose it, and its writer then gets LEASE_EXPIRED.
   */
  private stored (s: WriteSession): void {
    try {
      this.core.store.lazyTransaction(() => { this.core.store.putSession(s.writeId, sessionState(s)) })
    } catch (err) {
      // Nothing of it reached the disk; it has no blocks yet, or keeps its stored row.
      this.core.sessions.remove(s.writeId)
      this.core.updates.sessionEnded(s.writeId)
      throw err
    }
  }

  /**
   * A commit's block list with each block's zero flag (BlockRef.zero) as the NameServer
   * decides it: a block the file already holds at this generation keeps its stored flag
   * (whatever the writer says of it); a block this write stored takes the writer's; a
   * patched block (a new generation of a block of the file) holds written bytes: none.
   */
  private withZeroFlags (s: WriteSession, blocks: readonly BlockRef[], current: readonly BlockRef[]): BlockRef[] {
    const held = new Map(current.map(b => [b.id, b]))
    return blocks.map(b => {
      const old = held.get(b.id)
      const zero = old !== undefined && old.gen === b.gen ? old.zero === true : s.allocated.get(b.id) === b.gen && b.zero === true
      return blockRef(b.id, b.gen, b.length, zero)
    })
  }

  /** End a session: its lease goes, its uncommitted blocks become orphans. */
  end (s: WriteSession): void {
    this.core.sessions.remove(s.writeId)
    this.core.store.lazyTransaction(() => { this.core.store.deleteSession(s.writeId) })
    this.core.updates.sessionEnded(s.writeId)
    if (s.allocated.size > 0) this.core.freeBlocks(s.allocated.keys())
    s.allocated.clear()
  }

  abort (writeId: string): void {
    const s = this.core.sessions.peek(writeId)
    if (s !== undefined) this.end(s)
  }

  renew (clientId: string): number {
    return this.core.sessions.renew(clientId, this.core.clock.now())
  }
}
