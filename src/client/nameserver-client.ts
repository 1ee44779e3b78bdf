// Metadata calls to the NameServer, one method per endpoint of protocol.ts. Every call
// carries the caller's identity; calls that fail with EAGAIN/SAFE_MODE/ECONNREFUSED are
// retried (see retry.ts) so a NameServer restart is ridden out.
import type { Clock } from '../common/clock.js'
import type { Logger } from '../common/log.js'
import {
  HEADER_GIDS, HEADER_UID, LIST_PAGE_ENTRIES,
  type AddBlockReply, type AddBlockRequest, type BadBlockRequest, type BlocksReply, type CommitRequest,
  type CreateReply, type CreateRequest, type DeleteReply, type DeleteRequest, type DirEntry, type FileStat, type FsckReply, type ListReply, type MkdirRequest,
  type PingReply, type RenameRequest, type ReportReply, type SetattrRequest, type SetrepRequest,
  type StatfsReply, type SymlinkRequest, type UpdateBlockReply, type UpdateBlockRequest, type WriteOpenReply, type WriteOpenRequest,
} from '../common/protocol.js'
import type { HttpClient, Query } from './http.js'
import { withRetry } from './retry.js'
import type { Identity } from './types.js'

export type InodeTarget = { path: string } | { ino: number }

export interface DuReply { files: number, dirs: number, bytes: number, spaceConsumed: number }

export interface NameServerClientDeps {
  http: HttpClient
  /** host:port of the NameServer. */
  address: string
  identity: Identity
  clock: Clock
  retryMs: number
  log: Logger
}

function targetQuery (t: InodeTarget): Query {
  return 'ino' in t ? { ino: t.ino } : { path: t.path }
}

export class NameServerClient {
  private readonly headers: Record<string, string>

  constructor (private readonly d: NameServerClientDeps) {
    this.headers = { [HEADER_UID]: String(d.identity.uid), [HEADER_GIDS]: d.identity.gids.join(',') }
  }

  private call<T> (method: 'GET' | 'POST', path: string, query: Query | undefined, body: unknown, retry = true): Promise<T> {
    const url = this.d.http.url(this.d.address, path, query)
    let once = (): Promise<T> => this.d.http.json<T>(method, url, { headers: this.headers, body })
    if (this.d.log.level === 'debug') once = this.traced(once, method, path)
    if (!retry) return once()
    return withRetry(once, { clock: this.d.clock, budgetMs: this.d.retryMs, log: this.d.log, what: `${method} ${path}` })
  }

  /** Debug level: one line per NameServer request with its time (counting round trips per operation). */
  private traced<T> (fn: () => Promise<T>, method: string, path: string): () => Promise<T> {
    return async () => {
      const t0 = performance.now()
      let code = 'ok'
      try {
        return await fn()
      } catch (err) {
        code = (err as { code?: string }).code ?? 'error'
        throw err
      } finally {
        this.d.log.debug('nameserver request', { req: `${method} ${path}`, code, ms: +(performance.now() - t0).toFixed(2) })
      }
    }
  }

  private get<T> (path: string, query?: Query): Promise<T> { return this.call<T>('GET', path, query, undefined) }
  private post<T> (path: string, body: unknown): Promise<T> { return this.call<T>('POST', path, undefined, body) }

  /** No retries: a ping answers "is it up now?", and must fail fast when it is not. */
  ping (): Promise<PingReply> { return this.call<PingReply>('GET', '/v1/ping', undefined, undefined, false) }

  async stat (path: string, nofollow = false): Promise<FileStat> {
    return (await this.get<{ stat: FileStat }>('/v1/ns/stat', { path, nofollow: nofollow ? 1 : undefined })).stat
  }

  /**
   * Every entry of a directory, in name order, fetched a page (LIST_PAGE_ENTRIES) at a
   * time: no single reply, nor the NameServer's work for one request, grows with the
   * directory. Names added or removed meanwhile may or may not be listed (as in HDFS).
   */
  async list (path: string): Promise<DirEntry[]> {
    const all: DirEntry[] = []
    let after: string | undefined
    for (;;) {
      const page = await this.listPage(path, { limit: LIST_PAGE_ENTRIES, ...(after === undefined ? {} : { after }) })
      for (const e of page.entries) all.push(e)
      const last = page.entries[page.entries.length - 1]
      if (page.more !== true || last === undefined) return all
      after = last.name
    }
  }

  /** One page of a listing: up to `limit` entries after `after`, or from `from` on. */
  async listPage (path: string, opts: { limit: number, after?: string, from?: string }): Promise<ListReply> {
    return await this.get<ListReply>('/v1/ns/list', { path, limit: opts.limit, after: opts.after, from: opts.from })
  }

  blocks (target: InodeTarget, range?: { offset: number, length: number }): Promise<BlocksReply> {
    return this.get<BlocksReply>('/v1/ns/blocks', { ...targetQuery(target), offset: range?.offset, length: range?.length })
  }

  async readlink (path: string): Promise<string> {
    return (await this.get<{ target: string }>('/v1/ns/readlink', { path })).target
  }

  statfs (): Promise<StatfsReply> { return this.get<StatfsReply>('/v1/ns/statfs') }
  du (path: string): Promise<DuReply> { return this.get<DuReply>('/v1/ns/du', { path }) }

  async mkdir (req: MkdirRequest): Promise<FileStat> { return (await this.post<{ stat: FileStat }>('/v1/ns/mkdir', req)).stat }
  async create (req: CreateRequest): Promise<FileStat> { return (await this.post<{ stat: FileStat }>('/v1/ns/create', req)).stat }
  /** create with `openWrite`: the new file's stat, and its write when the NameServer opened one. */
  createOpen (req: CreateRequest & { openWrite: NonNullable<CreateRequest['openWrite']> }): Promise<CreateReply> { return this.post<CreateReply>('/v1/ns/create', req) }
  delete (req: DeleteRequest): Promise<DeleteReply> { return this.post<DeleteReply>('/v1/ns/delete', req) }
  async rename (req: RenameRequest): Promise<FileStat> { return (await this.post<{ stat: FileStat }>('/v1/ns/rename', req)).stat }
  async symlink (req: SymlinkRequest): Promise<FileStat> { return (await this.post<{ stat: FileStat }>('/v1/ns/symlink', req)).stat }
  async setattr (req: SetattrRequest): Promise<FileStat> { return (await this.post<{ stat: FileStat }>('/v1/ns/setattr', req)).stat }
  async setrep (req: SetrepRequest): Promise<number> { return (await this.post<{ files: number }>('/v1/ns/setrep', req)).files }

  writeOpen (req: WriteOpenRequest): Promise<WriteOpenReply> { return this.post<WriteOpenReply>('/v1/ns/write/open', req) }
  addBlock (req: AddBlockRequest): Promise<AddBlockReply> { return this.post<AddBlockReply>('/v1/ns/write/addblock', req) }
  updateBlock (req: UpdateBlockRequest): Promise<UpdateBlockReply> { return this.post<UpdateBlockReply>('/v1/ns/write/updateblock', req) }
  async commit (req: CommitRequest): Promise<FileStat> { return (await this.post<{ stat: FileStat }>('/v1/ns/write/commit', req)).stat }
  async abort (writeId: string): Promise<void> { await this.post<{ aborted: true }>('/v1/ns/write/abort', { writeId }) }
  async renew (clientId: string): Promise<number> { return (await this.post<{ renewed: number }>('/v1/ns/write/renew', { clientId })).renewed }
  async badBlock (req: BadBlockRequest): Promise<void> { await this.post<{ ok: true }>('/v1/ns/badblock', req) }

  report (): Promise<ReportReply> { return this.get<ReportReply>('/v1/admin/report') }
  fsck (path: string): Promise<FsckReply> { return this.get<FsckReply>('/v1/admin/fsck', { path }) }
}
