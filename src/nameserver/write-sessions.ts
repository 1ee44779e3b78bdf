// Write sessions and their leases. A lease is held per file — its inode, or its path for
// a create that is not yet visible — by one clientId; the same client may hold several
// sessions on one file. A lease lapses when its client stops renewing for the lease
// timeout. The sessions and the blocks they allocated are also stored (WriteService
// writes them in the transactions that change them), so after a restart they come back
// with a fresh lease and the writers carry on, also with a patch in flight
// (block-updates.ts stores which session a patch belongs to).
import { randomBytes } from 'node:crypto'
import { HissError } from '../common/errors.js'
import type { Identity } from './permissions.js'

export interface WriteSession {
  readonly writeId: string
  readonly clientId: string
  /** Inode being written; 0 for a create that has not committed yet. */
  ino: number
  /** Canonical path, for a create. */
  path: string
  create: boolean
  overwrite: boolean
  mode: number
  replication: number
  blockSize: number
  who: Identity
  /** Blocks allocated under this session and not committed: blockId -> gen. */
  allocated: Map<number, number>
  /** Monotonic ms of the last renewal. */
  lastRenew: number
  /** Lease keys held ("i:<ino>", "p:<path>"). */
  keys: string[]
}

export type NewSession = Omit<WriteSession, 'writeId' | 'allocated' | 'lastRenew' | 'keys'>

/** The fields of a session that are stored (namespace-store write_sessions.state). */
type StoredFields = Omit<WriteSession, 'writeId' | 'allocated' | 'lastRenew'>

export function sessionState (s: WriteSession): string {
  const f: StoredFields = { clientId: s.clientId, ino: s.ino, path: s.path, create: s.create, overwrite: s.overwrite, mode: s.mode, replication: s.replication, blockSize: s.blockSize, who: s.who, keys: s.keys }
  return JSON.stringify(f)
}

export function inoKey (ino: number): string { return `i:${ino}` }
export function pathKey (path: string): string { return `p:${path}` }

export class WriteSessions {
  private readonly sessions = new Map<string, WriteSession>()
  private readonly byKey = new Map<string, Set<string>>()

  constructor (readonly leaseTimeoutMs: number) {}

  get size (): number { return this.sessions.size }

  private expired (s: WriteSession, now: number): boolean {
    return now - s.lastRenew > this.leaseTimeoutMs
  }

  /** Throws LEASE_HELD when another client holds a live lease on any of `keys`. */
  checkFree (keys: readonly string[], clientId: string, now: number): void {
    for (const k of keys) {
      for (const id of this.byKey.get(k) ?? []) {
        const s = this.sessions.get(id)
        if (s !== undefined && s.clientId !== clientId && !this.expired(s, now)) {
          throw new HissError('LEASE_HELD', `file is being written by another client (${k.startsWith('p:') ? k.slice(2) : 'inode ' + k.slice(2)})`)
        }
      }
    }
  }

  open (init: NewSession, keys: string[], now: number): WriteSession {
    this.checkFree(keys, init.clientId, now)
    const s: WriteSession = { ...init, writeId: randomBytes(16).toString('hex'), allocated: new Map(), lastRenew: now, keys: [] }
    this.sessions.set(s.writeId, s)
    this.addKeys(s, keys)
    return s
  }

  /** A stored session, back after a restart, with a fresh lease. */
  restore (writeId: string, state: string, allocs: ReadonlyArray<[number, number]>, now: number): WriteSession {
    const f = JSON.parse(state) as StoredFields
    const s: WriteSession = { ...f, keys: [], writeId, allocated: new Map(allocs), lastRenew: now }
    this.sessions.set(writeId, s)
    this.addKeys(s, f.keys)
    return s
  }

  addKeys (s: WriteSession, keys: readonly string[]): void {
    for (const k of keys) {
      if (s.keys.includes(k)) continue
      s.keys.push(k)
      let set = this.byKey.get(k)
      if (set === undefined) { set = new Set(); this.byKey.set(k, set) }
      set.add(s.writeId)
    }
  }

  dropKey (s: WriteSession, key: string): void {
    s.keys = s.keys.filter(k => k !== key)
    const set = this.byKey.get(key)
    if (set !== undefined) { set.delete(s.writeId); if (set.size === 0) this.byKey.delete(key) }
  }

  /** The live session, renewed; LEASE_EXPIRED when unknown or lapsed. */
  use (writeId: string, now: number): WriteSession {
    const s = this.sessions.get(writeId)
    if (s === undefined || this.expired(s, now)) throw new HissError('LEASE_EXPIRED', 'write lease expired or unknown write (open the file again)')
    s.lastRenew = now
    return s
  }

  peek (writeId: string): WriteSession | undefined { return this.sessions.get(writeId) }

  renew (clientId: string, now: number): number {
    let n = 0
    for (const s of this.sessions.values()) {
      if (s.clientId === clientId && !this.expired(s, now)) { s.lastRenew = now; n++ }
    }
    return n
  }

  /** End a session (commit, abort or expiry); returns it if it existed. */
  remove (writeId: string): WriteSession | undefined {
    const s = this.sessions.get(writeId)
    if (s === undefined) return undefined
    this.sessions.delete(writeId)
    for (const k of [...s.keys]) this.dropKey(s, k)
    return s
  }

  /** Sessions whose lease lapsed (the caller aborts them). */
  lapsed (now: number): WriteSession[] {
    return [...this.sessions.values()].filter(s => this.expired(s, now))
  }

  all (): IterableIterator<WriteSession> { return this.sessions.values() }
}
