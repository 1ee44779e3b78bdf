// AttrCache's mirror (the patched fuse-native's native table of directory attributes):
// it holds exactly the cache's live directory entries, each with the time it has left,
// so the native side never answers what the cache itself would not.
import t from 'tap'
import { ManualClock } from '../../../src/common/clock.js'
import type { FileStat } from '../../../src/common/protocol.js'
import { AttrCache, type AttrMirror } from '../../../src/fuse/attr-cache.js'

class FakeMirror implements AttrMirror {
  readonly entries = new Map<string, { ino: number, mode: number, ttlMs: number }>()
  set (path: string, st: FileStat, ttlMs: number): void { this.entries.set(path, { ino: st.ino, mode: st.mode, ttlMs }) }
  delete (path: string): void { this.entries.delete(path) }
  clear (): void { this.entries.clear() }
}

function st (ino: number, type: FileStat['type'], mode = 0o755): FileStat {
  return { ino, type, mode, uid: 0, gid: 0, size: 0, nlink: 2, atimeNs: '0', mtimeNs: '0', ctimeNs: '0', replication: 3, blockSize: 0 }
}

t.test('directories are mirrored with the time they have left; files and symlinks never', async t => {
  const clock = new ManualClock()
  const cache = new AttrCache(clock, 1000)
  const m = new FakeMirror()
  cache.set('/old', st(9, 'dir'))
  clock.advance(400)
  cache.setMirror(m)
  t.same(m.entries.get('/old'), { ino: 9, mode: 0o755, ttlMs: 600 }, 'an entry cached before: replayed with its remaining time')
  cache.set('/d', st(2, 'dir'))
  cache.set('/f', st(3, 'file', 0o644))
  cache.set('/l', st(4, 'symlink', 0o777))
  t.same([...m.entries.keys()].sort(), ['/d', '/old'])
  t.equal(m.entries.get('/d')?.ttlMs, 1000)
  clock.advance(700)
  t.equal(cache.get('/old'), undefined, 'expired in the cache')
  t.notOk(m.entries.has('/old'), 'and gone from the mirror')
})

t.test('every way an entry changes or goes reaches the mirror', async t => {
  const clock = new ManualClock()
  const cache = new AttrCache(clock, 1000)
  const m = new FakeMirror()
  cache.setMirror(m)
  cache.set('/a', st(2, 'dir'))
  cache.set('/a/b', st(3, 'dir'))
  cache.set('/a/b/c', st(4, 'dir'))
  cache.set('/z', st(5, 'dir'))
  clock.advance(100)
  cache.patch('/a', d => ({ ...d, mode: 0o700 }))
  t.same(m.entries.get('/a'), { ino: 2, mode: 0o700, ttlMs: 900 }, 'patch: new attributes, same expiry')
  cache.updateIno({ ...st(3, 'dir'), mode: 0o711 })
  t.same(m.entries.get('/a/b'), { ino: 3, mode: 0o711, ttlMs: 1000 }, 'updateIno: new attributes, fresh expiry')
  cache.delete('/z')
  t.notOk(m.entries.has('/z'), 'delete')
  cache.deleteTree('/a')
  t.same([...m.entries.keys()], [], 'deleteTree: the directory and everything under it')
  cache.set('/y', st(6, 'dir'))
  cache.deleteIno(6)
  t.notOk(m.entries.has('/y'), 'deleteIno')
  cache.set('/w', st(7, 'dir'))
  cache.set('/w', st(8, 'file'))
  t.notOk(m.entries.has('/w'), 'a directory replaced by a file at the same path')
  cache.set('/v', st(9, 'dir'))
  cache.patch('/v', d => ({ ...d, ino: 10 }))
  t.notOk(m.entries.has('/v'), 'a patch that changes the inode drops it')
  cache.set('/u', st(11, 'dir'))
  cache.clear()
  t.equal(m.entries.size, 0, 'clear')
  cache.set('/s', st(12, 'dir'))
  const stale = cache.generation
  cache.delete('/other')
  cache.set('/t', st(13, 'dir'), stale)
  t.notOk(m.entries.has('/t'), 'a set refused by the generation check is not mirrored')
  cache.setMirror(undefined)
  t.equal(m.entries.size, 0, 'detaching empties the mirror')
  cache.set('/after', st(14, 'dir'))
  t.equal(m.entries.size, 0, 'and nothing reaches it afterwards')
})

t.test('a zero timeout caches nothing, so mirrors nothing', async t => {
  const cache = new AttrCache(new ManualClock(), 0)
  const m = new FakeMirror()
  cache.setMirror(m)
  cache.set('/d', st(2, 'dir'))
  t.equal(m.entries.size, 0)
})

t.test('a filter decides what is mirrored; unmirrorIno and remirrorIno follow its changing answer', async t => {
  const clock = new ManualClock()
  const cache = new AttrCache(clock, 1000)
  const m = new FakeMirror()
  const open = new Set<number>()
  cache.setMirror(m, s => s.type !== 'file' || !open.has(s.ino))
  cache.set('/f', st(2, 'file', 0o644))
  cache.set('/hard', st(2, 'file', 0o644))
  cache.set('/l', st(3, 'symlink', 0o777))
  t.same([...m.entries.keys()].sort(), ['/f', '/hard', '/l'], 'files and symlinks too, when the filter says so')
  open.add(2)
  cache.unmirrorIno(2)
  t.same([...m.entries.keys()], ['/l'], 'every name of an inode that became unmirrorable is dropped')
  cache.updateIno({ ...st(2, 'file', 0o600), size: 10 })
  t.notOk(m.entries.has('/f'), 'and stays out while the filter refuses it')
  clock.advance(300)
  open.delete(2)
  cache.remirrorIno(2)
  t.same(m.entries.get('/f'), { ino: 2, mode: 0o600, ttlMs: 700 }, 'offered again with its current attributes and remaining time')
  t.ok(m.entries.has('/hard'))
})
