import t from 'tap'
import { ALICE, BOB, ROOT, makeCore } from './helpers.js'
import type { Identity } from '../../../src/nameserver/permissions.js'

const CAROL: Identity = { uid: 1002, gids: [2000] }

t.test('new inodes belong to the caller; setgid dirs pass on their group', async t => {
  const { core } = makeCore(t)
  const ns = core.ns
  ns.mkdir('/home', ROOT, 0o777)
  const f = ns.create('/home/a', ALICE)
  t.equal(f.uid, 1000)
  t.equal(f.gid, 1000, 'primary group')
  ns.mkdir('/shared', ROOT, 0o2777)
  ns.setattr('/shared', ROOT, { gid: 4242 })
  const g = ns.create('/shared/f', ALICE)
  t.equal(g.gid, 4242)
  const d = ns.mkdir('/shared/d', ALICE)
  t.equal(d.mode & 0o2000, 0o2000, 'subdirs inherit setgid')
})

t.test('write and search permission on the parent for namespace changes', async t => {
  const { core } = makeCore(t)
  const ns = core.ns
  t.throws(() => ns.mkdir('/x', ALICE), { code: 'EACCES' }, 'root dir is 0755 root')
  t.throws(() => ns.create('/x', ALICE), { code: 'EACCES' })
  t.throws(() => ns.symlink('/x', 'y', ALICE), { code: 'EACCES' })
  ns.mkdir('/alice', ROOT)
  ns.setattr('/alice', ROOT, { uid: ALICE.uid, gid: 1000, mode: 0o700 })
  ns.create('/alice/secret', ALICE)
  t.throws(() => ns.stat('/alice/secret', BOB), { code: 'EACCES' }, 'no search permission on /alice')
  t.throws(() => ns.list('/alice', BOB), { code: 'EACCES' })
  t.ok(ns.stat('/alice/secret', ROOT), 'superuser passes')
  ns.setattr('/alice', ALICE, { mode: 0o711 })
  t.ok(ns.stat('/alice/secret', BOB), 'search without read: stat works')
  t.throws(() => ns.list('/alice', BOB), { code: 'EACCES' }, 'but list needs read')
  t.throws(() => ns.delete('/alice/secret', BOB), { code: 'EACCES' })
  t.throws(() => ns.rename('/alice/secret', '/alice/other', BOB), { code: 'EACCES' })
  ns.rename('/alice/secret', '/alice/other', ALICE)
  t.ok(ns.stat('/alice/other', ALICE))
})

t.test('write permission on the file to open it for writing; read to get blocks', async t => {
  const { core } = makeCore(t)
  const ns = core.ns
  ns.mkdir('/pub', ROOT, 0o777)
  ns.create('/pub/f', ALICE, 0o640)
  t.throws(() => core.writes.open({ path: '/pub/f', clientId: 'b' }, BOB), { code: 'EACCES' })
  t.throws(() => core.readPlan({ path: '/pub/f' }, BOB), { code: 'EACCES' })
  t.throws(() => core.readPlan({ path: '/pub/f' }, CAROL), { code: 'EACCES' }, 'carol is "other"')
  ns.setattr('/pub/f', ALICE, { gid: 2000 })
  t.equal(core.readPlan({ path: '/pub/f' }, CAROL).stat.size, 0, 'group read once the file is in her group')
  t.ok(core.writes.open({ path: '/pub/f', clientId: 'a' }, ALICE).writeId)
  const ino = ns.stat('/pub/f', ALICE).ino
  t.throws(() => core.writes.open({ ino, clientId: 'b' }, BOB), { code: 'EACCES' }, 'by inode too')
})

t.test('sticky directories: only the owner of the entry or dir, or root', async t => {
  const { core } = makeCore(t)
  const ns = core.ns
  ns.mkdir('/tmp', ROOT, 0o1777)
  ns.create('/tmp/alice', ALICE)
  ns.create('/tmp/alice2', ALICE)
  ns.create('/tmp/bob', BOB)
  t.throws(() => ns.delete('/tmp/alice', BOB), { code: 'EACCES' })
  t.throws(() => ns.rename('/tmp/alice', '/tmp/mine', BOB), { code: 'EACCES' })
  t.throws(() => ns.rename('/tmp/bob', '/tmp/alice', BOB), { code: 'EACCES' }, 'cannot replace another user\'s entry')
  ns.rename('/tmp/bob', '/tmp/bob2', BOB)
  ns.delete('/tmp/alice', ALICE)
  ns.delete('/tmp/alice2', ROOT)
  t.same(ns.list('/tmp', ROOT).map(e => e.name), ['bob2'])
  // The directory's owner may remove anything in it.
  ns.mkdir('/home', ROOT, 0o777)
  ns.mkdir('/home/shared', ALICE, 0o1777)
  ns.create('/home/shared/b', BOB)
  ns.delete('/home/shared/b', ALICE)
  t.throws(() => ns.stat('/home/shared/b', ALICE), { code: 'ENOENT' })
  // Recursive delete checks the sticky bit inside the tree too.
  ns.mkdir('/home/tree', ALICE, 0o1777)
  ns.create('/home/tree/bobs', BOB)
  t.throws(() => ns.delete('/home/tree', CAROL, true), { code: 'EACCES' })
  t.ok(ns.stat('/home/tree/bobs', ROOT), 'a refused recursive delete removes nothing')
})

t.test('chmod by owner only; chown by superuser; chgrp to own groups', async t => {
  const { core } = makeCore(t)
  const ns = core.ns
  ns.mkdir('/p', ROOT, 0o777)
  ns.create('/p/f', ALICE, 0o6755)
  t.throws(() => ns.setattr('/p/f', BOB, { mode: 0o777 }), { code: 'EPERM' })
  t.equal(ns.setattr('/p/f', ALICE, { mode: 0o600 }).mode, 0o600)
  t.throws(() => ns.setattr('/p/f', ALICE, { uid: BOB.uid }), { code: 'EPERM' })
  t.equal(ns.setattr('/p/f', ALICE, { uid: ALICE.uid }).uid, ALICE.uid, 'chown to oneself is a no-op, allowed')
  t.equal(ns.setattr('/p/f', ALICE, { gid: 2000 }).gid, 2000, 'owner may pick one of her groups')
  t.throws(() => ns.setattr('/p/f', ALICE, { gid: 3000 }), { code: 'EPERM' })
  t.throws(() => ns.setattr('/p/f', BOB, { gid: 1001 }), { code: 'EPERM' }, 'non-owner cannot chgrp')
  t.equal(ns.setattr('/p/f', ROOT, { uid: 7, gid: 8 }).uid, 7)
  ns.setattr('/p/f', ROOT, { uid: ALICE.uid, gid: 1000, mode: 0o6755 })
  t.equal(ns.setattr('/p/f', ALICE, { gid: 2000 }).mode, 0o755, 'chgrp by a non-superuser clears setuid/setgid')
  t.equal(ns.setattr('/p/f', ALICE, { mode: 0o2755 }).mode, 0o2755, 'member of the group keeps setgid')
  ns.setattr('/p/f', ROOT, { gid: 4321 })
  t.equal(ns.setattr('/p/f', ALICE, { mode: 0o2755 }).mode, 0o755, 'non-member cannot set setgid')
})

t.test('utimens: owner, or anyone with write permission', async t => {
  const { core } = makeCore(t)
  const ns = core.ns
  ns.mkdir('/p', ROOT, 0o777)
  ns.create('/p/ro', ALICE, 0o644)
  ns.create('/p/rw', ALICE, 0o666)
  t.throws(() => ns.setattr('/p/ro', BOB, { mtimeNs: '5' }), { code: 'EACCES' })
  t.equal(ns.setattr('/p/rw', BOB, { mtimeNs: '5' }).mtimeNs, '5')
  t.equal(ns.setattr('/p/ro', ALICE, { atimeNs: '6' }).atimeNs, '6')
})

t.test('supergroup members are superusers; disabled permissions allow everything', async t => {
  const sg = makeCore(t, { 'permissions.supergroup.gid': 2000 })
  sg.core.ns.mkdir('/admin-made', ALICE)
  t.ok(sg.core.ns.stat('/admin-made', ROOT), 'alice is in group 2000')
  t.throws(() => sg.core.ns.mkdir('/x', BOB), { code: 'EACCES' })

  const off = makeCore(t, { 'permissions.enabled': false })
  off.core.ns.mkdir('/d', ROOT, 0o700)
  off.core.ns.create('/d/f', BOB)
  off.core.ns.setattr('/d/f', ALICE, { uid: 5 })
  t.equal(off.core.ns.stat('/d/f', CAROL).uid, 5)
})
