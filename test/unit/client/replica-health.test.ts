// The client's memory of DataServers that failed its reads: they go to the back of a
// block's location list for a while (never out of it), and come forward again when the
// memory lapses or a read from them succeeds.
import t from 'tap'
import { ManualClock } from '../../../src/common/clock.js'
import { ReplicaHealth } from '../../../src/client/replica-health.js'

const locs = [{ id: 'a' }, { id: 'b' }, { id: 'c' }]
const ids = (l: Array<{ id: string }>): string[] => l.map(x => x.id)

t.test('failed servers are tried last, in order, for the memory time', async t => {
  const clock = new ManualClock()
  const h = new ReplicaHealth(clock, 1000)
  t.same(ids(h.order(locs)), ['a', 'b', 'c'], 'the NameServer\'s order when nothing failed')
  h.failed('a')
  t.same(ids(h.order(locs)), ['b', 'c', 'a'], 'a failed server goes last')
  h.failed('b')
  t.same(ids(h.order(locs)), ['c', 'a', 'b'], 'still listed: the last resort')
  t.same(ids(h.order([{ id: 'a' }])), ['a'], 'a lone replica is still tried')
  h.succeeded('a')
  t.same(ids(h.order(locs)), ['a', 'c', 'b'], 'a success clears it at once')
  clock.advance(999)
  t.ok(h.isSuspect('b'))
  clock.advance(1)
  t.notOk(h.isSuspect('b'), 'the memory lapses')
  t.same(ids(h.order(locs)), ['a', 'b', 'c'])
  t.same(ids(locs), ['a', 'b', 'c'], 'the input is not reordered in place')
})
