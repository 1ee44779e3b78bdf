import t from 'tap'
import { ALICE, ROOT, makeCore } from './helpers.js'

t.test('root directory exists from the first start', async t => {
  const { core } = makeCore(t)
  const st = core.ns.stat('/', ROOT)
  t.equal(st.ino, 1)
  t.equal(st.type, 'dir')
  t.equal(st.mode, 0o755)
  t.equal(st.uid, 0)
  t.equal(st.gid, 0)
  t.equal(st.nlink, 2)
})

t.test('mkdir, mkdir -p and their errors', async t => {
  const { core } = makeCore(t)
  const ns = core.ns
  const a = ns.mkdir('/a', ROOT)
  t.equal(a.type, 'dir')
  t.throws(() => ns.mkdir('/a', ROOT), { code: 'EEXIST' })
  t.throws(() => ns.mkdir('/x/y', ROOT), { code: 'ENOENT' })
  const deep = ns.mkdir('/a/b/c/d', ROOT, 0o700, true)
  t.equal(deep.mode, 0o700)
  t.equal(ns.stat('/a/b', ROOT).mode, 0o700 | 0o300, 'intermediate dirs stay usable by their owner')
  t.same(ns.mkdir('/a/b/c/d', ROOT, 0o700, true).ino, deep.ino, 'mkdir -p of an existing dir returns it')
  t.equal(ns.mkdir('/', ROOT, 0o755, true).ino, 1)
  ns.create('/a/file', ROOT)
  t.throws(() => ns.mkdir('/a/file/sub', ROOT, 0o755, true), { code: 'ENOTDIR' })
  t.throws(() => ns.mkdir('/a/file', ROOT, 0o755, true), { code: 'EEXIST' })
  t.equal(ns.stat('/a', ROOT).nlink, 3, 'nlink counts subdirectories')
})

t.test('create: empty file, exclusive, on a directory', async t => {
  const { core, clock } = makeCore(t)
  const ns = core.ns
  const before = ns.stat('/', ROOT).mtimeNs
  clock.advance(1500)
  const f = ns.create('/f', ROOT, 0o600)
  t.equal(f.type, 'file')
  t.equal(f.size, 0)
  t.equal(f.mode, 0o600)
  t.equal(f.nlink, 1)
  t.not(ns.stat('/', ROOT).mtimeNs, before, 'parent mtime moves on create')
  t.equal(BigInt(ns.stat('/', ROOT).mtimeNs) - BigInt(before), 1500n * 1000000n, 'times are ns from the clock')
  t.equal(ns.create('/f', ROOT).ino, f.ino, 'non-exclusive create of an existing file returns it')
  t.throws(() => ns.create('/f', ROOT, 0o644, true), { code: 'EEXIST' })
  ns.mkdir('/d', ROOT)
  t.throws(() => ns.create('/d', ROOT), { code: 'EISDIR' })
  t.throws(() => ns.create('/nope/f', ROOT), { code: 'ENOENT' })
  t.throws(() => ns.create('/f/g', ROOT), { code: 'ENOTDIR' })
})

t.test('list is sorted by name bytes and returns full stats', async t => {
  const { core } = makeCore(t)
  const ns = core.ns
  for (const n of ['b', 'a', 'C', 'ä', 'a b']) ns.create(`/${n}`, ROOT)
  ns.mkdir('/dir', ROOT)
  const names = ns.list('/', ROOT).map(e => e.name)
  t.same(names, ['C', 'a', 'a b', 'b', 'dir', 'ä'])
  const dir = ns.list('/', ROOT).find(e => e.name === 'dir')!
  t.equal(dir.type, 'dir')
  t.equal(dir.nlink, 2)
  t.throws(() => ns.list('/a', ROOT), { code: 'ENOTDIR' })
  t.throws(() => ns.list('/missing', ROOT), { code: 'ENOENT' })
})

t.test('delete: files, empty and non-empty directories, root', async t => {
  const { core } = makeCore(t)
  const ns = core.ns
  ns.mkdir('/d/e/f', ROOT, 0o755, true)
  ns.create('/d/e/f/x', ROOT)
  ns.create('/g', ROOT)
  ns.delete('/g', ROOT)
  t.throws(() => ns.stat('/g', ROOT), { code: 'ENOENT' })
  t.throws(() => ns.delete('/g', ROOT), { code: 'ENOENT' })
  t.throws(() => ns.delete('/d', ROOT), { code: 'ENOTEMPTY' })
  t.ok(ns.stat('/d/e/f/x', ROOT), 'nothing removed by a refused delete')
  ns.delete('/d', ROOT, true)
  t.throws(() => ns.stat('/d', ROOT), { code: 'ENOENT' })
  t.equal(core.store.count(), 1, 'only the root is left')
  t.throws(() => ns.delete('/', ROOT, true), { code: 'EBUSY' })
  ns.mkdir('/empty', ROOT)
  ns.delete('/empty', ROOT)
  t.throws(() => ns.stat('/empty', ROOT), { code: 'ENOENT' })
})

t.test('rename: POSIX replacement rules, keeps the inode', async t => {
  const { core } = makeCore(t)
  const ns = core.ns
  const f = ns.create('/f', ROOT)
  ns.mkdir('/d1/sub', ROOT, 0o755, true)
  ns.mkdir('/d2', ROOT)
  ns.mkdir('/empty', ROOT)
  ns.create('/g', ROOT)

  const moved = ns.rename('/f', '/d2/f2', ROOT)
  t.equal(moved.ino, f.ino, 'inode is stable across rename')
  t.throws(() => ns.stat('/f', ROOT), { code: 'ENOENT' })
  t.equal(ns.stat('/d2/f2', ROOT).ino, f.ino)

  const g = ns.stat('/g', ROOT)
  ns.rename('/g', '/d2/f2', ROOT)
  t.equal(ns.stat('/d2/f2', ROOT).ino, g.ino, 'a file replaces a file')
  t.equal(ns.list('/d2', ROOT).length, 1)

  t.throws(() => ns.rename('/d1', '/d2/f2', ROOT), { code: 'ENOTDIR' }, 'dir over file')
  ns.create('/h', ROOT)
  t.throws(() => ns.rename('/h', '/empty', ROOT), { code: 'EISDIR' }, 'file over dir')
  t.throws(() => ns.rename('/d2', '/d1', ROOT), { code: 'ENOTEMPTY' }, 'dir over non-empty dir')
  t.throws(() => ns.rename('/d1', '/d1/sub/x', ROOT), { code: 'EINVAL' }, 'dir into its own subtree')
  t.throws(() => ns.rename('/d1', '/d1/x', ROOT), { code: 'EINVAL' })
  t.throws(() => ns.rename('/h', '/d2/f2', ROOT, true), { code: 'EEXIST' }, 'noReplace')
  t.throws(() => ns.rename('/nope', '/x', ROOT), { code: 'ENOENT' })
  t.throws(() => ns.rename('/h', '/nope/x', ROOT), { code: 'ENOENT' })
  t.throws(() => ns.rename('/', '/x', ROOT), { code: 'EBUSY' })

  const d2 = ns.stat('/d2', ROOT)
  ns.rename('/d2', '/empty', ROOT)
  t.equal(ns.stat('/empty', ROOT).ino, d2.ino, 'a dir replaces an empty dir')
  t.equal(ns.stat('/empty/f2', ROOT).ino, g.ino, 'children follow their dir')
  t.equal(ns.rename('/h', '/h', ROOT).ino, ns.stat('/h', ROOT).ino, 'rename onto itself is a no-op')
  t.equal(ns.stat('/', ROOT).nlink, 2 + 2, 'root has d1 and empty')
})

t.test('symlinks: final and intermediate, relative with .., loops', async t => {
  const { core } = makeCore(t)
  const ns = core.ns
  ns.mkdir('/a/b', ROOT, 0o755, true)
  ns.create('/a/b/file', ROOT)
  const fileIno = ns.stat('/a/b/file', ROOT).ino
  const l = ns.symlink('/a/abs', '/a/b/file', ROOT)
  t.equal(l.type, 'symlink')
  t.equal(l.target, '/a/b/file')
  t.equal(l.size, '/a/b/file'.length)
  t.equal(ns.stat('/a/abs', ROOT).ino, fileIno, 'stat follows the final symlink')
  t.equal(ns.stat('/a/abs', ROOT, true).type, 'symlink', 'nofollow')
  t.equal(ns.readlink('/a/abs', ROOT), '/a/b/file')
  t.throws(() => ns.readlink('/a/b/file', ROOT), { code: 'EINVAL' })

  ns.symlink('/a/rel', 'b', ROOT)
  t.equal(ns.stat('/a/rel/file', ROOT).ino, fileIno, 'relative target, intermediate component')
  ns.symlink('/a/b/up', '../b/./file', ROOT)
  t.equal(ns.stat('/a/b/up', ROOT).ino, fileIno, '".." resolves lexically against the link dir')
  ns.symlink('/escape', '../../../a/b/file', ROOT)
  t.equal(ns.stat('/escape', ROOT).ino, fileIno, '".." above the root stays at the root')
  ns.symlink('/rootlink', '/', ROOT)
  t.equal(ns.stat('/rootlink', ROOT).ino, 1)
  t.equal(ns.list('/rootlink/a', ROOT).length, 3, 'b, abs, rel')

  ns.symlink('/loop1', '/loop2', ROOT)
  ns.symlink('/loop2', '/loop1', ROOT)
  t.throws(() => ns.stat('/loop1', ROOT), { code: 'ELOOP' })
  t.equal(ns.stat('/loop1', ROOT, true).type, 'symlink', 'nofollow does not loop')
  ns.symlink('/dangling', '/nothing/here', ROOT)
  t.throws(() => ns.stat('/dangling', ROOT), { code: 'ENOENT' })
  t.throws(() => ns.symlink('/a/abs', 'x', ROOT), { code: 'EEXIST' })

  // A chain of 40 links resolves; 41 is too many.
  let prev = '/a/b/file'
  for (let i = 0; i < 41; i++) { ns.symlink(`/c${i}`, prev, ROOT); prev = `/c${i}` }
  t.equal(ns.stat('/c39', ROOT).ino, fileIno)
  t.throws(() => ns.stat('/c40', ROOT), { code: 'ELOOP' })

  ns.delete('/a/abs', ROOT)
  t.equal(ns.stat('/a/b/file', ROOT).ino, fileIno, 'deleting a link leaves its target')
  const renamed = ns.rename('/a/rel', '/a/rel2', ROOT)
  t.equal(renamed.type, 'symlink', 'rename moves the link itself')
})

t.test('setattr: times, mode, ctime', async t => {
  const { core, clock } = makeCore(t)
  const ns = core.ns
  const f = ns.create('/f', ROOT)
  clock.advance(2000)
  const st = ns.setattr('/f', ROOT, { mode: 0o4755, atimeNs: '123456789012345678', mtimeNs: '1' })
  t.equal(st.mode, 0o4755)
  t.equal(st.atimeNs, '123456789012345678')
  t.equal(st.mtimeNs, '1')
  t.ok(BigInt(st.ctimeNs) > BigInt(f.ctimeNs), 'ctime moves')
  t.same(ns.stat('/f', ROOT), st, 'persisted')
  const own = ns.setattr('/f', ROOT, { uid: 5, gid: 6 })
  t.equal(own.uid, 5)
  t.equal(own.gid, 6)
})

t.test('setrep and du over a tree', async t => {
  const { core } = makeCore(t)
  const ns = core.ns
  ns.mkdir('/t/u', ROOT, 0o755, true)
  ns.create('/t/a', ROOT)
  ns.create('/t/u/b', ROOT)
  ns.symlink('/t/l', '/t/a', ROOT)
  t.equal(ns.setrep('/t', ROOT, 3), 2, 'files in the subtree')
  t.equal(ns.stat('/t/u/b', ROOT).replication, 3)
  t.equal(ns.setrep('/t/a', ROOT, 1), 1)
  t.same(ns.du('/t', ROOT), { files: 2, dirs: 2, bytes: 0, spaceConsumed: 0 })
})

t.test('the namespace survives a reopen; ids keep growing', async t => {
  const dir = t.testdir()
  const first = makeCore(t, {}, dir)
  first.core.ns.mkdir('/keep/me', ROOT, 0o750, true)
  const f = first.core.ns.create('/keep/me/f', ROOT)
  first.core.ns.setattr('/keep/me/f', ROOT, { uid: ALICE.uid })
  first.core.ns.symlink('/keep/l', 'me/g', ROOT)
  first.core.ns.rename('/keep/me/f', '/keep/me/g', ROOT)
  first.core.close()
  const second = makeCore(t, {}, dir)
  const ns = second.core.ns
  t.equal(ns.stat('/keep/me', ROOT).mode, 0o750)
  t.equal(ns.stat('/keep/me/g', ROOT).ino, f.ino)
  t.equal(ns.stat('/keep/me/g', ROOT).uid, ALICE.uid)
  t.equal(ns.stat('/keep/l', ROOT).ino, f.ino)
  t.ok(ns.create('/new', ROOT).ino > f.ino, 'inode counter continues')
})

t.test('a second core on the same directory is refused', async t => {
  const dir = t.testdir()
  makeCore(t, {}, dir)
  t.throws(() => makeCore(t, {}, dir), { code: 'CONFIG', message: /in use/ })
})

t.test('the root dir is a required key', async t => {
  const { parseConfig } = await import('../../../src/common/config.js')
  const { NameServerCore } = await import('../../../src/nameserver/core.js')
  const { ManualClock } = await import('../../../src/common/clock.js')
  const { silentLogger } = await import('../../../src/common/log.js')
  const cfg = parseConfig({ 'nameserver.address': '127.0.0.1:0', 'security.insecure': true })
  t.throws(() => new NameServerCore(cfg, { clock: new ManualClock(), log: silentLogger }), { code: 'CONFIG', message: /nameserver\.root\.dir/ })
})
