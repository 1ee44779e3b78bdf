import t from 'tap'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { verifyBlockToken } from '../../../src/common/auth.js'
import { HissError } from '../../../src/common/errors.js'
import type { BlockRef } from '../../../src/common/protocol.js'
import { DB_FILE } from '../../../src/nameserver/namespace-store.js'
import { ALICE, BOB, FakeDs, ROOT, SECRET, cluster, deletesIn, makeCore, writeFile } from './helpers.js'

t.test('a create is invisible until its commit, then has its blocks', async t => {
  const { core, clock } = makeCore(t)
  const dss = cluster(core, 3)
  core.ns.setattr('/', ROOT, { mode: 0o777 })
  const open = core.writes.open({ path: '/f', clientId: 'c1', create: true, mode: 0o600 }, ALICE)
  t.equal(open.ino, 0)
  t.equal(open.replication, 2)
  t.equal(open.blockSize, 64 * 1024)
  t.same(open.blocks, [])
  const add = core.writes.addBlock(open.writeId)
  t.equal(add.targets.length, 2, 'replication targets')
  t.not(add.targets[0]!.id, add.targets[1]!.id)
  t.ok(verifyBlockToken(SECRET, add.token, { b: add.block.id, g: add.block.gen, a: 'w' }, clock.wallNow()), 'write token for this block')
  t.throws(() => core.ns.stat('/f', ROOT), { code: 'ENOENT' }, 'not visible while writing')
  for (const tg of add.targets) dss.find(d => d.id === tg.id)!.received([add.block.id, add.block.gen, 1000])
  const st = await core.writes.commit({ writeId: open.writeId, blocks: [{ ...add.block, length: 1000 }], size: 1000 })
  t.equal(st.size, 1000)
  t.equal(st.uid, ALICE.uid)
  t.equal(st.mode, 0o600)
  const plan = core.readPlan({ path: '/f' }, ALICE)
  t.equal(plan.blocks.length, 1)
  t.equal(plan.blocks[0]!.offset, 0)
  t.same(plan.blocks[0]!.locations.map(l => l.id).sort(), add.targets.map(x => x.id).sort())
  t.ok(verifyBlockToken(SECRET, plan.blocks[0]!.token, { b: add.block.id, g: add.block.gen, a: 'r' }, clock.wallNow()))
  t.throws(() => core.writes.addBlock(open.writeId), { code: 'LEASE_EXPIRED' }, 'session ended with the commit')
})

t.test('commit validation: nothing changes on a bad block list', async t => {
  const { core, clock } = makeCore(t)
  const dss = cluster(core, 2)
  const { blocks: old } = await writeFile(core, dss, '/f', [100])
  const open = core.writes.open({ path: '/f', clientId: 'c1' }, ROOT)
  t.equal(open.size, 100)
  t.same(open.blocks.map(b => b.id), [old[0]!.id], 'current content offered for reuse')
  const add = core.writes.addBlock(open.writeId)
  const nb = { ...add.block, length: 50 }
  dss[0]!.received([nb.id, nb.gen, 50])
  const bad = [
    { what: 'size mismatch', blocks: [old[0]!, nb], size: 149 },
    { what: 'unknown block', blocks: [{ id: 99999, gen: 1, length: 5 }], size: 5 },
    { what: 'wrong gen of current', blocks: [{ ...old[0]!, gen: old[0]!.gen + 1 }], size: 100 },
    { what: 'wrong length of current', blocks: [{ ...old[0]!, length: 99 }], size: 99 },
    { what: 'duplicate', blocks: [nb, nb], size: 100 },
    { what: 'length differs from what was stored', blocks: [{ ...nb, length: 51 }], size: 51 },
  ]
  for (const b of bad) {
    const p = core.writes.commit({ writeId: open.writeId, blocks: b.blocks, size: b.size })
    clock.advance(2000) // past the wait for late reports
    await t.rejects(p, { code: 'EINVAL' }, b.what)
  }
  t.equal(core.ns.stat('/f', ROOT).size, 100, 'file unchanged')
  t.same(core.store.blocksOf(core.ns.stat('/f', ROOT).ino), old)
  const st = await core.writes.commit({ writeId: open.writeId, blocks: [old[0]!, nb], size: 150 })
  t.equal(st.size, 150, 'a valid list (reused + new block) commits')
  t.same(core.readPlan({ path: '/f' }, ROOT).blocks.map(b => [b.id, b.offset, b.length]), [[old[0]!.id, 0, 100], [nb.id, 100, 50]])
})

t.test('commit waits briefly for a DataServer report that is on its way', async t => {
  const { core } = makeCore(t)
  const dss = cluster(core, 2)
  const open = core.writes.open({ path: '/late', clientId: 'c1', create: true, replication: 1 }, ROOT)
  const add = core.writes.addBlock(open.writeId)
  let done = false
  const p = core.writes.commit({ writeId: open.writeId, blocks: [{ ...add.block, length: 10 }], size: 10 }).then(st => { done = true; return st })
  await new Promise(resolve => setImmediate(resolve))
  t.notOk(done, 'waiting')
  dss.find(d => d.id === add.targets[0]!.id)!.received([add.block.id, add.block.gen, 10])
  const st = await p
  t.equal(st.size, 10)
})

t.test('replication.min replicas must report before a commit', async t => {
  const { core, clock } = makeCore(t, { 'replication': 3, 'replication.min': 2 })
  const dss = cluster(core, 3)
  const open = core.writes.open({ path: '/m', clientId: 'c1', create: true }, ROOT)
  const add = core.writes.addBlock(open.writeId)
  const b = { ...add.block, length: 7 }
  dss.find(d => d.id === add.targets[0]!.id)!.received([b.id, b.gen, 7])
  const p = core.writes.commit({ writeId: open.writeId, blocks: [b], size: 7 })
  clock.advance(1500)
  await t.rejects(p, { code: 'EINVAL', message: /needs 2/ })
  dss.find(d => d.id === add.targets[1]!.id)!.received([b.id, b.gen, 7])
  t.equal((await core.writes.commit({ writeId: open.writeId, blocks: [b], size: 7 })).size, 7)
})

t.test('leases: one writer per file, shared by one client, lapse without renewal', async t => {
  const { core, clock } = makeCore(t)
  const dss = cluster(core, 2)
  await writeFile(core, dss, '/f', [10])
  const a = core.writes.open({ path: '/f', clientId: 'A' }, ROOT)
  t.throws(() => core.writes.open({ path: '/f', clientId: 'B' }, ROOT), { code: 'LEASE_HELD' })
  t.throws(() => core.writes.open({ ino: a.ino, clientId: 'B' }, ROOT), { code: 'LEASE_HELD' }, 'by inode too')
  const a2 = core.writes.open({ path: '/f', clientId: 'A' }, ROOT)
  t.not(a2.writeId, a.writeId, 'the same client may open again')
  const c = core.writes.open({ path: '/new', clientId: 'A', create: true }, ROOT)
  t.throws(() => core.writes.open({ path: '/new', clientId: 'B', create: true }, ROOT), { code: 'LEASE_HELD' }, 'an invisible create holds its path')

  clock.advance(3000)
  t.equal(core.writes.renew('A'), 3, 'renewal counts the sessions')
  clock.advance(3000)
  core.checkLeases()
  t.throws(() => core.writes.open({ path: '/f', clientId: 'B' }, ROOT), { code: 'LEASE_HELD' }, 'renewed lease still held')

  // Session a allocates a block, then A goes silent.
  const add = core.writes.addBlock(a.writeId)
  dss[0]!.received([add.block.id, add.block.gen, 5])
  core.startTimers()
  const deletes: Array<[number, number]> = []
  for (let i = 0; i < 6; i++) {
    clock.advance(1000)
    deletes.push(...deletesIn(dss[0]!.heartbeat()))
    dss[1]!.heartbeat()
  }
  t.throws(() => core.writes.addBlock(a.writeId), { code: 'LEASE_EXPIRED' })
  await t.rejects(core.writes.commit({ writeId: c.writeId, blocks: [], size: 0 }), { code: 'LEASE_EXPIRED' })
  const b = core.writes.open({ path: '/f', clientId: 'B' }, ROOT)
  t.ok(b.writeId, 'another client may write once the lease lapsed')
  t.same(deletes, [[add.block.id, add.block.gen]], 'the expired write\'s block is deleted')
  t.throws(() => core.ns.stat('/new', ROOT), { code: 'ENOENT' }, 'the expired create left nothing')
})

t.test('create without overwrite loses to a file made meanwhile; overwrite replaces', async t => {
  const { core } = makeCore(t)
  const dss = cluster(core, 2)
  core.ns.setattr('/', ROOT, { mode: 0o777 })
  const open = core.writes.open({ path: '/race', clientId: 'A', create: true }, ROOT)
  core.ns.create('/race', BOB)
  await t.rejects(core.writes.commit({ writeId: open.writeId, blocks: [], size: 0 }), { code: 'EEXIST' })
  t.throws(() => core.writes.open({ path: '/race', clientId: 'A', create: true }, ROOT), { code: 'EEXIST' })

  const first = await writeFile(core, dss, '/over', [10, 20])
  const second = await writeFile(core, dss, '/over', [30], { overwrite: true })
  t.not(second.stat.ino, first.stat.ino, 'overwrite makes a new file in its place')
  t.equal(core.ns.stat('/over', ROOT).size, 30)
  const dels = dss.flatMap(d => deletesIn(d.heartbeat())).map(x => x[0]).sort()
  t.same(dels, first.blocks.flatMap((b, i) => first.holders[i]!.map(() => b.id)).sort(), 'old blocks deleted from every holder')
})

t.test('a file deleted while being written: the commit succeeds and shows nothing', async t => {
  const { core } = makeCore(t)
  const dss = cluster(core, 2)
  await writeFile(core, dss, '/gone', [10])
  const open = core.writes.open({ path: '/gone', clientId: 'A' }, ROOT)
  const add = core.writes.addBlock(open.writeId)
  for (const tg of add.targets) dss.find(d => d.id === tg.id)!.received([add.block.id, add.block.gen, 4])
  core.ns.delete('/gone', ROOT)
  const st = await core.writes.commit({ writeId: open.writeId, blocks: [{ ...add.block, length: 4 }], size: 4 })
  t.equal(st.nlink, 0)
  t.throws(() => core.ns.stat('/gone', ROOT), { code: 'ENOENT' })
  t.equal(core.blocks.expected.size, 0, 'no block is referenced')
  t.equal(core.blocks.pendingDeletions(), 4, 'old and new replicas queued for deletion')
})

t.test('keepOpen commits, truncation by overwrite, abort', async t => {
  const { core } = makeCore(t)
  const dss = cluster(core, 2)
  const open = core.writes.open({ path: '/k', clientId: 'A', create: true }, ROOT)
  const a1 = core.writes.addBlock(open.writeId)
  for (const tg of a1.targets) dss.find(d => d.id === tg.id)!.received([a1.block.id, a1.block.gen, 8])
  const b1 = { ...a1.block, length: 8 }
  const st1 = await core.writes.commit({ writeId: open.writeId, blocks: [b1], size: 8, keepOpen: true, mtimeNs: '42' })
  t.equal(st1.mtimeNs, '42')
  t.equal(core.ns.stat('/k', ROOT).size, 8, 'visible after the first commit')
  const a2 = core.writes.addBlock(open.writeId)
  for (const tg of a2.targets) dss.find(d => d.id === tg.id)!.received([a2.block.id, a2.block.gen, 3])
  const st2 = await core.writes.commit({ writeId: open.writeId, blocks: [b1, { ...a2.block, length: 3 }], size: 11 })
  t.equal(st2.ino, st1.ino, 'same file')
  t.equal(st2.size, 11)

  const trunc = core.writes.open({ path: '/k', clientId: 'A', overwrite: true }, ROOT)
  t.same(trunc.blocks, [], 'overwrite starts from nothing')
  t.equal(trunc.size, 0)
  t.equal((await core.writes.commit({ writeId: trunc.writeId, blocks: [], size: 0 })).size, 0)
  t.equal(core.ns.stat('/k', ROOT).ino, st1.ino, 'truncation keeps the inode')

  const ab = core.writes.open({ path: '/k', clientId: 'A' }, ROOT)
  const a3 = core.writes.addBlock(ab.writeId)
  dss[0]!.received([a3.block.id, a3.block.gen, 1])
  core.writes.abort(ab.writeId)
  core.writes.abort(ab.writeId)
  t.ok(deletesIn(dss[0]!.heartbeat()).some(([id]) => id === a3.block.id), 'aborted block deleted')
})

t.test('addblock honours the exclude list and fails clearly without room', async t => {
  const { core } = makeCore(t)
  const dss = cluster(core, 3)
  const open = core.writes.open({ path: '/x', clientId: 'A', create: true }, ROOT)
  for (let i = 0; i < 10; i++) {
    const add = core.writes.addBlock(open.writeId, ['ds0', dss[1]!.address])
    t.same(add.targets.map(x => x.id), ['ds2'])
  }
  t.throws(() => core.writes.addBlock(open.writeId, ['ds0', 'ds1', 'ds2']), { code: 'NO_DATASERVERS' })
  for (const d of dss) { d.remaining = 100; d.heartbeat() }
  t.throws(() => core.writes.addBlock(open.writeId), { code: 'ENOSPC' })
  const ids = new Set<number>()
  const gens = new Set<number>()
  for (const d of dss) { d.remaining = 1e9; d.heartbeat() }
  for (let i = 0; i < 5; i++) { const a = core.writes.addBlock(open.writeId); ids.add(a.block.id); gens.add(a.block.gen) }
  t.equal(ids.size, 5, 'fresh block ids')
  t.equal(gens.size, 5, 'fresh generation stamps')
})

t.test('a commit carries a deferred chmod/chown, checked as setattr would check it', async t => {
  const { core } = makeCore(t)
  const dss = cluster(core, 2)
  core.ns.setattr('/', ROOT, { mode: 0o777 })
  const commitWith = async (path: string, who: typeof ALICE, extra: { mode?: number, uid?: number, gid?: number }, create: boolean): Promise<unknown> => {
    const open = core.writes.open({ path, clientId: `c-${path}-${who.uid}`, ...(create ? { create: true, mode: 0o600 } : {}) }, who)
    const add = core.writes.addBlock(open.writeId)
    for (const tg of add.targets) dss.find(d => d.id === tg.id)!.received([add.block.id, add.block.gen, 10])
    try {
      return await core.writes.commit({ writeId: open.writeId, blocks: [{ ...add.block, length: 10 }], size: 10, ...extra })
    } catch (err) {
      core.writes.abort(open.writeId)
      throw err
    }
  }
  // A new file: the group and mode land with its first commit (chown first, as tar does,
  // so the owner's setgid on a group of theirs stays).
  const st = await commitWith('/new', ALICE, { mode: 0o2644, gid: 2000 }, true) as { mode: number, gid: number, uid: number }
  t.same([st.mode, st.uid, st.gid], [0o2644, ALICE.uid, 2000], 'the new file has the committed mode and group')
  t.same([core.ns.stat('/new', ROOT).mode, core.ns.stat('/new', ROOT).gid], [0o2644, 2000], 'and the NameServer keeps them')
  // An existing file: the owner may chmod; a non-member of the group loses setgid.
  await commitWith('/new', ALICE, { mode: 0o640 }, false)
  t.equal(core.ns.stat('/new', ROOT).mode, 0o640)
  // Ids that stay the same need no permission (tar's fchown of its own file).
  await commitWith('/new', ALICE, { uid: ALICE.uid, gid: 2000 }, false)
  t.equal(core.ns.stat('/new', ROOT).uid, ALICE.uid)
  // Not the owner, or giving the file away: EPERM, and the whole commit is refused.
  await writeFile(core, dss, '/bobs', [5], { who: BOB })
  core.ns.setattr('/bobs', BOB, { mode: 0o666 })
  await t.rejects(commitWith('/bobs', ALICE, { mode: 0o777 }, false), { code: 'EPERM' }, 'chmod of another user\'s file')
  await t.rejects(commitWith('/new', ALICE, { uid: BOB.uid }, false), { code: 'EPERM' }, 'chown to another user by a non-superuser')
  await t.rejects(commitWith('/new', ALICE, { gid: 1001 }, false), { code: 'EPERM' }, 'chgrp to a group the owner is not in')
  t.same([core.ns.stat('/bobs', ROOT).mode, core.ns.stat('/bobs', ROOT).size], [0o666, 5], 'refused commit: mode and content unchanged')
  t.same([core.ns.stat('/new', ROOT).uid, core.ns.stat('/new', ROOT).gid, core.ns.stat('/new', ROOT).size], [ALICE.uid, 2000, 10], 'refused commits: owner, group and content unchanged')
  // The superuser may do all of it; a non-superuser's change of owner clears setuid as chown does.
  await commitWith('/bobs', ROOT, { mode: 0o4755, uid: ALICE.uid, gid: 2000 }, false)
  const b = core.ns.stat('/bobs', ROOT)
  t.same([b.mode, b.uid, b.gid], [0o4755, ALICE.uid, 2000], 'superuser: mode, owner and group in one commit')
})

t.test('after a restart, before any DataServer registered: addblock answers SAFE_MODE (retried), not NO_DATASERVERS', async t => {
  const dir = t.testdir()
  const first = makeCore(t, {}, dir)
  await writeFile(first.core, cluster(first.core, 2), '/old', [10])
  first.core.close()

  const { core } = makeCore(t, {}, dir)
  t.equal(core.safeMode.active, true, 'blocks exist: safe mode')
  const open = core.writes.open({ path: '/new', clientId: 'c', create: true }, ROOT)
  t.throws(() => core.writes.addBlock(open.writeId), { code: 'SAFE_MODE' }, 'no DataServer yet')
  const dss = cluster(core, 2)
  t.equal(core.writes.addBlock(open.writeId).targets.length, 2, 'once they register, blocks are placed')
  t.throws(() => core.writes.addBlock(open.writeId, dss.map(d => d.id)), { code: 'NO_DATASERVERS' }, 'every registered one excluded by the client: NO_DATASERVERS')
})

t.test('write sessions survive a restart: the writer goes on and commits what it stored before', async t => {
  const dir = t.testdir()
  const first = makeCore(t, {}, dir)
  const dss1 = cluster(first.core, 2)
  await writeFile(first.core, dss1, '/old', [10])
  const open = first.core.writes.open({ path: '/f', clientId: 'c1', create: true }, ROOT)
  const a = first.core.writes.addBlock(open.writeId)
  for (const tg of a.targets) dss1.find(d => d.id === tg.id)!.received([a.block.id, a.block.gen, 100])
  first.core.close()

  const { core } = makeCore(t, {}, dir)
  t.equal(core.sessions.size, 1, 'the open write is back')
  t.throws(() => core.writes.open({ path: '/f', clientId: 'other', create: true }, ROOT), { code: 'LEASE_HELD' }, 'with its lease')
  // The DataServers report again after the restart; the uncommitted block is being written, not an orphan.
  const held = a.targets.map(x => x.id)
  const dss = ['ds0', 'ds1'].map((id, i) => new FakeDs(core, id, `10.0.0.${i + 1}:${9000 + i}`).register(held.includes(id) ? [[a.block.id, a.block.gen, 100]] : []))
  for (const d of dss) t.same(deletesIn(d.heartbeat()), [], `${d.id} is told to delete nothing`)
  const b = core.writes.addBlock(open.writeId)
  for (const tg of b.targets) dss.find(d => d.id === tg.id)!.received([b.block.id, b.block.gen, 50])
  const st = await core.writes.commit({ writeId: open.writeId, blocks: [{ ...a.block, length: 100 }, { ...b.block, length: 50 }], size: 150 })
  t.equal(st.size, 150, 'the commit lists the block stored before the restart and one after')
  core.close()

  const third = makeCore(t, {}, dir)
  t.equal(third.core.sessions.size, 0, 'a committed write is not brought back')
  t.equal(third.core.ns.stat('/f', ROOT).size, 150)
})

t.test('a restored session whose writer never comes back lapses, and its blocks are freed', async t => {
  const dir = t.testdir()
  const first = makeCore(t, {}, dir)
  const dss1 = cluster(first.core, 2)
  const open = first.core.writes.open({ path: '/g', clientId: 'gone', create: true }, ROOT)
  const a = first.core.writes.addBlock(open.writeId)
  for (const tg of a.targets) dss1.find(d => d.id === tg.id)!.received([a.block.id, a.block.gen, 100])
  first.core.close()

  const { core, clock, cfg } = makeCore(t, {}, dir)
  t.equal(core.sessions.size, 1)
  clock.advance(cfg['lease.timeout.ms'] + 1)
  t.equal(core.checkLeases(), 1, 'the lease lapses')
  t.throws(() => core.writes.addBlock(open.writeId), { code: 'LEASE_EXPIRED' })
  t.equal(core.blocks.writing.has(a.block.id), false, 'its block is no longer being written')
  core.close()
  t.equal(makeCore(t, {}, dir).core.sessions.size, 0, 'and it stays gone')
})

t.test('a session whose record cannot be stored (full disk) is not left holding the lease', async t => {
  const { core } = makeCore(t)
  cluster(core, 1)
  const put = core.store.putSession.bind(core.store)
  // As SQLite reports a full disk inside the transaction (fromNodeError maps SQLITE_FULL).
  core.store.putSession = () => { throw HissError.from('ENOSPC', 'database or disk is full') }
  t.throws(() => core.writes.open({ path: '/f', clientId: 'c1', create: true }, ROOT), { code: 'ENOSPC' }, 'the open fails with the store\'s error')
  t.equal(core.sessions.size, 0, 'no session stays in memory')
  core.store.putSession = put
  const other = core.writes.open({ path: '/f', clientId: 'c2', create: true }, ROOT)
  t.ok(other.writeId, 'another client can open the file: no lease was left behind')
  t.same(core.store.storedSessions().map(s => s.writeId), [other.writeId], 'only the stored session is on disk')
})

t.test('blocks of zeros stored sparse: not counted in allocated; the NameServer keeps the flag', async t => {
  const dir = t.testdir()
  const { core } = makeCore(t, {}, dir)
  const dss = cluster(core, 2)
  /** Store one block of `length` in session `writeId`; `zero`: as the writer flags it. */
  const store = (writeId: string, length: number, zero = false): BlockRef => {
    const add = core.writes.addBlock(writeId)
    for (const tg of add.targets) dss.find(d => d.id === tg.id)!.received([add.block.id, add.block.gen, length])
    return zero ? { id: add.block.id, gen: add.block.gen, length, zero: true } : { id: add.block.id, gen: add.block.gen, length }
  }
  const open = core.writes.open({ path: '/sparse', clientId: 'c1', create: true }, ROOT)
  const hole = store(open.writeId, 1000, true)
  const data = store(open.writeId, 500)
  const tail = store(open.writeId, 300, true)
  const st = await core.writes.commit({ writeId: open.writeId, blocks: [hole, data, tail], size: 1800 })
  t.equal(st.size, 1800)
  t.equal(st.allocated, 500, 'only the data block is allocated')
  t.same(core.store.blocksOf(st.ino), [hole, data, tail], 'the flags are stored with the blocks')
  t.same(core.readPlan({ path: '/sparse' }, ROOT).blocks.map(b => b.zero === true), [true, false, true], 'and handed to readers')

  // A later writer keeps the blocks but says nothing of zeros, and claims the data block
  // is zeros: the stored flags stand.
  const again = core.writes.open({ path: '/sparse', clientId: 'c1' }, ROOT)
  const bare = (b: BlockRef): BlockRef => ({ id: b.id, gen: b.gen, length: b.length })
  const st2 = await core.writes.commit({ writeId: again.writeId, blocks: [bare(hole), { ...bare(data), zero: true }, bare(tail)], size: 1800 })
  t.equal(st2.allocated, 500, 'flags of unchanged blocks are the stored ones')

  // The hole filled with data (a new block in its place): counted.
  const fill = core.writes.open({ path: '/sparse', clientId: 'c1' }, ROOT)
  const filled = store(fill.writeId, 1000)
  const st3 = await core.writes.commit({ writeId: fill.writeId, blocks: [filled, data, tail], size: 1800 })
  t.equal(st3.allocated, 1500)
  t.equal(core.ns.stat('/sparse', ROOT).allocated, 1500, 'stat says the same')
  t.same(core.ns.du('/sparse', ROOT), { files: 1, dirs: 0, bytes: 1800, spaceConsumed: 1500 * st3.replication }, 'du: sizes, and the disk the replicas hold')

  // No zeros left: allocated is absent (the same as size).
  const dense = core.writes.open({ path: '/sparse', clientId: 'c1' }, ROOT)
  const st4 = await core.writes.commit({ writeId: dense.writeId, blocks: [filled, data], size: 1500 })
  t.equal(st4.allocated, undefined)
  t.equal(core.ns.list('/', ROOT).find(e => e.name === 'sparse')?.allocated, undefined, 'nor in a listing')

  // Flags and allocated bytes survive a restart.
  const more = core.writes.open({ path: '/sparse', clientId: 'c1' }, ROOT)
  const z = store(more.writeId, 700, true)
  await core.writes.commit({ writeId: more.writeId, blocks: [filled, data, z], size: 2200 })
  core.close()
  const after = makeCore(t, {}, dir)
  t.equal(after.core.ns.stat('/sparse', ROOT).allocated, 1500, 'after a restart')
  t.same(after.core.store.blocksOf(after.core.ns.stat('/sparse', ROOT).ino).map(b => b.zero === true), [false, false, true])
})

t.test('a namespace written before blocks had a zero flag opens, and its files count as dense', async t => {
  const dir = t.testdir()
  const first = makeCore(t, {}, dir)
  await writeFile(first.core, cluster(first.core, 2), '/old', [100, 50])
  first.core.close()
  // Take the columns away again, as an older version left the database.
  const db = new Database(join(dir, DB_FILE))
  db.exec('ALTER TABLE blocks DROP COLUMN zero; ALTER TABLE inodes DROP COLUMN allocated')
  db.close()
  const { core } = makeCore(t, {}, dir)
  const st = core.ns.stat('/old', ROOT)
  t.equal(st.size, 150)
  t.equal(st.allocated, undefined, 'dense')
  t.same(core.store.blocksOf(st.ino).map(b => b.zero), [undefined, undefined])
})
