// Path walking with POSIX semantics: search permission on every directory crossed,
// symlinks followed in intermediate components (and in the final one on request), at
// most MAX_SYMLINK_HOPS of them, relative targets resolved lexically against the link's
// directory.
import { HissError } from '../common/errors.js'
import { splitPath } from '../common/paths.js'
import type { InodeRow, NamespaceStore } from './namespace-store.js'
import { ROOT_INO } from './namespace-store.js'
import { X, type Identity, type Permissions } from './permissions.js'

export const MAX_SYMLINK_HOPS = 40

export interface Resolved {
  /** The directory holding the final name; undefined only for the root itself. */
  parent: InodeRow | undefined
  /** Final name ('' for the root). */
  name: string
  /** The inode at the path, if it exists. */
  node: InodeRow | undefined
  /** Canonical path after following symlinks. */
  path: string
}

/** Collapse "." and ".." lexically; ".." at the root stays at the root (as POSIX does). */
export function lexicalParts (parts: readonly string[]): string[] {
  const out: string[] = []
  for (const p of parts) {
    if (p === '' || p === '.') continue
    if (p === '..') out.pop()
    else out.push(p)
  }
  return out
}

export function resolvePath (store: NamespaceStore, perms: Permissions, path: string, who: Identity, followFinal: boolean): Resolved {
  const root = store.get(ROOT_INO)
  if (root === undefined) throw HissError.INTERNAL('namespace has no root inode')
  let parts = splitPath(path)
  let hops = 0
  restart: for (;;) {
    let cur = root
    const seen: string[] = []
    if (parts.length === 0) return { parent: undefined, name: '', node: root, path: '/' }
    for (let i = 0; i < parts.length; i++) {
      const name = parts[i]!
      const last = i === parts.length - 1
      if (cur.type !== 'dir') throw HissError.ENOTDIR('/' + seen.join('/'))
      perms.require(cur, who, X, `search permission on ${'/' + seen.join('/')}`)
      const child = store.lookup(cur.ino, name)
      if (child === undefined) {
        if (last) return { parent: cur, name, node: undefined, path: '/' + [...seen, name].join('/') }
        throw HissError.ENOENT(path)
      }
      if (child.type === 'symlink' && (!last || followFinal)) {
        if (++hops > MAX_SYMLINK_HOPS) throw HissError.from('ELOOP', path)
        const target = child.target ?? ''
        if (target === '') throw HissError.ENOENT(path)
        const base = target.startsWith('/') ? [] : seen
        parts = lexicalParts([...base, ...target.split('/'), ...parts.slice(i + 1)])
        continue restart
      }
      if (last) return { parent: cur, name, node: child, path: '/' + [...seen, name].join('/') }
      cur = child
      seen.push(name)
    }
  }
}
