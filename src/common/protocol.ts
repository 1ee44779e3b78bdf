// The wire protocol between the parts: every endpoint path, request and reply shape.
// The NameServer and DataServer share only this file (and the rest of src/common).
// The client library is the only caller of these endpoints.
//
// Conventions
// - JSON bodies, `Content-Type: application/json`; errors are `{error:{code,message}}`
//   with the HTTP status from ERROR_TABLE.
// - Numbers: block ids, generation stamps and inode ids are JS-safe integers (< 2^53).
//   Times are nanoseconds since the epoch as decimal strings (`*Ns`), so they survive
//   JSON without losing precision.
// - Client identity (namespace calls): headers HEADER_UID, HEADER_GIDS (comma list,
//   primary group first). Asserted by the client, as in HDFS "simple" mode.
// - Cluster authentication (DataServer -> NameServer calls): header HEADER_CLUSTER_AUTH,
//   see auth.ts. Block data calls (client/DataServer -> DataServer): header HEADER_TOKEN
//   carrying a block access token, see auth.ts.

export const PROTOCOL_VERSION = 1

export const HEADER_UID = 'x-hiss-uid'
export const HEADER_GIDS = 'x-hiss-gids'
export const HEADER_CLUSTER_AUTH = 'x-hiss-cluster-auth'
export const HEADER_TOKEN = 'x-hiss-token'
/** DataServer pipeline: comma-separated `host:port` list of the next replicas to forward to. */
export const HEADER_PIPELINE = 'x-hiss-pipeline'
/** DataServer pipeline: comma-separated DataServer ids matching HEADER_PIPELINE. */
export const HEADER_PIPELINE_IDS = 'x-hiss-pipeline-ids'
/** Expected block length on a write, when the writer knows it (replication does). */
export const HEADER_BLOCK_LENGTH = 'x-hiss-block-length'
/**
 * Block write of a block that is all zeros (a hole: a file grown by truncate or by a write
 * past its end): `PUT /v1/blocks/:id` with this header naming the length and an empty
 * body. The DataServer stores it sparse where its file system allows (no data blocks on
 * disk, no bytes on the wire) and forwards it the same way; it reads back as zeros,
 * checksummed like any block. Not combined with HEADER_BLOCK_LENGTH.
 */
export const HEADER_ZERO_LENGTH = 'x-hiss-zero-length'
/** Block patch: the byte ranges the body carries, `offset+length` comma-separated, ascending. */
export const HEADER_PATCH_RANGES = 'x-hiss-patch-ranges'
/** Most ranges one block patch may carry. */
export const MAX_PATCH_RANGES = 1024
/**
 * Listing pages: the most entries one `GET /v1/ns/list` with `limit` returns (a larger
 * limit is cut to this, with `more` set), and the page size clients ask for, so that no
 * reply, and no NameServer request, holds a whole large directory (HDFS: dfs.ls.limit).
 */
export const MAX_LIST_LIMIT = 10_000
export const LIST_PAGE_ENTRIES = 1000

// ---------------------------------------------------------------------------
// Shared shapes

export type FileType = 'file' | 'dir' | 'symlink'

export interface FileStat {
  /** Inode id: stable for the life of the file, across renames. */
  ino: number
  type: FileType
  /** Permission bits only (e.g. 0o644), plus setuid/setgid/sticky bits. */
  mode: number
  uid: number
  gid: number
  size: number
  nlink: number
  atimeNs: string
  mtimeNs: string
  ctimeNs: string
  /** Files only. */
  replication: number
  blockSize: number
  /**
   * Files only, when less than `size`: the bytes of the file's blocks other than blocks
   * of zeros stored sparse (see BlockRef.zero). The mount's st_blocks (and so `du`) is
   * counted from it. Absent: the same as `size`.
   */
  allocated?: number
  /** Symlinks only. */
  target?: string
}

export interface DirEntry extends FileStat { name: string }

/**
 * GET /v1/ns/list. Without `limit`, every entry (`more` absent). With `limit`, at most
 * that many (capped at MAX_LIST_LIMIT) and `more: true` when the directory holds further
 * names; the next page starts `after` the last name returned. Pages are in byte order of
 * the names; names added or removed while paging may or may not appear, the others
 * appear exactly once.
 */
export interface ListReply {
  entries: DirEntry[]
  more?: boolean
}

/**
 * A block of a file. `zero`: the block is `length` zero bytes stored sparse (written with
 * HEADER_ZERO_LENGTH, as a hole in a file is): it holds no disk space, so it does not
 * count in the file's `allocated` bytes. The NameServer takes the flag from the writer
 * for the blocks it stores, and keeps it for the blocks a commit leaves unchanged.
 */
export interface BlockRef { id: number, gen: number, length: number, zero?: true }

export interface DataServerRef { id: string, address: string }

/**
 * A block of a file with where to read it, as handed to clients. With `zero` (a block
 * of zeros stored sparse) a client makes the zeros itself and reads no replica
 * (src/client/zero-block.ts); the locations and token are there all the same.
 */
export interface LocatedBlock extends BlockRef {
  /** Byte offset of this block within the file. */
  offset: number
  /** Live, non-corrupt replicas, best first (the client tries them in order). */
  locations: DataServerRef[]
  /** Read token for this block (all locations accept it). */
  token: string
}

// ---------------------------------------------------------------------------
// NameServer: client-facing namespace API (prefix /v1/ns)
//
// GET  /v1/ping                        -> PingReply (no auth)
// GET  /v1/ns/stat?path=P[&nofollow=1] -> { stat: FileStat }          (follows final symlink unless nofollow)
// GET  /v1/ns/list?path=P[&after=NAME|&from=NAME][&limit=N]
//                                      -> ListReply { entries, more? }  (sorted by name; paged with limit)
// GET  /v1/ns/blocks?path=P | ?ino=N [&offset=&length=]
//                                      -> BlocksReply  (read plan; ino works for open files after rename)
// GET  /v1/ns/readlink?path=P          -> { target }
// GET  /v1/ns/statfs                   -> StatfsReply
// GET  /v1/ns/du?path=P                -> { files, dirs, bytes, spaceConsumed }  (bytes: sizes; spaceConsumed:
//                                         allocated bytes (FileStat.allocated) times replication)
// POST /v1/ns/mkdir    MkdirRequest    -> { stat }
// POST /v1/ns/create   CreateRequest   -> CreateReply { stat[, write, block] }   (empty file, visible at once: FUSE create / touch)
// POST /v1/ns/delete   DeleteRequest   -> DeleteReply { deleted: true[, parent] }
// POST /v1/ns/rename   RenameRequest   -> { stat }   (POSIX rename: replaces a file or an empty dir)
// POST /v1/ns/symlink  SymlinkRequest  -> { stat }
// POST /v1/ns/setattr  SetattrRequest  -> { stat }   (chmod/chown/utimens; size only shrinks to a block boundary... see below)
// POST /v1/ns/setrep   SetrepRequest   -> { files: number }
//
// Writing (leases: one writer per file; the client renews while writing)
// POST /v1/ns/write/open     WriteOpenRequest   -> WriteOpenReply
// POST /v1/ns/write/addblock AddBlockRequest    -> AddBlockReply
// POST /v1/ns/write/updateblock UpdateBlockRequest -> UpdateBlockReply (patch a block in place)
// POST /v1/ns/write/commit   CommitRequest      -> { stat }
// POST /v1/ns/write/abort    { writeId }        -> { aborted: true }
// POST /v1/ns/write/renew    { clientId }       -> { renewed: number }  (count of writes renewed)
// POST /v1/ns/badblock       BadBlockRequest    -> { ok: true }  (client found a corrupt replica)
//
// Admin
// GET  /v1/admin/report                -> ReportReply
// GET  /v1/admin/fsck?path=P           -> FsckReply

export interface PingReply {
  ok: true
  version: number
  safeMode: boolean
  /** Cluster defaults a client uses when it has no override. */
  blockSize: number
  replication: number
  liveDataServers: number
}

export interface BlocksReply {
  stat: FileStat
  blocks: LocatedBlock[]
}

export interface StatfsReply {
  capacity: number
  used: number
  remaining: number
  files: number
  blockSize: number
}

export interface MkdirRequest { path: string, mode?: number, parents?: boolean }
export interface CreateRequest {
  path: string
  mode?: number
  exclusive?: boolean
  /**
   * Also open the new file for writing in the same request (FUSE create: the caller
   * writes next), under the lease of client `clientId`, and with `allocate` allocate its
   * first block too. Needs `exclusive`. The reply then carries `write` (and `block`),
   * unless that part was refused (e.g. the new file's mode denies the caller writing):
   * the file is created either way, and the client opens the write as usual.
   */
  openWrite?: { clientId: string, allocate?: boolean }
}
export interface CreateReply {
  stat: FileStat
  /** With `openWrite`: the write, as POST /v1/ns/write/open {ino} would have answered. */
  write?: WriteOpenReply
  /** With `openWrite.allocate`: its first block, as POST /v1/ns/write/addblock would have answered. */
  block?: AddBlockReply
}
export interface DeleteRequest {
  path: string
  recursive?: boolean
  /** Reply with the parent directory's stat after the removal (its new times and link count). */
  parent?: boolean
}
export interface DeleteReply {
  deleted: true
  /** With `parent`: the parent directory after the removal (absent if it cannot be stat'ed). */
  parent?: FileStat
}
export interface RenameRequest { src: string, dst: string, noReplace?: boolean }
export interface SymlinkRequest { path: string, target: string }
export interface SetattrRequest {
  path: string
  /** Change a final symlink itself, not its target (lchown/lutimes; FUSE paths arrive resolved). */
  nofollow?: boolean
  mode?: number
  uid?: number
  gid?: number
  atimeNs?: string
  mtimeNs?: string
}
export interface SetrepRequest { path: string, replication: number }

/**
 * Open a file for writing. With `create`, a missing file is created *invisibly*: it
 * appears at `path` only when the write commits (so a killed `put` leaves nothing).
 * With `overwrite` the commit replaces whatever is at `path`. Without `create` the
 * file must exist and the reply lists its current blocks, which a commit may reuse
 * (copy-on-write per block: appends and random writes rewrite only touched blocks).
 */
export interface WriteOpenRequest {
  path?: string
  /** Alternative to path: an existing inode (an open file that may have been renamed). */
  ino?: number
  clientId: string
  create?: boolean
  overwrite?: boolean
  /** For created files. */
  mode?: number
  replication?: number
  blockSize?: number
}
export interface WriteOpenReply {
  writeId: string
  /** Inode id; 0 for a create that is not yet visible. */
  ino: number
  replication: number
  blockSize: number
  /** Current content (empty for a create or overwrite), with read tokens. */
  blocks: LocatedBlock[]
  size: number
  leaseTimeoutMs: number
}

export interface AddBlockRequest {
  writeId: string
  /** DataServers the client could not reach; the NameServer avoids them. */
  exclude?: string[]
}
export interface AddBlockReply {
  block: { id: number, gen: number }
  /** Pipeline order: the client sends to targets[0] with the rest in HEADER_PIPELINE. */
  targets: DataServerRef[]
  /** Write token for the block (every target accepts it). */
  token: string
}

/**
 * Change a block of the file's current content in place (a small write into an existing
 * block) instead of storing it anew: the NameServer allocates a new generation stamp for
 * the same block id and names the DataServers holding it; the client sends them only
 * the changed byte ranges (POST /v1/blocks/:id/patch) and then commits the block list
 * with this block at the new generation and length. Refused (NO_DATASERVERS) when the
 * block does not have all its replicas: the client stores the block anew instead.
 */
export interface UpdateBlockRequest {
  writeId: string
  /** The block as the client knows it: its generation in the file's committed content. */
  block: { id: number, gen: number }
}
export interface UpdateBlockReply {
  /** Same id, new generation. */
  block: { id: number, gen: number }
  /** Generations a replica may hold for the patch to apply (committed one first). */
  from: number[]
  /** Pipeline order, every live replica of the block. */
  targets: DataServerRef[]
  /** Update token: write access to the new generation, from one of `from`. */
  token: string
}

/**
 * Commit the file's new content. `blocks` is the complete new block list in file order:
 * each entry is either a block of the file's current content (same id, gen, length), a
 * block of it patched under this writeId (same id, the new gen, its new length), or
 * a block allocated under this writeId and stored by at least `replication.min`
 * DataServers (they report it as received). `size` must equal the sum of lengths.
 */
export interface CommitRequest {
  writeId: string
  blocks: BlockRef[]
  size: number
  mtimeNs?: string
  /**
   * Permission bits, owner and group to set with the commit, as a chmod/chown by the
   * committing identity would (same rules; EPERM fails the whole commit): a mount defers
   * the chmod and chown of a file it has uncommitted writes to (tar's fchown and fchmod
   * before close) to save their round trips.
   */
  mode?: number
  uid?: number
  gid?: number
  /** Keep the lease and writeId open after committing (fsync within an open file). */
  keepOpen?: boolean
}

export interface BadBlockRequest { block: { id: number, gen: number }, dataserver: string }

// ---------------------------------------------------------------------------
// NameServer: DataServer-facing API (prefix /v1/ds), all with HEADER_CLUSTER_AUTH.
//
// POST /v1/ds/register      RegisterRequest      -> RegisterReply
// POST /v1/ds/heartbeat     HeartbeatRequest     -> HeartbeatReply
// POST /v1/ds/blockreport   BlockReportRequest   -> { ok: true }
// POST /v1/ds/incremental   IncrementalRequest   -> { ok: true }
// POST /v1/ds/unregister    { id }               -> { ok: true }

export interface StorageReport {
  /** Total bytes of the disk holding the storage directory. */
  capacity: number
  /** Bytes held by block replicas. */
  used: number
  /** Bytes still usable for new replicas (free minus reserved). */
  remaining: number
  /** Streams in progress (reads + writes): the load used by placement. */
  activeStreams: number
}

export interface RegisterRequest extends StorageReport {
  id: string
  /** host:port that clients and other DataServers use. */
  address: string
}
export interface RegisterReply { ok: true, blockReportNow: true }

export interface HeartbeatRequest extends StorageReport { id: string, address: string, blocks: number }
export interface HeartbeatReply {
  /** The NameServer does not know this DataServer (e.g. it restarted): register again. */
  reregister?: boolean
  commands: DataServerCommand[]
}

/** Replica entry in reports: [blockId, gen, length]. */
export type ReplicaTuple = [number, number, number]

export interface BlockReportRequest { id: string, blocks: ReplicaTuple[] }
export interface IncrementalRequest {
  id: string
  received?: ReplicaTuple[]
  deleted?: Array<[number, number]>
  /** Replicas the DataServer found corrupt (scanner or read verification). */
  corrupt?: Array<[number, number]>
}

export type DataServerCommand =
  | { type: 'replicate', block: BlockRef, targets: DataServerRef[], token: string }
  | { type: 'delete', blocks: Array<[number, number]> }
  | { type: 'report' }
  /**
   * Store a replica of an all-zero block (a hole the mount wrote as zeros) made here from
   * nothing: the monitor's remedy when every replica of such a block is lost.
   */
  | { type: 'zero', block: BlockRef }

// ---------------------------------------------------------------------------
// DataServer: block data API (prefix /v1/blocks), all with HEADER_TOKEN.
//
// PUT  /v1/blocks/:id?gen=G    body = raw bytes (streamed). Headers: HEADER_PIPELINE(_IDS).
//      Stores the replica (temp file + checksums, fsync, rename), forwards the stream to
//      the pipeline, and answers WriteBlockReply only when its own copy is durable;
//      `stored` lists the DataServer ids that hold the block (itself plus those
//      downstream that succeeded). The replica is reported to the NameServer
//      (incremental, batched) once durable, without holding the reply: the reply may
//      reach the client first, and a commit waits for the reports it needs.
//      With HEADER_ZERO_LENGTH (and an empty body): a block of that many zeros, stored
//      sparse and forwarded to every downstream hop at once.
// GET  /v1/blocks/:id?gen=G[&offset=O&length=L]  -> raw bytes, verified against the
//      checksums chunk by chunk; on a mismatch the response is cut short (the client
//      sees fewer bytes than Content-Length) and the replica is reported corrupt.
// POST /v1/blocks/:id/patch?gen=G&length=L  body = the bytes of the ranges in
//      HEADER_PATCH_RANGES, concatenated (Content-Length required). Headers:
//      HEADER_TOKEN (an update token, see UpdateBlockReply), HEADER_PIPELINE(_IDS).
//      Applies the ranges to the replica this DataServer holds at one of the token's
//      `from` generations and moves it to generation G with length L (>= its length,
//      the gap reads as zeros): journalled first (fsync'd), then applied in place with
//      the touched chunks' CRCs rewritten, fsync'd and renamed; crash-safe (a restart
//      re-applies a complete journal and drops a torn one). Forwarded down the
//      pipeline like a write; answers WriteBlockReply once its own copy is durable.
// GET  /v1/ping -> { ok: true, id }

export interface WriteBlockReply {
  id: number
  gen: number
  length: number
  stored: string[]
  /** Downstream failures, for the client's exclude list. */
  failed: string[]
}

// ---------------------------------------------------------------------------
// Admin JSON (also the CLI's --json output: a stable interface).

export interface ReportReply {
  dataservers: Array<{
    id: string
    address: string
    state: 'live' | 'dead'
    capacity: number
    used: number
    remaining: number
    blocks: number
    lastHeartbeatMsAgo: number
  }>
  blocks: { total: number, underReplicated: number, missing: number, corrupt: number, pendingDeletion: number }
  capacity: number
  used: number
  remaining: number
  safeMode: boolean
  files: number
  dirs: number
}

export interface FsckReply {
  path: string
  files: number
  blocks: number
  underReplicated: number
  missing: number
  corrupt: number
  healthy: boolean
  entries: Array<{
    path: string
    replication: number
    size: number
    blocks: Array<{
      id: number
      gen: number
      length: number
      /** A block of zeros (a hole): reads need no replica, and a lost one is made anew. */
      zero?: true
      replicas: Array<{ dataserver: string, address: string, state: 'live' | 'corrupt' | 'stale' | 'dead' }>
    }>
  }>
}
