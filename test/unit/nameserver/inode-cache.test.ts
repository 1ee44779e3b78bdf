// The store's inode cache never shows anything the tables do not hold: the same random
// namespace operations on a store with a large cache and on one that can keep only two
// rows (so nearly every read goes to SQLite) give the same results, the same errors and
// the same stat of every path after every step, also after rolled-back transactions;
// and what the cache showed before a restart is what the disk shows after it.
import t from 'tap'
import { ManualClock } from '../../../src/common/clock.js'
import { Namespace } from '../../../src/nameserver/namespace.js'
import { NamespaceStore, ROOT_INO } from '../../../src/nameserver/namespace-store.js'
import { Permissions, type Identity } from '../../../src/nameserver/permissions.js'
import { ALICE, ROOT, seeded } from './helpers.js'

const STORE = { sync: 'normal' as const, nowNs: '1', defaultReplication: 2, defaultBlockSize: 65536 }
const DIRS = ['/', '/d0', '/d1', '/d0/e0', '/d1/e0', '/d0/e0/f0']
const NAMES = ['a', 'b', 'd0', 'd1', 'e0', 'f0', 'l', 'rolled-back']

function open (dir: string, cacheRows: number | undefined, clock: ManualClock): { store: NamespaceStore, ns: Namespace } {
  const store = new NamespaceStore(dir, { ...STORE, ...(cacheRows === undefined ? {} : { cacheRows }) })
  const ns = new Namespace(store, {
    perms: new Permissions({ enabled: true, superuserUid: 0 }),
    clock,
    defaultReplication: 2,
    defaultBlockSize: 65536,
    hooks: { blocksFreed: () => {}, replicationChanged: () => {} },
  })
  return { store, ns }
}

function outcome (fn: () => unknown): unknown {
  try {
    return { ok: fn() }
  } catch (err) {
    return { err: (err as { code?: string }).code ?? String(err) }
  }
}

function snapshot (ns: Namespace): unknown[] {
  const out: unknown[] = []
  for (const d of DIRS) {
    for (const n of NAMES) {
      const p = d === '/' ? `/${n}` : `${d}/${n}`
      out.push([p, outcome(() => ns.stat(p, ROOT)), outcome(() => ns.stat(p, ROOT, true))])
    }
    out.push([d, outcome(() => ns.stat(d, ROOT)), outcome(() => ns.list(d, ROOT))])
  }
  return out
}

t.test('a large cache and an almost empty one agree on everything, step by step', async t => {
  const clock = new ManualClock()
  const bigDir = t.testdir()
  const smallDir = `${bigDir}-small`
  const big = open(bigDir, undefined, clock)
  const small = open(smallDir, 2, clock)
  t.teardown(async () => {
    small.store.close()
    const { rmSync } = await import('node:fs')
    rmSync(smallDir, { recursive: true, force: true })
  })
  const rnd = seeded(7)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const somePath = (): string => { const d = pick(DIRS); const n = pick(NAMES); return d === '/' ? `/${n}` : `${d}/${n}` }
  const who = (): Identity => rnd() < 0.8 ? ROOT : ALICE
  let mismatches = 0
  let mostCached = 0
  for (let step = 0; step < 1000; step++) {
    clock.advance(1000)
    const op = Math.floor(rnd() * 9)
    const p = somePath()
    const q = somePath()
    const id = who()
    const mode = pick([0o755, 0o700, 0o1777, 0o2775, 0o644])
    const parents = rnd() < 0.3
    const target = pick(['a', '../d1', '/d0/e0', 'nowhere'])
    const run = (x: { store: NamespaceStore, ns: Namespace }): unknown => outcome(() => {
      switch (op) {
        case 0: return x.ns.mkdir(p, id, mode, parents)
        case 1: return x.ns.create(p, id, mode, false)
        case 2: x.ns.delete(p, id, true); return 'deleted'
        case 3: return x.ns.rename(p, q, id, false)
        case 4: return x.ns.setattr(p, id, { mode, mtimeNs: String(step) }, true)
        case 5: return x.ns.symlink(p, target, id)
        case 6: return x.ns.setrep(p, id, 1 + (step % 3))
        case 7: {
          // A transaction that fails after writing: its changes (and cache) roll back.
          const parent = x.store.get(ROOT_INO)!
          return x.store.transaction(() => {
            x.store.insert(x.ns.newRow(parent, 'rolled-back', 'dir', 0o755, id))
            x.store.touchDir(ROOT_INO, String(step))
            throw new Error('abort')
          })
        }
        default: {
          // The write path: a file's content replaced in place.
          const node = x.ns.lookup(p, ROOT)
          if (node.type !== 'file') return 'not a file'
          x.store.transaction(() => { x.store.setContent(node.ino, [{ id: step, gen: 1, length: 10 }], 10, String(step), String(step)) })
          return x.ns.stat(p, ROOT)
        }
      }
    })
    const a = run(big)
    const b = run(small)
    if (JSON.stringify(a) !== JSON.stringify(b)) {
      mismatches++
      t.same(a, b, `step ${step}: op ${op} ${p} ${q}`)
    }
    if (step % 10 === 0) {
      const sa = snapshot(big.ns)
      const sb = snapshot(small.ns)
      if (JSON.stringify(sa) !== JSON.stringify(sb)) {
        mismatches++
        t.same(sa, sb, `step ${step}: every path`)
      }
    }
    mostCached = Math.max(mostCached, big.store.cachedRows)
    await new Promise(resolve => setImmediate(resolve))
  }
  t.equal(mismatches, 0, 'no step differed')
  t.ok(mostCached > 10, `the large cache was used (up to ${mostCached} rows)`)
  t.ok(small.store.cachedRows <= 2, 'the small one stayed small')

  const before = snapshot(big.ns)
  big.store.close()
  const again = open(bigDir, undefined, clock)
  t.teardown(() => { again.store.close() })
  t.same(snapshot(again.ns), before, 'after a restart the disk shows what the cache showed')
})

t.test('a patched block that grows its file: the cached stat follows the new size', async t => {
  // setBlockGeneration (recovery of an uncommitted patch) changes the file's size: the
  // cache must not keep showing the old size to stat.
  const clock = new ManualClock()
  const dir = t.testdir()
  const { store, ns } = open(dir, undefined, clock)
  const st = ns.create('/f', ROOT, 0o644, true)
  store.transaction(() => { store.setContent(st.ino, [{ id: 77, gen: 1, length: 100 }], 100, '2', '2') })
  t.equal(ns.stat('/f', ROOT).size, 100, 'stat before the patch (now cached)')
  store.transaction(() => { store.setBlockGeneration(77, 2, 150) })
  t.equal(ns.stat('/f', ROOT).size, 150, 'stat after the patch shows the grown size')
  store.transaction(() => { store.setBlockGeneration(77, 3, 150) })
  t.equal(ns.stat('/f', ROOT).size, 150, 'same length: same size')
  t.same(store.blocksOf(st.ino), [{ id: 77, gen: 3, length: 150 }], 'the block list holds the new generation')
  t.equal(ns.stat('/f', ROOT).mtimeNs, '2', 'times stay')
  store.close()
  const again = open(dir, undefined, clock)
  t.teardown(() => { again.store.close() })
  t.equal(again.ns.stat('/f', ROOT).size, 150, 'and the table holds it after a restart')
})
