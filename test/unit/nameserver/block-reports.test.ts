import t from 'tap'
import type { DataServerCommand } from '../../../src/common/protocol.js'
import { clusterReport, fsck } from '../../../src/nameserver/admin.js'
import { ROOT, FakeDs, cluster, deletesIn, makeCore, writeFile } from './helpers.js'

const hasReplicate = (cmds: DataServerCommand[]): boolean => cmds.some(c => c.type === 'replicate')

t.test('orphan replicas (no file references them) are deleted', async t => {
  const { core } = makeCore(t)
  const dss = cluster(core, 2)
  const { blocks } = await writeFile(core, dss, '/f', [10])
  dss[0]!.report([[blocks[0]!.id, blocks[0]!.gen, 10], [777, 1000, 5]])
  dss[0]!.received([778, 1001, 6])
  t.same(deletesIn(dss[0]!.heartbeat()).sort(), [[777, 1000], [778, 1001]])
  t.same(deletesIn(dss[0]!.heartbeat()), [], 'each deletion is sent once')
  core.ns.delete('/f', ROOT)
  const both = dss.flatMap(d => deletesIn(d.heartbeat()))
  t.equal(both.length, 2, 'a deleted file\'s replicas go from both DataServers')
  t.equal(clusterReport(core).blocks.total, 0)
})

t.test('stale replicas (older generation) are deleted and never handed out', async t => {
  const { core } = makeCore(t, { 'replication': 1 })
  const dss = cluster(core, 2)
  const { blocks, holders } = await writeFile(core, dss, '/f', [10], { replication: 1 })
  const b = blocks[0]!
  const other = dss.find(d => d.id !== holders[0]![0])!
  other.received([b.id, b.gen - 1, 10])
  t.same(deletesIn(other.heartbeat()), [[b.id, b.gen - 1]])
  t.same(core.readPlan({ path: '/f' }, ROOT).blocks[0]!.locations.map(l => l.id), holders[0])
})

t.test('corrupt replicas: never served, re-replicated, deleted once enough good ones exist', async t => {
  const { core, clock } = makeCore(t)
  const dss = cluster(core, 3)
  const { blocks, holders } = await writeFile(core, dss, '/f', [10])
  const b = blocks[0]!
  const [badId, goodId] = holders[0] as [string, string]
  const bad = dss.find(d => d.id === badId)!
  const spare = dss.find(d => !holders[0]!.includes(d.id))!
  bad.corrupt([b.id, b.gen])
  t.same(core.readPlan({ path: '/f' }, ROOT).blocks[0]!.locations.map(l => l.id), [goodId], 'only the good replica is offered')
  let f = fsck(core, '/', ROOT)
  t.equal(f.corrupt, 1)
  t.equal(f.healthy, false)
  t.same(f.entries[0]!.blocks[0]!.replicas.find(r => r.dataserver === badId)!.state, 'corrupt')
  t.equal(clusterReport(core).blocks.corrupt, 1)
  t.equal(clusterReport(core).blocks.underReplicated, 1, 'one good replica of two')

  // A full report that still lists the corrupt replica does not make it good again.
  bad.report([[b.id, b.gen, 10]])
  t.same(core.readPlan({ path: '/f' }, ROOT).blocks[0]!.locations.map(l => l.id), [goodId])

  core.runReplication()
  t.same(deletesIn(bad.heartbeat()), [], 'corrupt replica kept while it is needed for counting')
  const cmds = dss.find(d => d.id === goodId)!.heartbeat()
  const rep = cmds.find(c => c.type === 'replicate')
  t.ok(rep !== undefined && rep.type === 'replicate' && rep.targets[0]!.id === spare.id, 'good replica copied to the spare')
  spare.received([b.id, b.gen, 10])
  clock.advance(1000)
  core.runReplication()
  t.same(deletesIn(bad.heartbeat()), [[b.id, b.gen]], 'then the corrupt one is deleted')
  f = fsck(core, '/', ROOT)
  t.equal(f.corrupt, 0)
  t.equal(f.healthy, true)
  t.equal(f.underReplicated, 0)
})

t.test('clients report bad replicas; a wrong length counts as corrupt', async t => {
  const { core } = makeCore(t)
  const dss = cluster(core, 3)
  const { blocks, holders } = await writeFile(core, dss, '/f', [10])
  const b = blocks[0]!
  const holder = dss.find(d => d.id === holders[0]![0])!
  core.dataservers.badBlock({ block: { id: b.id, gen: b.gen }, dataserver: holder.address })
  // A client cannot condemn a replica (it could be lying): it only goes last in read plans.
  const locs = core.readPlan({ path: '/f' }, ROOT).blocks[0]!.locations
  t.equal(locs.length, holders[0]!.length, 'the reported replica is still offered')
  t.equal(locs[locs.length - 1]!.id, holder.id, 'but last')
  t.equal(fsck(core, '/f', ROOT).corrupt, 0, 'and not counted corrupt')
  t.throws(() => core.dataservers.badBlock({ block: { id: b.id, gen: b.gen }, dataserver: 'who?' }), { code: 'EINVAL' })
  const spare = dss.find(d => !holders[0]!.includes(d.id))!
  spare.received([b.id, b.gen, 9])
  t.equal(fsck(core, '/f', ROOT).entries[0]!.blocks[0]!.replicas.find(r => r.dataserver === spare.id)!.state, 'corrupt')
})

t.test('safe mode after a restart: no deletions or replications until enough blocks reported', async t => {
  const dir = t.testdir()
  const first = makeCore(t, {}, dir)
  const dss1 = cluster(first.core, 3)
  const a = await writeFile(first.core, dss1, '/a', [10])
  const b = await writeFile(first.core, dss1, '/b', [20])
  first.core.close()

  const { core, clock } = makeCore(t, { 'safemode.threshold': 1, 'safemode.extension.ms': 3000 }, dir)
  t.equal(core.ping().safeMode, true, 'blocks exist: safe mode')
  t.equal(clusterReport(core).safeMode, true)
  core.startTimers()
  const dss = ['ds0', 'ds1', 'ds2'].map((id, i) => new FakeDs(core, id, `10.0.0.${i + 1}:${9000 + i}`))
  const tuples = (id: string): Array<[number, number, number]> => [a, b].flatMap(f => f.blocks.filter((_, i) => f.holders[i]!.includes(id)).map(x => [x.id, x.gen, x.length] as [number, number, number]))
  dss[0]!.register([[4242, 1, 1]])
  clock.advance(2000)
  const early = dss[0]!.heartbeat()
  t.same(deletesIn(early), [], 'orphan kept while in safe mode')
  t.notOk(hasReplicate(early), 'no replication in safe mode')
  t.equal(core.readPlan({ path: '/a' }, ROOT).blocks.length, 1, 'reads work in safe mode')
  const w = core.writes.open({ path: '/c', clientId: 'x', create: true }, ROOT)
  t.ok(core.writes.addBlock(w.writeId).targets.length >= 1, 'writes work in safe mode')
  core.writes.abort(w.writeId)

  dss[1]!.register(tuples('ds1'))
  t.equal(core.safeMode.active, true, 'not every block reported yet')
  dss[0]!.report([...tuples('ds0'), [4242, 1, 1]])
  dss[2]!.register(tuples('ds2'))
  const cmds: DataServerCommand[] = []
  clock.advance(1000)
  dss.forEach(d => cmds.push(...d.heartbeat()))
  t.equal(core.safeMode.active, true, 'threshold reached, extension running')
  clock.advance(1000)
  dss.forEach(d => cmds.push(...d.heartbeat()))
  t.same(deletesIn(cmds), [], 'still nothing deleted')
  clock.advance(1000)
  t.equal(core.safeMode.active, false, 'left after the extension')
  t.same(deletesIn(dss[0]!.heartbeat()), [[4242, 1]], 'the orphan is deleted now')
})

t.test('safe mode with a threshold below one, and with no blocks', async t => {
  const empty = makeCore(t, { 'safemode.extension.ms': 100000 })
  t.equal(empty.core.safeMode.active, false, 'no blocks: out at once')

  const dir = t.testdir()
  const first = makeCore(t, {}, dir)
  const dss1 = cluster(first.core, 2)
  const files = []
  for (let i = 0; i < 4; i++) files.push(await writeFile(first.core, dss1, `/f${i}`, [5], { replication: 1 }))
  first.core.close()
  const { core } = makeCore(t, { 'safemode.threshold': 0.5, 'safemode.extension.ms': 0 }, dir)
  const ds0 = new FakeDs(core, 'ds0', '10.0.0.1:9000')
  const mine = files.filter(f => f.holders[0]![0] === 'ds0').map(f => [f.blocks[0]!.id, f.blocks[0]!.gen, 5] as [number, number, number])
  ds0.register(mine)
  t.equal(core.safeMode.active, mine.length / 4 < 0.5, `left iff ${mine.length}/4 blocks >= threshold`)
})

t.test('a quarantined replica stays visible; with no spare its DataServer gets a fresh copy', async t => {
  const { core } = makeCore(t, { 'replication': 3 })
  const dss = cluster(core, 3)
  const { blocks } = await writeFile(core, dss, '/f', [10])
  const b = blocks[0]!
  const [bad, ...good] = dss as [FakeDs, FakeDs, FakeDs]
  bad.corrupt([b.id, b.gen])
  bad.report([]) // quarantined replicas are left out of full reports
  t.equal(fsck(core, '/', ROOT).corrupt, 1, 'still shown as corrupt after a full report')
  t.equal(clusterReport(core).blocks.corrupt, 1)
  core.runReplication()
  const reps = good.flatMap(d => d.heartbeat()).filter(c => c.type === 'replicate')
  t.equal(reps.length, 1)
  t.same(reps[0]!.type === 'replicate' && reps[0]!.targets.map(x => x.id), [bad.id], 'the only place left is the corrupt holder')
  t.same(deletesIn(bad.heartbeat()), [], 'no delete races with the fresh copy')
  bad.received([b.id, b.gen, 10])
  const f = fsck(core, '/', ROOT)
  t.equal(f.healthy, true)
  t.same(f.entries[0]!.blocks[0]!.replicas.map(r => r.state), ['live', 'live', 'live'])
  core.runReplication()
  t.same(deletesIn(bad.heartbeat()), [], 'nothing to delete afterwards')
})

t.test('a DataServer is not a replication target while a delete of that block is in flight', async t => {
  const { core, clock } = makeCore(t, { 'replication': 2 })
  const dss = cluster(core, 3)
  const { blocks, holders } = await writeFile(core, dss, '/f', [10])
  const b = blocks[0]!
  const spare = dss.find(d => !holders[0]!.includes(d.id))!
  // The spare reports a stale copy: a delete is queued for it.
  spare.received([b.id, b.gen - 1, 10])
  const lost = dss.find(d => d.id === holders[0]![0])!
  core.dataservers.unregister(lost.id)
  core.runReplication()
  const keeper = dss.find(d => d.id === holders[0]![1])!
  t.same(keeper.heartbeat().filter(c => c.type === 'replicate'), [], 'spare has a queued delete: not a target yet')
  t.same(deletesIn(spare.heartbeat()), [[b.id, b.gen - 1]])
  clock.advance(1000)
  core.runReplication()
  t.same(keeper.heartbeat().filter(c => c.type === 'replicate'), [], 'delete just sent: still not a target')
  clock.advance(1500)
  core.runReplication()
  const reps = keeper.heartbeat().filter(c => c.type === 'replicate')
  t.same(reps.map(c => c.type === 'replicate' && c.targets[0]!.id), [spare.id], 'after the settle time it is')
})

t.test('equal replicas are offered in an order that differs from block to block', async t => {
  const { core } = makeCore(t, { replication: 3 })
  const dss = cluster(core, 3)
  // Every block reported by the DataServers in the same order (as a chain pipeline does,
  // its tail storing first), all equally idle.
  const open = core.writes.open({ path: '/f', clientId: 'c1', create: true, replication: 3 }, ROOT)
  const blocks: Array<{ id: number, gen: number, length: number }> = []
  for (let i = 0; i < 30; i++) {
    const add = core.writes.addBlock(open.writeId)
    const b = { id: add.block.id, gen: add.block.gen, length: 10 }
    for (const d of dss) d.received([b.id, b.gen, 10])
    blocks.push(b)
  }
  await core.writes.commit({ writeId: open.writeId, blocks, size: 300 })
  const plan = core.readPlan({ path: '/f' }, ROOT)
  t.equal(plan.blocks.length, blocks.length)
  const firsts = new Map<string, number>()
  for (const b of plan.blocks) {
    t.equal(b.locations.length, 3)
    firsts.set(b.locations[0]!.id, (firsts.get(b.locations[0]!.id) ?? 0) + 1)
  }
  t.equal(firsts.size, 3, `every DataServer comes first for some blocks: ${JSON.stringify([...firsts])}`)
  for (const n of firsts.values()) t.ok(n >= 4, 'roughly evenly (at least 4 of 30 each)')
  const again = core.readPlan({ path: '/f' }, ROOT)
  t.same(again.blocks.map(b => b.locations.map(l => l.id)), plan.blocks.map(b => b.locations.map(l => l.id)), 'and the same order for the same block each time (its DataServer\'s cache stays warm)')
})
