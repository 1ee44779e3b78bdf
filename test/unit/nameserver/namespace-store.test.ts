// The store's group commit and counter ranges: mutations of one turn share a commit,
// a failing one rolls back alone, and allocated ids are never handed out twice, also
// across a restart.
import t from 'tap'
import { NamespaceStore, ROOT_INO } from '../../../src/nameserver/namespace-store.js'

const OPTS = { sync: 'full' as const, nowNs: '1', defaultReplication: 1, defaultBlockSize: 65536 }

function row (name: string) {
  return { parent: ROOT_INO, name, type: 'file' as const, mode: 0o644, uid: 0, gid: 0, size: 0, atime: '1', mtime: '1', ctime: '1', replication: 1, block_size: 65536, target: null }
}

t.test('mutations of one turn commit together; a failing one rolls back alone', async t => {
  const dir = t.testdir()
  const store = new NamespaceStore(dir, OPTS)
  t.teardown(() => { store.close() })
  t.equal(store.whenDurable(), undefined, 'nothing pending after open')
  store.transaction(() => store.insert(row('a')))
  t.throws(() => store.transaction(() => { store.insert(row('b')); throw new Error('boom') }), /boom/)
  store.transaction(() => store.insert(row('c')))
  const durable = store.whenDurable()
  t.ok(durable instanceof Promise, 'replies must wait for the commit')
  await durable
  t.equal(store.whenDurable(), undefined, 'committed')
  t.ok(store.lookup(ROOT_INO, 'a'))
  t.equal(store.lookup(ROOT_INO, 'b'), undefined, 'the failed mutation left nothing')
  t.ok(store.lookup(ROOT_INO, 'c'))
  store.close()
  const again = new NamespaceStore(dir, OPTS)
  t.teardown(() => { again.close() })
  t.ok(again.lookup(ROOT_INO, 'a'), 'on disk after reopen')
  t.ok(again.lookup(ROOT_INO, 'c'), 'on disk after reopen')
  t.equal(again.lookup(ROOT_INO, 'b'), undefined)
})

t.test('block ids and generation stamps are never reused across restarts', async t => {
  const dir = t.testdir()
  const seen = new Set<number>()
  const gens = new Set<number>()
  let last = 0
  for (let round = 0; round < 3; round++) {
    const store = new NamespaceStore(dir, OPTS)
    for (let i = 0; i < 5; i++) {
      const b = store.transaction(() => store.allocateBlock())
      t.notOk(seen.has(b.id), `block id ${b.id} is fresh`)
      t.notOk(gens.has(b.gen), `gen ${b.gen} is fresh`)
      t.ok(b.id > last, 'ids grow')
      last = b.id
      seen.add(b.id)
      gens.add(b.gen)
    }
    const ino = store.transaction(() => store.insert(row(`f${round}`))).ino
    t.ok(ino > ROOT_INO)
    await store.whenDurable()
    store.close()
  }
  const store = new NamespaceStore(dir, OPTS)
  t.teardown(() => { store.close() })
  const inos = [0, 1, 2].map(r => store.lookup(ROOT_INO, `f${r}`)!.ino)
  t.equal(new Set(inos).size, 3, 'inode numbers distinct')
})
