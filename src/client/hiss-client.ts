// The client library: the only code that speaks the wire protocol. The CLI and the FUSE
// adapter use HissFs through this class; everything it throws is a HissError.
import { randomUUID } from 'node:crypto'
import { hostname, tmpdir } from 'node:os'
import type { Readable } from 'node:stream'
import { SystemClock, type Clock } from '../common/clock.js'
import type { HissConfig } from '../common/config.js'
import { isHissError } from '../common/errors.js'
import { createLogger, type Logger } from '../common/log.js'
import { HEADER_TOKEN, type AddBlockReply, type DirEntry, type FileStat, type FsckReply, type ListReply, type LocatedBlock, type PingReply, type ReportReply, type StatfsReply, type WriteOpenReply } from '../common/protocol.js'
import { fetchRange } from './block-fetch.js'
import { BlockReadStream, type BlockReadOptions } from './block-reader.js'
import { FileReadStream, planRead } from './file-reader.js'
import { putFile } from './file-writer.js'
import { HttpClient } from './http.js'
import { processIdentity } from './identity.js'
import { LeaseRenewer } from './lease-renewer.js'
import { NameServerClient, type DuReply, type InodeTarget } from './nameserver-client.js'
import { ReplicaHealth } from './replica-health.js'
import { HissWriteSession } from './write-session.js'
import { zeroPieces, zeroStream } from './zero-block.js'
import type { HissFs, Identity, PutOptions, ReadOptions, WriteGrant } from './types.js'

export interface CreateClientOptions {
  /** Default: the process's uid and groups. */
  identity?: Identity
  clock?: Clock
  log?: Logger
  /** Identifies this client's leases; default: host-pid-random. */
  clientId?: string
  /**
   * Where `put` spools the block in flight so a failed pipeline can be retried from
   * disk (default: the OS temp dir); false disables spooling.
   */
  spoolDir?: string | false
}

export interface OpenWriteOptions {
  create?: boolean
  overwrite?: boolean
  mode?: number
  replication?: number
  blockSize?: number
}

export class HissClient implements HissFs {
  readonly clientId: string
  readonly identity: Identity
  private readonly http: HttpClient
  private readonly ns: NameServerClient
  private readonly renewer: LeaseRenewer
  private readonly clock: Clock
  private readonly log: Logger
  /** DataServers that failed our reads lately: tried last (replica-health.ts). */
  private readonly health: ReplicaHealth
  private closed = false

  constructor (private readonly cfg: HissConfig, private readonly opts: CreateClientOptions = {}) {
    this.clock = opts.clock ?? new SystemClock()
    this.health = new ReplicaHealth(this.clock)
    this.log = opts.log ?? createLogger('client', cfg['log.level'])
    this.identity = opts.identity ?? processIdentity()
    this.clientId = opts.clientId ?? `${hostname()}-${process.pid}-${randomUUID()}`
    this.http = new HttpClient(cfg, this.clock)
    this.ns = new NameServerClient({
      http: this.http,
      address: cfg['nameserver.address'],
      identity: this.identity,
      clock: this.clock,
      retryMs: cfg['client.retry.ms'],
      log: this.log,
    })
    this.renewer = new LeaseRenewer(async () => {
      const open = this.renewer.openWrites
      const renewed = await this.ns.renew(this.clientId)
      // Fewer renewed than open: the NameServer dropped some lease (expired or restarted);
      // those writes will fail at their next call with the NameServer's own error.
      if (renewed < open) this.log.warn('some write leases were not renewed', { open, renewed })
    }, this.clock, this.log.child('lease'))
  }

  ping (): Promise<PingReply> { return this.ns.ping() }
  stat (path: string, opts: { nofollow?: boolean } = {}): Promise<FileStat> { return this.ns.stat(path, opts.nofollow === true) }

  async exists (path: string): Promise<boolean> {
    try {
      await this.ns.stat(path)
      return true
    } catch (err) {
      if (isHissError(err) && err.code === 'ENOENT') return false
      throw err
    }
  }

  list (path: string): Promise<DirEntry[]> { return this.ns.list(path) }
  listPage (path: string, opts: { limit: number, after?: string, from?: string }): Promise<ListReply> { return this.ns.listPage(path, opts) }
  mkdir (path: string, opts: { mode?: number, parents?: boolean } = {}): Promise<FileStat> { return this.ns.mkdir({ path, ...opts }) }
  create (path: string, opts: { mode?: number, exclusive?: boolean } = {}): Promise<FileStat> { return this.ns.create({ path, ...opts }) }

  async createOpen (path: string, opts: { mode?: number, leaseHolder: string }): Promise<{ stat: FileStat, grant?: WriteGrant }> {
    const r = await this.ns.createOpen({
      path,
      exclusive: true,
      ...(opts.mode === undefined ? {} : { mode: opts.mode }),
      openWrite: { clientId: opts.leaseHolder, allocate: true },
    })
    if (r.write === undefined) return { stat: r.stat }
    return { stat: r.stat, grant: { reply: r.write, ...(r.block === undefined ? {} : { block: r.block }) } }
  }

  adoptWrite (grant: WriteGrant): HissWriteSession {
    return this.session(grant.reply, grant.block)
  }

  async delete (path: string, opts: { recursive?: boolean, parent?: boolean } = {}): Promise<{ parent?: FileStat }> {
    const r = await this.ns.delete({ path, ...opts })
    return r.parent === undefined ? {} : { parent: r.parent }
  }
  rename (src: string, dst: string, opts: { noReplace?: boolean } = {}): Promise<FileStat> { return this.ns.rename({ src, dst, ...opts }) }
  symlink (target: string, path: string): Promise<FileStat> { return this.ns.symlink({ path, target }) }
  readlink (path: string): Promise<string> { return this.ns.readlink(path) }

  setattr (path: string, attrs: { mode?: number, uid?: number, gid?: number, atimeNs?: string, mtimeNs?: string, nofollow?: boolean }): Promise<FileStat> {
    return this.ns.setattr({ path, ...attrs })
  }

  setReplication (path: string, replication: number): Promise<number> { return this.ns.setrep({ path, replication }) }
  statfs (): Promise<StatfsReply> { return this.ns.statfs() }
  du (path: string): Promise<DuReply> { return this.ns.du(path) }
  report (): Promise<ReportReply> { return this.ns.report() }
  fsck (path = '/'): Promise<FsckReply> { return this.ns.fsck(path) }

  getBlocks (target: InodeTarget, range?: { offset: number, length: number }): Promise<{ stat: FileStat, blocks: LocatedBlock[] }> {
    return this.ns.blocks(target, range)
  }

  readBlock (block: LocatedBlock, offset: number, length: number, opts: BlockReadOptions = {}): Readable {
    if (block.zero === true) return zeroStream(length)
    return new BlockReadStream({ http: this.http, ns: this.ns, clock: this.clock, log: this.log, retryMs: this.cfg['client.retry.ms'], health: this.health }, block, offset, length, opts)
  }

  /**
   * A direct read over a plain socket into a reused buffer (block-fetch.ts), moving on
   * to the next replica only when a connection is refused (nothing was sent). On any
   * other failure (a reply cut short by a checksum error, a refused token, a timeout)
   * and over https, what is still missing comes through readBlock from the first byte
   * not yet delivered: it fails over, refreshes locations and tokens, and reports bad
   * replicas, as for every other reader.
   */
  async readBlockInto (block: LocatedBlock, offset: number, length: number, sink: (bytes: Buffer) => void, opts: BlockReadOptions = {}): Promise<void> {
    if (block.zero === true) {
      for (const piece of zeroPieces(length)) sink(piece)
      return
    }
    let done = 0
    let sinkErr: { err: unknown } | undefined
    const take = (bytes: Buffer): void => {
      try {
        sink(bytes)
      } catch (err) {
        sinkErr = { err }
        throw err
      }
      done += bytes.length
    }
    if (this.http.scheme === 'http') {
      for (const loc of this.health.order(block.locations)) {
        if (done >= length) return
        const before = done
        try {
          const query = new URLSearchParams({ gen: String(block.gen), offset: String(offset + done), length: String(length - done) })
          await fetchRange({ address: loc.address, path: `/v1/blocks/${block.id}?${query.toString()}`, headers: { [HEADER_TOKEN]: block.token }, length: length - done, timeoutMs: this.http.timeoutMs }, take)
          this.health.succeeded(loc.id)
          return
        } catch (err) {
          if (sinkErr !== undefined) throw sinkErr.err
          this.log.debug('direct replica read failed', { block: block.id, dataserver: loc.id, delivered: done, err })
          // Nothing at all from it (refused, no answer in time, an error reply other than
          // the token's): the fallback below and later reads try the other replicas first.
          // A reply cut short is left to the fallback, which tries it again and reports it.
          if (done === before && !(isHissError(err) && err.code === 'BAD_TOKEN')) this.health.failed(loc.id)
          if (!isHissError(err) || err.code !== 'ECONNREFUSED') break
        }
      }
    }
    if (done >= length) return
    for await (const chunk of this.readBlock(block, offset + done, length - done, opts)) take(chunk as Buffer)
  }

  async readInto (path: string, sink: (bytes: Buffer) => void): Promise<void> {
    const plan = await planRead(this.ns, path)
    for (const s of plan.segments) await this.readBlockInto(s.block, s.offset, s.length, sink, { ino: plan.ino, path })
  }

  createReadStream (path: string, opts: ReadOptions = {}): Readable {
    return new FileReadStream(this.ns, (b, o, l, ro) => this.readBlock(b, o, l, ro), path, opts)
  }

  async openWrite (target: InodeTarget, opts: OpenWriteOptions = {}): Promise<HissWriteSession> {
    const reply = await this.ns.writeOpen({ ...target, clientId: this.clientId, ...opts })
    return this.session(reply)
  }

  private session (reply: WriteOpenReply, firstBlock?: AddBlockReply): HissWriteSession {
    return new HissWriteSession({
      ns: this.ns,
      http: this.http,
      renewer: this.renewer,
      log: this.log,
      minReplicas: this.cfg['replication.min'],
      clock: this.clock,
    }, reply, firstBlock)
  }

  async put (path: string, data: Readable, opts: PutOptions = {}): Promise<FileStat> {
    // The input may fail while the write is still opening: keep that from becoming an
    // uncaught exception; the error surfaces when the input is read (and fails the put).
    const swallow = (): void => {}
    data.on('error', swallow)
    let session: HissWriteSession
    try {
      session = await this.openWrite({ path }, {
        create: true,
        overwrite: opts.overwrite ?? false,
        ...(opts.mode === undefined ? {} : { mode: opts.mode }),
        ...(opts.replication === undefined ? {} : { replication: opts.replication }),
        ...(opts.blockSize === undefined ? {} : { blockSize: opts.blockSize }),
      })
    } catch (err) {
      data.off('error', swallow)
      data.destroy()
      throw err
    }
    try {
      return await putFile(session, data, opts, {
        clock: this.clock,
        log: this.log,
        stallMs: this.cfg['client.timeout.ms'],
        spoolDir: this.opts.spoolDir ?? tmpdir(),
      })
    } finally {
      data.off('error', swallow)
    }
  }

  /** Open writes whose leases this client is renewing (for tests and diagnostics). */
  get openWrites (): number { return this.renewer.openWrites }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.renewer.close()
    this.http.close()
  }
}

export function createClient (cfg: HissConfig, opts?: CreateClientOptions): HissClient {
  return new HissClient(cfg, opts)
}
