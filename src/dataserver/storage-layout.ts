// Where every file of a DataServer lives. Paths are built only from validated block
// numbers (safe non-negative integers), so no request can ever name a file outside
// the storage root: there is no string from the wire in any path.
import { join } from 'node:path'
import { parseBlockNumber } from '../common/paths.js'

/** `blk_<id>_<gen>` and its checksum file `blk_<id>_<gen>.meta`. */
const REPLICA_NAME = /^blk_([0-9]{1,15})_([0-9]{1,15})(\.meta)?$/

const JOURNAL_NAME = /^blk_([0-9]{1,15})_([0-9]{1,15})_([0-9]{1,15})\.patch$/

export interface ReplicaName { id: number, gen: number, meta: boolean }

export class StorageLayout {
  readonly root: string
  /** Finalised replicas, spread over 256 subdirectories. */
  readonly currentDir: string
  /** In-progress writes; emptied at start (a crash leaves only garbage here). */
  readonly tmpDir: string
  /** Replicas found corrupt, kept for the NameServer's delete (and for forensics). */
  readonly corruptDir: string
  /** Journals of block patches in progress (see block-patch.ts). */
  readonly journalDir: string
  readonly idFile: string

  constructor (root: string) {
    this.root = root
    this.currentDir = join(root, 'current')
    this.tmpDir = join(root, 'tmp')
    this.corruptDir = join(root, 'corrupt')
    this.journalDir = join(root, 'journal')
    this.idFile = join(root, 'id')
  }

  /** Two hex digits from the low byte of the id: keeps directories small. */
  static subdirName (id: number): string {
    return (checked(id) % 256).toString(16).padStart(2, '0')
  }

  static fileName (id: number, gen: number): string {
    return `blk_${checked(id)}_${checked(gen, 'generation stamp')}`
  }

  static parseName (name: string): ReplicaName | undefined {
    const m = REPLICA_NAME.exec(name)
    if (m === null) return undefined
    const id = Number(m[1])
    const gen = Number(m[2])
    if (!Number.isSafeInteger(id) || !Number.isSafeInteger(gen)) return undefined
    return { id, gen, meta: m[3] !== undefined }
  }

  subdir (id: number): string {
    return join(this.currentDir, StorageLayout.subdirName(id))
  }

  dataPath (id: number, gen: number): string {
    return join(this.subdir(id), StorageLayout.fileName(id, gen))
  }

  metaPath (id: number, gen: number): string {
    return this.dataPath(id, gen) + '.meta'
  }

  corruptDataPath (id: number, gen: number): string {
    return join(this.corruptDir, StorageLayout.fileName(id, gen))
  }

  corruptMetaPath (id: number, gen: number): string {
    return this.corruptDataPath(id, gen) + '.meta'
  }

  /** Journal of the patch moving replica `id` from generation `from` to `to`. */
  journalPath (id: number, from: number, to: number): string {
    return join(this.journalDir, `${StorageLayout.fileName(id, from)}_${checked(to, 'generation stamp')}.patch`)
  }

  static parseJournalName (name: string): { id: number, from: number, to: number } | undefined {
    const m = JOURNAL_NAME.exec(name)
    if (m === null) return undefined
    const [id, from, to] = [Number(m[1]), Number(m[2]), Number(m[3])]
    if (!Number.isSafeInteger(id) || !Number.isSafeInteger(from) || !Number.isSafeInteger(to)) return undefined
    return { id, from, to }
  }

  /** Temp names carry a random nonce so a retried write never collides with a dying one. */
  tmpPaths (id: number, gen: number, nonce: string): { data: string, meta: string } {
    if (!/^[0-9a-f]{1,32}$/.test(nonce)) throw new Error('bad temp nonce')
    const data = join(this.tmpDir, `${StorageLayout.fileName(id, gen)}.${nonce}`)
    return { data, meta: data + '.meta' }
  }
}

/** Re-validate at the last moment: a bug upstream must not turn into a path. */
function checked (n: number, what = 'block id'): number {
  return parseBlockNumber(n, what)
}
