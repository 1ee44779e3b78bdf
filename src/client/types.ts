// The client library's public surface, fixed first so the CLI and the FUSE adapter can
// be written against it. Everything here throws only HissError.
import type { Readable } from 'node:stream'
import type { BlockPatch } from './block-patcher.js'
import type { AddBlockReply, BlockRef, DirEntry, FileStat, FsckReply, ListReply, LocatedBlock, PingReply, ReportReply, StatfsReply, WriteOpenReply } from '../common/protocol.js'

/** Who is calling: sent with every namespace request; the NameServer checks permissions. */
export interface Identity { uid: number, gids: number[] }

export interface PutOptions {
  mode?: number
  overwrite?: boolean
  replication?: number
  blockSize?: number
  /** Called with bytes written so far (for progress bars). */
  onProgress?: (bytes: number) => void
  /**
   * Bytes [offset, offset+length) of the input again (e.g. a local file's read stream
   * for that range): a block whose pipeline failed is resent from it, and put keeps no
   * spool copy. Without it, blocks in flight are spooled to local disk for resending.
   */
  replay?: (offset: number, length: number) => Readable
}

export interface StoreOptions {
  /** A stream body's first `bytes` are in the socket's kernel buffer (see WriteSession.storeBlock). */
  onSent?: (bytes: number) => void
}

export interface ReadOptions {
  /** First byte (default 0). */
  start?: number
  /** Bytes to read (default: to the end). */
  length?: number
  onProgress?: (bytes: number) => void
}

/**
 * One open write on one file (a lease held on the NameServer, renewed in the
 * background). Blocks are immutable once stored: a writer stores new blocks and then
 * commits a complete block list, reusing unchanged blocks of the current content.
 */
export interface WriteSession {
  readonly writeId: string
  /** Inode id (0 until a create commits). */
  readonly ino: number
  readonly blockSize: number
  readonly replication: number
  /** The file's content when the session opened (empty for create/overwrite). */
  readonly baseBlocks: readonly LocatedBlock[]
  readonly baseSize: number
  /**
   * Store one new block from a stream (at most blockSize bytes), pipelined to its
   * replicas; resolves once at least replication.min replicas hold it durably. Retries
   * on another set of DataServers when the pipeline fails before any byte was
   * acknowledged and the stream can be replayed (i.e. `data` is a Buffer).
   * `onSent(n)`: a stream's first n bytes have been handed to the socket (the kernel
   * holds them; their buffers may be reused). Called with growing n, maybe not for all.
   */
  storeBlock (data: Readable | Buffer, length?: number, opts?: StoreOptions): Promise<BlockRef>
  /**
   * Store a block of `length` zero bytes (a hole left by truncate or a write past the
   * end) without sending them: the DataServers keep it sparse. Same retries as storeBlock.
   */
  storeZeros? (length: number): Promise<BlockRef>
  /**
   * Change a block of the file's committed content in place: only `patch.ranges` travel,
   * to the DataServers holding the block, which move it to a new generation (durable on
   * at least replication.min of them when this resolves). Commit the returned block
   * (same id, new gen and length) to make it the file's. Rejects (the block must then be
   * stored anew) when a replica is missing or no pipeline took the patch. Optional:
   * writers without it store changed blocks anew.
   */
  patchBlock? (block: LocatedBlock, patch: BlockPatch): Promise<LocatedBlock>
  /** Atomically make `blocks` the file's content. */
  commit (blocks: BlockRef[], opts?: { mtimeNs?: string, keepOpen?: boolean }): Promise<FileStat>
  /** Give up: nothing becomes visible; stored blocks are garbage-collected. */
  abort (): Promise<void>
}

/**
 * A write the NameServer opened in the same request that created the file (createOpen),
 * to be turned into a WriteSession by the client whose lease it is (adoptWrite).
 */
export interface WriteGrant {
  readonly reply: WriteOpenReply
  /** The first block, already allocated. */
  readonly block?: AddBlockReply
}

export interface HissFs {
  /** Identifies this client's write leases (what createOpen's `leaseHolder` names). */
  readonly clientId: string
  ping (): Promise<PingReply>
  stat (path: string, opts?: { nofollow?: boolean }): Promise<FileStat>
  exists (path: string): Promise<boolean>
  /** Every entry, in name order (fetched a page at a time). */
  list (path: string): Promise<DirEntry[]>
  /** One page of a listing: up to `limit` entries after `after`, or from `from` on (see ListReply). */
  listPage (path: string, opts: { limit: number, after?: string, from?: string }): Promise<ListReply>
  mkdir (path: string, opts?: { mode?: number, parents?: boolean }): Promise<FileStat>
  /** Create an empty file, visible at once. */
  create (path: string, opts?: { mode?: number, exclusive?: boolean }): Promise<FileStat>
  /**
   * Create an empty file exclusively (visible at once) and, in the same NameServer
   * request, open it for writing under the lease of the client whose clientId is
   * `leaseHolder`, its first block allocated. `grant` is undefined when the NameServer
   * did not open the write (e.g. the mode denies the caller writing): open it as usual.
   */
  createOpen (path: string, opts: { mode?: number, leaseHolder: string }): Promise<{ stat: FileStat, grant?: WriteGrant }>
  /** Take over a write that createOpen opened under this client's lease. */
  adoptWrite (grant: WriteGrant): WriteSession
  /** Remove; with `parent`, resolves with the parent directory's stat after the removal. */
  delete (path: string, opts?: { recursive?: boolean, parent?: boolean }): Promise<{ parent?: FileStat }>
  rename (src: string, dst: string, opts?: { noReplace?: boolean }): Promise<FileStat>
  symlink (target: string, path: string): Promise<FileStat>
  readlink (path: string): Promise<string>
  setattr (path: string, attrs: { mode?: number, uid?: number, gid?: number, atimeNs?: string, mtimeNs?: string, nofollow?: boolean }): Promise<FileStat>
  setReplication (path: string, replication: number): Promise<number>
  statfs (): Promise<StatfsReply>
  du (path: string): Promise<{ files: number, dirs: number, bytes: number, spaceConsumed: number }>
  report (): Promise<ReportReply>
  fsck (path?: string): Promise<FsckReply>

  /** Read plan (block locations + read tokens) by path or by inode id. */
  getBlocks (target: { path: string } | { ino: number }, range?: { offset: number, length: number }): Promise<{ stat: FileStat, blocks: LocatedBlock[] }>
  /**
   * Stream bytes [offset, offset+length) of one located block, trying its replicas in
   * order and failing over on connection errors, short reads and checksum errors (the
   * bad replica is reported). Refreshes locations/tokens from the NameServer when every
   * replica fails or the token expired (by `ino` when given, else by `path`; with
   * neither, a block whose replicas all fail is BLOCK_LOST at once).
   */
  readBlock (block: LocatedBlock, offset: number, length: number, opts?: { ino?: number, path?: string }): Readable
  /**
   * The same bytes, handed to `sink` as views of a reused buffer (valid only during the
   * call: copy what you keep). Cheaper per byte than readBlock for a caller that copies
   * at once; same failover, in the end (what a direct read could not get comes through
   * readBlock). Rejects when the range could not be read, with no more sink calls after.
   */
  readBlockInto? (block: LocatedBlock, offset: number, length: number, sink: (bytes: Buffer) => void, opts?: { ino?: number, path?: string }): Promise<void>
  /**
   * A whole file into `sink`, block after block through readBlockInto: the bytes are
   * views of a reused buffer, valid only during the call (for a caller that consumes
   * them at once, such as `cat` writing to a file). Same failover as createReadStream.
   */
  readInto (path: string, sink: (bytes: Buffer) => void): Promise<void>
  /** Whole-file (or ranged) streaming read with failover. */
  createReadStream (path: string, opts?: ReadOptions): Readable
  /** Stream a file in (put): invisible until complete; overwrite replaces atomically. */
  put (path: string, data: Readable, opts?: PutOptions): Promise<FileStat>
  openWrite (target: { path: string } | { ino: number }, opts?: { create?: boolean, overwrite?: boolean, mode?: number, replication?: number, blockSize?: number }): Promise<WriteSession>

  /** Stop lease renewal timers and close keep-alive sockets. */
  close (): Promise<void>
}
