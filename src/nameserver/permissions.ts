// POSIX permission checks over inode rows, for the identity a client asserts (HDFS
// "simple" mode). Superuser (by uid, or by the optional supergroup) bypasses the bits.
import { HissError } from '../common/errors.js'

export const NOBODY = 65534
export const S_ISUID = 0o4000
export const S_ISGID = 0o2000
export const S_ISVTX = 0o1000

export const R = 4
export const W = 2
export const X = 1

export interface Identity { uid: number, gids: number[] }


export interface Owned { uid: number, gid: number, mode: number }

export interface PermissionConfig {
  enabled: boolean
  superuserUid: number
  supergroupGid?: number | undefined
}

export class Permissions {
  constructor (private readonly cfg: PermissionConfig) {}

  get enabled (): boolean { return this.cfg.enabled }

  isSuperuser (who: Identity): boolean {
    if (who.uid === this.cfg.superuserUid) return true
    const sg = this.cfg.supergroupGid
    return sg !== undefined && who.gids.includes(sg)
  }

  /** Whether `who` has every bit of `want` (R|W|X) on `node`. */
  can (node: Owned, who: Identity, want: number): boolean {
    if (!this.cfg.enabled || this.isSuperuser(who)) return true
    let bits: number
    if (who.uid === node.uid) bits = (node.mode >> 6) & 7
    else if (who.gids.includes(node.gid)) bits = (node.mode >> 3) & 7
    else bits = node.mode & 7
    return (bits & want) === want
  }

  require (node: Owned, who: Identity, want: number, what: string): void {
    if (!this.can(node, who, want)) throw HissError.EACCES(what)
  }

  isOwner (node: Owned, who: Identity): boolean {
    return !this.cfg.enabled || this.isSuperuser(who) || who.uid === node.uid
  }

  /**
   * Sticky directories (/tmp): an entry may be removed or renamed only by its owner, the
   * directory's owner or the superuser. The caller has already checked W|X on `dir`.
   */
  requireSticky (dir: Owned, entry: Owned, who: Identity, what: string): void {
    if (!this.cfg.enabled || (dir.mode & S_ISVTX) === 0 || this.isSuperuser(who)) return
    if (who.uid !== entry.uid && who.uid !== dir.uid) throw HissError.EACCES(`${what} (sticky directory)`)
  }
}
