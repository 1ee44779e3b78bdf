// dropOldest / trimOldest: the LRU caches' eviction in one pass. What is checked is the
// behaviour (which keys go, how many, the callback); the reason for one pass (V8 walking
// deleted slots, quadratic when evicting one key at a time: 9 s against 0.3 s for 200,000
// insertions into a full map of 100,000 on the development machine) is a cost, measured
// outside the tests.
import t from 'tap'
import { dropOldest, trimOldest } from '../../../src/common/map-evict.js'

const mapOf = (n: number): Map<string, number> => new Map(Array.from({ length: n }, (_v, i) => [`k${i}`, i]))

t.test('dropOldest drops the first inserted keys', async t => {
  const m = mapOf(10)
  m.delete('k1')
  m.set('k0', 100) // an existing key keeps its place
  dropOldest(m, 3)
  t.same([...m.keys()], ['k4', 'k5', 'k6', 'k7', 'k8', 'k9'])
  dropOldest(m, 0)
  t.equal(m.size, 6, 'zero drops nothing')
  dropOldest(m, 100)
  t.equal(m.size, 0, 'more than there are: all')
})

t.test('dropOldest calls drop for each victim, which does the deleting', async t => {
  const m = mapOf(5)
  const dropped: string[] = []
  dropOldest(m, 2, k => { dropped.push(k); m.delete(k) })
  t.same(dropped, ['k0', 'k1'])
  t.same([...m.keys()], ['k2', 'k3', 'k4'])
})

t.test('trimOldest keeps a bound and leaves room below it', async t => {
  const m = mapOf(64)
  trimOldest(m, 64)
  t.equal(m.size, 64, 'at the bound: nothing')
  m.set('new', 1)
  trimOldest(m, 64)
  t.equal(m.size, 64 - 8, 'over it: back under by an eighth of the bound')
  t.ok(m.has('new'), 'the newest stays')
  t.notOk(m.has('k8'), 'the oldest go')
  t.ok(m.has('k9'))
  const small = mapOf(3)
  trimOldest(small, 2)
  t.same([...small.keys()], ['k1', 'k2'], 'a bound under 8 drops just what is over it')
  let inserts = 0
  const big = new Map<number, number>()
  for (let i = 0; i < 10_000; i++) { big.set(i, i); inserts++; trimOldest(big, 1000) }
  t.ok(big.size <= 1000, 'never over the bound')
  t.ok(big.has(inserts - 1), 'the last insert is kept')
})
