import t from 'tap'
import { chooseTargets } from '../../../src/nameserver/placement.js'
import type { DataServerInfo } from '../../../src/nameserver/registry.js'
import { seeded } from './helpers.js'

function ds (id: string, host: string, remaining: number, activeStreams = 0, state: 'live' | 'dead' = 'live'): DataServerInfo {
  return { id, address: `${host}:1`, host, capacity: 1e12, used: 0, remaining, activeStreams, state, lastSeen: 0, fullReportAt: 0, reportAskedAt: 0, scheduledBytes: 0, queue: [] }
}

t.test('never two replicas on one DataServer; exclude and dead honoured', async t => {
  const rnd = seeded(7)
  const servers = [ds('a', 'h1', 1e9), ds('b', 'h2', 1e9), ds('c', 'h3', 1e9), ds('d', 'h4', 1e9), ds('e', 'h5', 1e9, 0, 'dead')]
  const problems: string[] = []
  for (let i = 0; i < 300; i++) {
    const count = 1 + (i % 5)
    const ids = chooseTargets(servers, { count, bytes: 100, exclude: new Set(['b']) }, rnd).map(d => d.id)
    if (new Set(ids).size !== ids.length) problems.push(`duplicate in ${ids.join(',')}`)
    if (ids.includes('b') || ids.includes('e')) problems.push(`excluded or dead in ${ids.join(',')}`)
    if (ids.length !== Math.min(count, 3)) problems.push(`${ids.length} targets for ${count}`)
  }
  t.same(problems, [], '300 placements: distinct, never excluded or dead, as many as exist')
})

t.test('spread over hosts while unused hosts remain', async t => {
  const rnd = seeded(3)
  const servers = [ds('a1', 'h1', 5e9), ds('a2', 'h1', 5e9), ds('a3', 'h1', 5e9), ds('b1', 'h2', 1e9), ds('c1', 'h3', 1e9)]
  const problems: string[] = []
  for (let i = 0; i < 50; i++) {
    const got = chooseTargets(servers, { count: 3, bytes: 100 }, rnd)
    if (new Set(got.map(d => d.host)).size !== 3) problems.push(`hosts ${got.map(d => d.host).join(',')}`)
    const more = chooseTargets(servers, { count: 2, bytes: 100, usedHosts: new Set(['h1']) }, rnd)
    if (more.map(d => d.host).sort().join() !== 'h2,h3') problems.push(`with h1 used: ${more.map(d => d.host).join(',')}`)
  }
  t.same(problems, [], 'three hosts for three replicas; hosts already holding the block avoided')
  const four = chooseTargets(servers, { count: 4, bytes: 100 }, rnd)
  t.equal(four.length, 4, 'reuses a host only when it must')
})

t.test('prefers free space and low load', async t => {
  const rnd = seeded(11)
  const servers = [ds('full', 'h1', 2e6), ds('busy', 'h2', 1e10, 50), ds('best', 'h3', 1e10), ds('ok1', 'h4', 5e9), ds('ok2', 'h5', 5e9)]
  const counts = new Map<string, number>()
  for (let i = 0; i < 400; i++) {
    const [d] = chooseTargets(servers, { count: 1, bytes: 1000 }, rnd)
    counts.set(d!.id, (counts.get(d!.id) ?? 0) + 1)
  }
  t.ok((counts.get('best') ?? 0) > (counts.get('ok1') ?? 0), 'most free space wins most often')
  t.equal(counts.get('full') ?? 0, 0, 'nearly full never in the top candidates')
  t.equal(counts.get('busy') ?? 0, 0, 'heavily loaded never in the top candidates')
})

t.test('only DataServers with room; NO_DATASERVERS vs ENOSPC', async t => {
  const servers = [ds('small', 'h1', 1000), ds('big', 'h2', 1e9)]
  t.same(chooseTargets(servers, { count: 2, bytes: 5000 }).map(d => d.id), ['big'])
  t.throws(() => chooseTargets([ds('small', 'h1', 1000)], { count: 1, bytes: 5000 }), { code: 'ENOSPC' })
  t.throws(() => chooseTargets([], { count: 1, bytes: 1 }), { code: 'NO_DATASERVERS' })
  t.throws(() => chooseTargets([ds('x', 'h', 1e9, 0, 'dead')], { count: 1, bytes: 1 }), { code: 'NO_DATASERVERS' })
  t.throws(() => chooseTargets(servers, { count: 1, bytes: 1, exclude: new Set(['small', 'big']) }), { code: 'NO_DATASERVERS' })
})

t.test('scheduled bytes rank the choice but never refuse a DataServer with room', async t => {
  const rnd = seeded(5)
  const sched = (d: DataServerInfo, bytes: number): DataServerInfo => ({ ...d, scheduledBytes: bytes })
  // A burst of allocations (each counted as a full block until the next heartbeat) has
  // "scheduled" more than every DataServer's free space: still placed, not ENOSPC.
  const burst = [sched(ds('a', 'h1', 1e9), 5e9), sched(ds('b', 'h2', 1e9), 5e9), sched(ds('c', 'h3', 1e9), 5e9)]
  t.same(chooseTargets(burst, { count: 3, bytes: 64 << 20 }, rnd).map(d => d.id).sort(), ['a', 'b', 'c'], 'every DataServer still chosen')
  // One whose scheduled bytes exceed its free space is taken only when nothing else fits.
  const mixed = [sched(ds('over', 'h1', 1e10), 2e10), ds('ok1', 'h2', 1e9), ds('ok2', 'h3', 1e9)]
  const counts = new Map<string, number>()
  for (let i = 0; i < 200; i++) {
    const [d] = chooseTargets(mixed, { count: 1, bytes: 1e6 }, rnd)
    counts.set(d!.id, (counts.get(d!.id) ?? 0) + 1)
  }
  t.equal(counts.get('over') ?? 0, 0, 'never while others have room after their scheduled bytes')
  t.same(chooseTargets(mixed, { count: 3, bytes: 1e6 }, rnd).map(d => d.id).sort(), ['ok1', 'ok2', 'over'], 'but used for a third replica')
  t.throws(() => chooseTargets([sched(ds('small', 'h1', 1000), 0)], { count: 1, bytes: 5000 }), { code: 'ENOSPC' }, 'reported free space below the block still refuses')
})
