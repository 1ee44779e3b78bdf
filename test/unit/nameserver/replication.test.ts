import t from 'tap'
import { verifyBlockToken } from '../../../src/common/auth.js'
import type { BlockRef, DataServerCommand } from '../../../src/common/protocol.js'
import { clusterReport } from '../../../src/nameserver/admin.js'
import { ROOT, SECRET, cluster, deletesIn, makeCore, writeFile } from './helpers.js'

type Replicate = Extract<DataServerCommand, { type: 'replicate' }>
const replicates = (cmds: DataServerCommand[]): Replicate[] => cmds.filter((c): c is Replicate => c.type === 'replicate')
type Zero = Extract<DataServerCommand, { type: 'zero' }>
const bare = (b: BlockRef): BlockRef => ({ id: b.id, gen: b.gen, length: b.length })

t.test('registration and heartbeats; unknown DataServers are told to re-register', async t => {
  const { core } = makeCore(t)
  const r = core.dataservers.heartbeat({ id: 'x', address: '10.0.0.9:1', blocks: 0, capacity: 1, used: 0, remaining: 1, activeStreams: 0 })
  t.same(r, { reregister: true, commands: [] })
  const reg = core.dataservers.register({ id: 'x', address: '10.0.0.9:1', capacity: 100, used: 10, remaining: 90, activeStreams: 0 })
  t.same(reg, { ok: true, blockReportNow: true })
  t.same(core.dataservers.heartbeat({ id: 'x', address: '10.0.0.9:1', blocks: 0, capacity: 100, used: 10, remaining: 90, activeStreams: 0 }), { commands: [] })
  t.same(core.statfs(), { capacity: 100, used: 10, remaining: 90, files: 1, blockSize: 64 * 1024 })
  t.equal(core.ping().liveDataServers, 1)
  t.throws(() => core.dataservers.blockReport({ id: 'nobody', blocks: [] }), { code: 'EAGAIN' }, 'reports need a registration')
})

t.test('a silent DataServer dies after heartbeat.dead.ms; its blocks are re-replicated', async t => {
  const { core, clock } = makeCore(t)
  const dss = cluster(core, 3)
  const { blocks, holders } = await writeFile(core, dss, '/f', [1000, 2000])
  t.same(holders.map(h => h.length), [2, 2])
  core.startTimers()
  // Pick a DataServer holding the first block and let it go silent.
  const victimId = holders[0]![0]!
  const alive = dss.filter(d => d.id !== victimId)
  const beat = (): DataServerCommand[] => alive.flatMap(d => d.heartbeat())
  let cmds: DataServerCommand[] = []
  for (let i = 0; i < 9; i++) { clock.advance(1000); cmds.push(...beat()) }
  t.ok(core.registry.isLive(victimId), 'still live at 9 s')
  t.same(replicates(cmds), [], 'nothing to replicate while all are live')
  clock.advance(1000); beat()
  clock.advance(1000)
  t.notOk(core.registry.isLive(victimId), 'dead after 10 s without heartbeat')
  const report = clusterReport(core)
  t.equal(report.dataservers.find(d => d.id === victimId)!.state, 'dead')
  const lost = blocks.filter((_, i) => holders[i]!.includes(victimId))
  t.equal(report.blocks.underReplicated, lost.length)
  t.equal(report.blocks.missing, 0)
  t.equal(core.readPlan({ path: '/f' }, ROOT).blocks[0]!.locations.some(l => l.id === victimId), false, 'dead replicas are not handed out')

  cmds = []
  for (let i = 0; i < 2; i++) { clock.advance(1000); cmds.push(...beat()) }
  const reps = replicates(cmds)
  t.equal(reps.length, lost.length, 'one replicate command per lost replica')
  for (const rep of reps) {
    const b = blocks.find(x => x.id === rep.block.id)!
    t.same(rep.block, b, 'the block as committed')
    t.equal(rep.targets.length, 1)
    t.not(rep.targets[0]!.id, victimId)
    t.notOk(holders[blocks.indexOf(b)]!.includes(rep.targets[0]!.id), 'target does not hold it yet')
    t.ok(verifyBlockToken(SECRET, rep.token, { b: b.id, g: b.gen, a: 'w' }, clock.wallNow()), 'write token for the target')
    dss.find(d => d.id === rep.targets[0]!.id)!.received([b.id, b.gen, b.length])
  }
  clock.advance(1000)
  t.same(replicates(beat()), [], 'no repeat once the targets reported')
  const after = clusterReport(core)
  t.equal(after.blocks.underReplicated, 0)
  t.equal(after.pendingReplications, 0)

  // The dead DataServer comes back: heartbeats are refused until it registers again.
  const victim = dss.find(d => d.id === victimId)!
  t.throws(() => victim.heartbeat(), /re-register/)
  victim.register(lost.map(b => [b.id, b.gen, b.length]))
  clock.advance(1000)
  const extra = beat().concat(victim.heartbeat())
  t.equal(deletesIn(extra).length, lost.length, 'now over-replicated: the excess is trimmed')
})

t.test('pending replications time out and are retried; streams per source are bounded', async t => {
  const { core, clock } = makeCore(t, { 'replication.max.streams': 1, 'replication': 1 })
  const dss = cluster(core, 2)
  const files = []
  for (let i = 0; i < 3; i++) files.push(await writeFile(core, dss, `/f${i}`, [100], { replication: 1 }))
  // All on one source? Make it so: raise replication to 2 for blocks held by ds0 only.
  const onDs0 = files.filter(f => f.holders[0]![0] === 'ds0')
  const onDs1 = files.filter(f => f.holders[0]![0] === 'ds1')
  core.ns.setrep('/', ROOT, 2)
  core.runReplication()
  const c0 = replicates(dss[0]!.heartbeat())
  const c1 = replicates(dss[1]!.heartbeat())
  t.equal(c0.length, Math.min(1, onDs0.length), 'at most max.streams per source')
  t.equal(c1.length, Math.min(1, onDs1.length))
  core.runReplication()
  t.equal(replicates(dss[0]!.heartbeat()).length, 0, 'source busy: no second command')
  clock.advance(5001) // replication.pending.timeout.ms
  dss.forEach(d => d.heartbeat())
  core.runReplication()
  const again = replicates(dss[0]!.heartbeat()).concat(replicates(dss[1]!.heartbeat()))
  t.equal(again.length, c0.length + c1.length, 'unconfirmed replications are retried')
})

t.test('unregister drops replicas at once; missing blocks are reported', async t => {
  const { core } = makeCore(t, { 'replication': 1 })
  const dss = cluster(core, 1)
  await writeFile(core, dss, '/solo', [10], { replication: 1 })
  core.dataservers.unregister('ds0')
  const report = clusterReport(core)
  t.equal(report.blocks.missing, 1)
  t.equal(report.dataservers[0]!.state, 'dead')
  t.same(core.readPlan({ path: '/solo' }, ROOT).blocks[0]!.locations, [], 'no location for a missing block')
  t.throws(() => dss[0]!.heartbeat(), /re-register/)
})

t.test('setrep down trims from the fullest DataServer; up adds replicas', async t => {
  const { core, clock } = makeCore(t, { 'replication': 3 })
  const dss = cluster(core, 4)
  const { blocks, holders } = await writeFile(core, dss, '/f', [10])
  t.equal(holders[0]!.length, 3)
  const fullest = holders[0]!.map(id => dss.find(d => d.id === id)!)
  fullest[1]!.remaining = 1000
  fullest.forEach(d => d.heartbeat())
  t.equal(core.ns.setrep('/f', ROOT, 2), 1)
  clock.advance(1)
  core.runReplication()
  const dels = dss.flatMap(d => deletesIn(d.heartbeat()).map(x => ({ ds: d.id, id: x[0] })))
  t.same(dels, [{ ds: fullest[1]!.id, id: blocks[0]!.id }], 'one excess replica, from the one with least space')
  t.equal(core.readPlan({ path: '/f' }, ROOT).blocks[0]!.locations.length, 2)
  core.ns.setrep('/f', ROOT, 4)
  core.runReplication()
  const reps = dss.flatMap(d => replicates(d.heartbeat()))
  t.equal(reps.length, 1)
  const never = dss.find(d => !holders[0]!.includes(d.id))!
  t.same(reps[0]!.targets.map(x => x.id), [never.id], 'the just-trimmed DataServer waits until its delete settled')
  never.received([blocks[0]!.id, blocks[0]!.gen, 10])
  clock.advance(2001)
  core.runReplication()
  const later = dss.flatMap(d => replicates(d.heartbeat()))
  t.same(later.flatMap(r => r.targets.map(x => x.id)), [fullest[1]!.id], 'then it gets a copy again')

  // Two missing replicas go out as one pipelined command.
  const p = makeCore(t, { 'replication': 1 })
  const pd = cluster(p.core, 3)
  await writeFile(p.core, pd, '/g', [10], { replication: 1 })
  p.core.ns.setrep('/g', ROOT, 3)
  p.core.runReplication()
  const piped = pd.flatMap(d => replicates(d.heartbeat()))
  t.equal(piped.length, 1)
  t.equal(piped[0]!.targets.length, 2, 'two more replicas in one command (pipeline)')
})

t.test('replicas spread over hosts when several exist', async t => {
  const { core } = makeCore(t, { 'replication': 2 })
  const dss = cluster(core, 6, { hosts: 2 })
  for (let i = 0; i < 20; i++) {
    const { holders } = await writeFile(core, dss, `/h${i}`, [1])
    const hosts = holders[0]!.map(id => dss.find(d => d.id === id)!.address.split(':')[0])
    t.not(hosts[0], hosts[1], `file ${i} on two hosts`)
  }
})

t.test('a block of zeros with every replica lost is made anew; a lost data block is not', async t => {
  const dir = t.testdir()
  const { core, clock } = makeCore(t, {}, dir)
  const dss = cluster(core, 3)
  const open = core.writes.open({ path: '/holes', clientId: 'c1', create: true }, ROOT)
  const stored: BlockRef[] = []
  for (const [length, zero] of [[1000, true], [500, false]] as const) {
    const add = core.writes.addBlock(open.writeId)
    for (const tg of add.targets) dss.find(d => d.id === tg.id)!.received([add.block.id, add.block.gen, length])
    stored.push(zero ? { id: add.block.id, gen: add.block.gen, length, zero: true } : { id: add.block.id, gen: add.block.gen, length })
  }
  await core.writes.commit({ writeId: open.writeId, blocks: stored, size: 1500 })
  const hole = stored[0]!

  // Every DataServer reports that it holds nothing any more (disks replaced).
  for (const d of dss) d.report([])
  t.equal(clusterReport(core).blocks.missing, 2, 'both blocks are missing')
  core.runReplication()
  const cmds = dss.map(d => d.heartbeat())
  const zeroCmds = cmds.flatMap((c, i) => c.filter((x): x is Zero => x.type === 'zero').map(x => ({ ds: dss[i]!.id, block: x.block })))
  t.same(zeroCmds.map(z => z.block), [bare(hole), bare(hole)], 'a zero command for the block of zeros, one per wanted replica')
  t.equal(new Set(zeroCmds.map(z => z.ds)).size, 2, 'to two different DataServers')
  t.same(cmds.flatMap(c => replicates(c)), [], 'no replication: there is nothing to copy from')

  core.runReplication()
  t.same(dss.flatMap(d => d.heartbeat()), [], 'no repeat while they are pending')
  for (const z of zeroCmds) dss.find(d => d.id === z.ds)!.received([hole.id, hole.gen, hole.length])
  const report = clusterReport(core)
  t.equal(report.blocks.missing, 1, 'the data block is still missing')
  t.equal(report.blocks.underReplicated, 0, 'the block of zeros has its two replicas')
  t.equal(report.pendingReplications, 0)
  t.equal(core.readPlan({ path: '/holes' }, ROOT).blocks[1]!.locations.length, 0, 'no location is made up for the data block')
  clock.advance(6000) // past replication.pending.timeout.ms
  core.runReplication()
  t.same(dss.flatMap(d => d.heartbeat()), [], 'and nothing is ever sent for it')

  // The flag comes back with the namespace after a restart.
  core.close()
  const again = makeCore(t, { 'safemode.threshold': 0 }, dir)
  const fresh = cluster(again.core, 3)
  again.core.runReplication()
  const after = fresh.flatMap(d => d.heartbeat())
  t.same(after.filter(c => c.type === 'zero').map(c => (c as Zero).block), [bare(hole), bare(hole)], 'made anew after a restart as well')
  t.equal(after.filter(c => c.type !== 'zero').length, 0, 'and only it')
})

t.test('a pending copy whose source lost its replica is forgotten at once, not at the timeout', async t => {
  const { core } = makeCore(t, { 'replication': 1 })
  const dss = cluster(core, 3)
  const { blocks, holders } = await writeFile(core, dss, '/one', [100], { replication: 1 })
  const b = blocks[0]!
  const source = dss.find(d => d.id === holders[0]![0])!
  core.ns.setrep('/one', ROOT, 2)
  core.runReplication()
  const first = replicates(source.heartbeat())
  t.equal(first.length, 1, 'a copy from the only holder is queued')
  t.equal(clusterReport(core).pendingReplications, 1)

  // The source restarts with an empty disk before it copied anything.
  source.report([])
  core.runReplication()
  t.equal(clusterReport(core).pendingReplications, 0, 'the copy is forgotten: its source has no replica')
  t.same(dss.flatMap(d => d.heartbeat()), [], 'and nothing can be sent for a lost data block')

  // The replica turns up again: a copy is queued in the next pass (the pending timeout
  // is 5 s and the clock has not moved).
  source.report([[b.id, b.gen, b.length]])
  core.runReplication()
  const again = replicates(source.heartbeat())
  t.equal(again.length, 1, 'queued again at once')
  t.not(again[0]!.targets[0]!.id, source.id, 'to another DataServer')
})
