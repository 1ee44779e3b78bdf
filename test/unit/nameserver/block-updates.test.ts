// Patching committed blocks in place, on the NameServer core with fake DataServers:
// the new generation is handed out and recorded durably first; replicas reported at it
// are kept aside (not stale) until the commit makes it the block's; a DataServer that
// missed the patch holds a stale replica that is replaced; a writer that disappears is
// settled (rolled back while the committed generation survives, else the patch is kept),
// also across a NameServer restart.
import t from 'tap'
import { verifyBlockToken } from '../../../src/common/auth.js'
import { ROOT, SECRET, FakeDs, cluster, deletesIn, makeCore, writeFile } from './helpers.js'
import type { DataServerCommand } from '../../../src/common/protocol.js'
import { fsck } from '../../../src/nameserver/admin.js'

const replicates = (cmds: DataServerCommand[]): Array<{ id: number, gen: number }> =>
  cmds.flatMap(c => c.type === 'replicate' ? [{ id: c.block.id, gen: c.block.gen }] : [])

/**
 * A file /f of blocks `lengths` on `replication` DataServers (one replica each), opened
 * for writing by c1, with its last block `b` being patched (`up`, the NameServer's reply).
 */
async function patching (t: Parameters<typeof makeCore>[0], replication: number, lengths: number[], dir?: string) {
  const { core, clock } = makeCore(t, { replication }, dir)
  const dss = cluster(core, replication)
  const { blocks } = await writeFile(core, dss, '/f', lengths)
  const b = blocks.at(-1)!
  const open = core.writes.open({ path: '/f', clientId: 'c1' }, ROOT)
  const up = core.updates.begin(open.writeId, { id: b.id, gen: b.gen })
  return { core, clock, dss, blocks, b, open, up }
}

t.test('update, patched replicas reported, commit at the new generation', async t => {
  const { core, clock, dss, blocks, open, up } = await patching(t, 2, [65536, 100])
  const [b0, b1] = blocks as [typeof blocks[0], typeof blocks[0]]
  t.equal(up.block.id, b1.id, 'same block')
  t.ok(up.block.gen > b1.gen, 'new generation')
  t.same(up.from, [b1.gen])
  t.same(up.targets.map(x => x.id).sort(), ['ds0', 'ds1'], 'every replica is in the pipeline')
  const claims = verifyBlockToken(SECRET, up.token, { b: b1.id, g: up.block.gen, a: 'w' }, clock.wallNow())
  t.same(claims.f, [b1.gen], 'update token names the generation it applies to')
  t.same(core.store.pendingUpdates(), [{ id: b1.id, base: b1.gen, first: up.block.gen, last: up.block.gen, owner: open.writeId, tried: [up.block.gen] }], 'recorded durably before any DataServer moves, with its writer')

  // The block grows from 100 to 300 bytes (a write past the end of the last block).
  for (const d of dss) d.received([b1.id, up.block.gen, 300])
  t.same(dss.flatMap(d => deletesIn(d.heartbeat())), [], 'patched replicas are not stale')
  core.runReplication()
  t.same(dss.flatMap(d => replicates(d.heartbeat())), [], 'nor is the block re-replicated meanwhile')
  t.equal(core.readPlan({ path: '/f' }, ROOT).blocks[1]!.gen, b1.gen, 'readers see the committed generation until the commit')

  const st = await core.writes.commit({ writeId: open.writeId, blocks: [b0, { id: b1.id, gen: up.block.gen, length: 300 }], size: 65536 + 300 })
  t.equal(st.size, 65836)
  const plan = core.readPlan({ path: '/f' }, ROOT)
  t.same(plan.blocks.map(b => [b.id, b.gen, b.length]), [[b0.id, b0.gen, 65536], [b1.id, up.block.gen, 300]])
  t.same(plan.blocks[1]!.locations.map(l => l.id).sort(), ['ds0', 'ds1'])
  t.same(core.store.pendingUpdates(), [], 'no longer in flux')
  t.equal(core.blocks.pending.size, 0)
  core.runReplication()
  const cmds = dss.flatMap(d => d.heartbeat())
  t.same(deletesIn(cmds), [])
  t.same(replicates(cmds), [])
  t.ok(fsck(core, '/f', ROOT).healthy, 'fsck healthy')
})

t.test('refusals', async t => {
  const { core } = makeCore(t, { replication: 3 })
  const dss = cluster(core, 3)
  const { blocks } = await writeFile(core, dss, '/f', [100])
  const { blocks: other } = await writeFile(core, dss, '/g', [100])
  const b = blocks[0]!
  const open = core.writes.open({ path: '/f', clientId: 'c1' }, ROOT)
  t.throws(() => core.updates.begin(open.writeId, { id: b.id, gen: b.gen + 1 }), { code: 'EINVAL' }, 'not the committed generation')
  t.throws(() => core.updates.begin(open.writeId, { id: other[0]!.id, gen: other[0]!.gen }), { code: 'EINVAL' }, 'a block of another file')
  t.throws(() => core.updates.begin('nope', { id: b.id, gen: b.gen }), { code: 'LEASE_EXPIRED' })
  const create = core.writes.open({ path: '/new', clientId: 'c1', create: true }, ROOT)
  t.throws(() => core.updates.begin(create.writeId, { id: b.id, gen: b.gen }), { code: 'EINVAL' }, 'a file being created')
  // One replica missing: the client must store the block anew.
  core.dataservers.unregister('ds2')
  t.throws(() => core.updates.begin(open.writeId, { id: b.id, gen: b.gen }), { code: 'NO_DATASERVERS' })
  t.same(core.store.pendingUpdates(), [], 'refusals record nothing')
  dss[2]!.register([[b.id, b.gen, 100], [other[0]!.id, other[0]!.gen, 100]])
  const up = core.updates.begin(open.writeId, { id: b.id, gen: b.gen })
  // A patched length shorter than the block, or a generation never handed out: refused.
  for (const d of dss) d.received([b.id, up.block.gen, 100])
  await t.rejects(core.writes.commit({ writeId: open.writeId, blocks: [{ id: b.id, gen: up.block.gen + 1, length: 100 }], size: 100, keepOpen: true }), { code: 'EINVAL' })
  await t.rejects(core.writes.commit({ writeId: open.writeId, blocks: [{ id: b.id, gen: b.gen, length: 90 }], size: 90, keepOpen: true }), { code: 'EINVAL' })
  // A retry: the second attempt may apply to replicas at the first attempt's generation.
  const again = core.updates.begin(open.writeId, { id: b.id, gen: b.gen })
  t.same(again.from, [b.gen, up.block.gen])
  t.same(core.store.pendingUpdates(), [{ id: b.id, base: b.gen, first: up.block.gen, last: again.block.gen, owner: open.writeId, tried: [up.block.gen, again.block.gen] }])
  // Another session (same client, another handle) may not patch it meanwhile.
  const second = core.writes.open({ path: '/f', clientId: 'c1' }, ROOT)
  t.throws(() => core.updates.begin(second.writeId, { id: b.id, gen: b.gen }), { code: 'EBUSY' })
})

t.test('a DataServer that missed the patch holds a stale replica, which is replaced', async t => {
  const { core, clock, dss, b, open, up } = await patching(t, 3, [100])
  dss[0]!.received([b.id, up.block.gen, 100])
  dss[1]!.received([b.id, up.block.gen, 100])
  await core.writes.commit({ writeId: open.writeId, blocks: [{ id: b.id, gen: up.block.gen, length: 100 }], size: 100 })
  t.same(deletesIn(dss[2]!.heartbeat()), [[b.id, b.gen]], 'the old generation on ds2 is deleted')
  clock.advance(3000) // the delete settles before ds2 may be a target again
  core.runReplication()
  t.same(dss.flatMap(d => replicates(d.heartbeat())), [{ id: b.id, gen: up.block.gen }], 'and the new one copied there')
})

t.test('a writer that leaves without committing', async t => {
  await t.test('every replica moved: the patch is kept (the block is never lost)', async t => {
    const dir = t.testdir()
    const first = await patching(t, 2, [65536, 100], dir)
    const { blocks, b, up } = first
    // The NameServer is killed after both DataServers applied the patch, before the commit.
    first.core.close()
    const { core, clock } = makeCore(t, {}, dir)
    t.equal(core.blocks.pending.size, 1, 'the update is known after a restart')
    const dss = ['ds0', 'ds1'].map((id, i) => new FakeDs(core, id, `10.0.0.${i + 1}:${9000 + i}`))
    for (const d of dss) d.register([[blocks[0]!.id, blocks[0]!.gen, 65536], [b.id, up.block.gen, 150]])
    core.checkSafeMode()
    t.equal(core.safeMode.active, false, 'patched replicas count for safe mode')
    t.same(dss.flatMap(d => deletesIn(d.heartbeat())), [], 'patched replicas are not deleted as stale')
    core.runReplication()
    t.equal(core.blocks.pending.size, 1, 'the writer\'s session came back: its patch waits for it')
    // The writer never returns: its restored lease lapses.
    clock.advance(6000)
    core.checkLeases()
    core.runReplication()
    const plan = core.readPlan({ path: '/f' }, ROOT)
    t.same(plan.blocks[1] && [plan.blocks[1].id, plan.blocks[1].gen, plan.blocks[1].length], [b.id, up.block.gen, 150], 'the newest patched generation became the block\'s')
    t.equal(plan.stat.size, 65536 + 150, 'and the file size follows its length')
    t.equal(plan.blocks[1]!.locations.length, 2)
    t.same(core.store.pendingUpdates(), [])
  })

  await t.test('a replica of the committed generation survives: the patch is rolled back', async t => {
    const { core, clock, dss, b, up } = await patching(t, 3, [100])
    dss[0]!.received([b.id, up.block.gen, 100])
    core.runReplication()
    t.equal(core.blocks.pending.size, 1, 'the writer is alive: nothing settled')
    // The writer's lease lapses.
    clock.advance(6000)
    core.checkLeases()
    core.runReplication()
    t.equal(core.blocks.pending.size, 0, 'settled')
    t.same(core.store.pendingUpdates(), [])
    t.equal(core.readPlan({ path: '/f' }, ROOT).blocks[0]!.gen, b.gen, 'the committed generation stays')
    t.same(deletesIn(dss[0]!.heartbeat()), [[b.id, up.block.gen]], 'the patched replica is deleted')
  })
})

t.test('a patch in flight rides out a NameServer restart', async t => {
  const dir = t.testdir()
  const first = await patching(t, 2, [65536, 100], dir)
  const { blocks, b, open, up } = first
  // Both DataServers applied the patch; the NameServer is killed before the commit.
  first.core.close()
  const { core } = makeCore(t, {}, dir)
  const dss = ['ds0', 'ds1'].map((id, i) => new FakeDs(core, id, `10.0.0.${i + 1}:${9000 + i}`))
  for (const d of dss) d.register([[blocks[0]!.id, blocks[0]!.gen, 65536], [b.id, up.block.gen, 150]])
  core.checkSafeMode()
  core.runReplication()
  t.equal(core.blocks.pending.size, 1, 'not settled while its writer is back')
  t.same(dss.flatMap(d => deletesIn(d.heartbeat())), [], 'nothing deleted')
  // A second attempt after the restart still names the first one's generation.
  const again = core.updates.begin(open.writeId, { id: b.id, gen: b.gen })
  t.same(again.from, [b.gen, up.block.gen], 'the generations handed out before the restart are remembered')
  // The writer commits the first attempt's generation, as a client whose patch completed does.
  const st = await core.writes.commit({ writeId: open.writeId, blocks: [blocks[0]!, { id: b.id, gen: up.block.gen, length: 150 }], size: 65536 + 150 })
  t.equal(st.size, 65536 + 150, 'the commit of the patched block is accepted')
  const plan = core.readPlan({ path: '/f' }, ROOT)
  t.same(plan.blocks.map(x => [x.id, x.gen, x.length]), [[blocks[0]!.id, blocks[0]!.gen, 65536], [b.id, up.block.gen, 150]])
  t.equal(plan.blocks[1]!.locations.length, 2, 'on both DataServers')
  t.same(core.store.pendingUpdates(), [], 'no longer in flux')
  t.equal(core.blocks.pending.size, 0)
})

t.test('a patch row written before owners were stored is settled as ownerless', async t => {
  const dir = t.testdir()
  const first = await patching(t, 2, [100], dir)
  const { b, up } = first
  // As an older NameServer left it: no owner, no generations.
  first.core.store.transaction(() => { first.core.store.setPendingUpdate({ id: b.id, base: b.gen, first: up.block.gen, last: up.block.gen, owner: null, tried: [] }) })
  await first.core.store.whenDurable()
  first.core.close()
  const { core } = makeCore(t, {}, dir)
  t.equal(core.blocks.pending.get(b.id)?.owner, undefined, 'no owner')
  const dss = ['ds0', 'ds1'].map((id, i) => new FakeDs(core, id, `10.0.0.${i + 1}:${9000 + i}`))
  for (const d of dss) d.register([[b.id, b.gen, 100]])
  core.checkSafeMode()
  core.runReplication()
  t.equal(core.blocks.pending.size, 0, 'rolled back at once: the committed generation survives')
})
