// The store's group commit and counter ranges: mutations of one turn share a commit,
// a failing one rolls back alone, and allocated ids are never handed out twice, also
// across a restart.
import t from 'tap'
import { join } from 'node:path'
import { DB_FILE, NamespaceStore, ROOT_INO } from '../../../src/nameserver/namespace-store.js'

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

t.test('a full disk under the namespace: ENOSPC, nothing acknowledged is lost', { skip: process.getuid?.() === 0 ? false : 'mounting a small tmpfs needs root' }, async t => {
  const { execFileSync } = await import('node:child_process')
  const { mkdtempSync, rmdirSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  // Not t.testdir(): tap would try to remove the mountpoint itself.
  const dir = mkdtempSync(join(tmpdir(), 'hiss-ns-full-'))
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', dir])
  const opened: NamespaceStore[] = []
  // One teardown, in order: close the stores, unmount, remove the mountpoint.
  t.teardown(() => {
    for (const s of opened) { try { s.close() } catch { /* a failed store */ } }
    try { execFileSync('umount', [dir]) } catch { execFileSync('umount', ['-l', dir]) }
    rmdirSync(dir)
  })
  const fatal: unknown[] = []
  const store = new NamespaceStore(dir, { ...OPTS, onFatal: err => fatal.push(err) })
  opened.push(store)
  const acknowledged: string[] = []
  let failure: { code?: string } | undefined
  const pad = 'x'.repeat(200)
  for (let i = 0; i < 20000 && failure === undefined; i++) {
    const name = `f${i}-${pad}`
    try {
      store.transaction(() => store.insert(row(name)))
      await store.whenDurable()
      acknowledged.push(name)
    } catch (err) {
      failure = err as { code?: string }
    }
  }
  t.ok(failure !== undefined, `the disk filled up after ${acknowledged.length} files`)
  t.equal(failure?.code, 'ENOSPC', 'the failure says the disk is full')
  t.ok(acknowledged.length > 10, 'files were acknowledged before that')
  t.equal(fatal.length, 1, 'the owner is told the store failed (the NameServer exits)')
  t.throws(() => store.transaction(() => store.insert(row('after'))), { code: 'ENOSPC' }, 'a failed store refuses further changes')
  try { store.close() } catch { /* the failed store may not close cleanly */ }
  // More room (as an operator would make), then a restart from the disk state.
  execFileSync('mount', ['-o', 'remount,size=8m', dir])
  const again = new NamespaceStore(dir, OPTS)
  opened.push(again)
  const missing = acknowledged.filter(n => again.lookup(ROOT_INO, n) === undefined)
  t.same(missing, [], `every acknowledged file (${acknowledged.length}) is there after the restart`)
  again.transaction(() => again.insert(row('after-restart')))
  await again.whenDurable()
  t.ok(again.lookup(ROOT_INO, 'after-restart'), 'and the namespace takes changes again')
})

t.test('sync=full: no change counts as durable before the WAL fsync that covers it', async t => {
  const { fstatSync, statSync } = await import('node:fs')
  const { join } = await import('node:path')
  const dir = t.testdir()
  const calls: Array<{ fd: number, done: (err: NodeJS.ErrnoException | null) => void }> = []
  const store = new NamespaceStore(dir, { ...OPTS, fdatasync: (fd, done) => { calls.push({ fd, done }) } })
  t.teardown(() => { store.close() })
  t.equal(store.whenDurable(), undefined, 'startup state is synced (synchronously) before use')

  store.transaction(() => store.insert(row('a')))
  let aDurable = false
  t.equal(store.afterDurable(err => { t.equal(err, undefined); aDurable = true }), true, 'a reply must wait')
  await new Promise(resolve => setImmediate(resolve))
  t.equal(calls.length, 1, 'the commit after the turn started one fsync')
  t.equal(fstatSync(calls[0]!.fd).ino, statSync(join(dir, 'namespace.db-wal')).ino, 'of the WAL file')
  t.notOk(aDurable, 'committed but not yet fsynced: still not durable')
  t.ok(store.lookup(ROOT_INO, 'a'), 'the change is visible to later requests of this process')
  t.ok(store.whenDurable() instanceof Promise, 'so a reply showing it waits too')

  // Changes made while the fsync runs gather in the next batch.
  store.transaction(() => store.insert(row('b')))
  let bDurable = false
  store.afterDurable(() => { bDurable = true })
  await new Promise(resolve => setImmediate(resolve))
  t.equal(calls.length, 1, 'one fsync at a time')
  calls[0]!.done(null)
  t.ok(aDurable, 'the fsync covering the first commit releases its reply')
  t.notOk(bDurable, 'but not one made after that fsync started')
  t.equal(calls.length, 2, 'what gathered meanwhile is committed and synced next')
  calls[1]!.done(null)
  t.ok(bDurable)
  t.equal(store.whenDurable(), undefined, 'all durable')

  // Many commits later (checkpoints included) the fd still names the WAL.
  for (let i = 0; i < 3000; i++) {
    store.transaction(() => store.insert(row(`many${i}-${'x'.repeat(100)}`)))
    if (i % 100 === 0) {
      await new Promise(resolve => setImmediate(resolve))
      calls.at(-1)!.done(null)
    }
  }
  await new Promise(resolve => setImmediate(resolve))
  const last = calls.at(-1)!
  t.equal(fstatSync(last.fd).ino, statSync(join(dir, 'namespace.db-wal')).ino, 'still the WAL after checkpoints')
  last.done(null)
  t.equal(store.whenDurable(), undefined)
})

t.test('sync=full: a failed WAL fsync fails every waiting reply and stops the store', async t => {
  const dir = t.testdir()
  let pending: ((err: NodeJS.ErrnoException | null) => void) | undefined
  const fatal: unknown[] = []
  const store = new NamespaceStore(dir, { ...OPTS, fdatasync: (_fd, done) => { pending = done }, onFatal: err => fatal.push(err) })
  t.teardown(() => { try { store.close() } catch { /* failed store */ } })
  store.transaction(() => store.insert(row('a')))
  const a = store.whenDurable()!
  await new Promise(resolve => setImmediate(resolve))
  store.transaction(() => store.insert(row('b')))
  const b = store.whenDurable()!
  pending!(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }))
  await t.rejects(a, { code: 'EIO' }, 'the synced-but-failed commit is not acknowledged')
  await t.rejects(b, { code: 'EIO' }, 'nor what gathered during the fsync')
  t.equal(fatal.length, 1, 'the owner is told (the NameServer exits)')
  t.throws(() => store.transaction(() => store.insert(row('c'))), { code: 'EIO' }, 'no further changes')
  let called: unknown
  t.equal(store.afterDurable(err => { called = err }), true)
  await new Promise(resolve => setImmediate(resolve))
  t.match(called, { code: 'EIO' }, 'later waiters hear of the failure too')
})

t.test('sync=full: close syncs what is still pending, even with an fsync in flight', async t => {
  const dir = t.testdir()
  let pending: ((err: NodeJS.ErrnoException | null) => void) | undefined
  const store = new NamespaceStore(dir, { ...OPTS, fdatasync: (_fd, done) => { pending = done } })
  store.transaction(() => store.insert(row('a')))
  const a = store.whenDurable()!
  await new Promise(resolve => setImmediate(resolve))
  t.ok(pending, 'an fsync is in flight')
  store.transaction(() => store.insert(row('b')))
  const b = store.whenDurable()!
  store.close()
  await a
  await b
  pending!(null)
  const again = new NamespaceStore(dir, OPTS)
  t.teardown(() => { again.close() })
  t.ok(again.lookup(ROOT_INO, 'a'))
  t.ok(again.lookup(ROOT_INO, 'b'))
})

t.test('sync=full: a lazy transaction is committed and fsynced, but holds no reply; a counter range it reserves does', async t => {
  const dir = t.testdir()
  const calls: Array<(err: NodeJS.ErrnoException | null) => void> = []
  const store = new NamespaceStore(dir, { ...OPTS, fdatasync: (_fd, done) => { calls.push(done) } })
  t.teardown(() => { store.close() })
  // The counters start at their ceiling: the first allocation reserves a range of ids.
  const first = store.lazyTransaction(() => store.allocateBlock())
  t.equal(store.afterDurable(() => {}), true, 'the first allocation reserved a counter range: replies wait')
  await new Promise(resolve => setImmediate(resolve))
  calls.at(-1)!(null)
  t.equal(store.whenDurable(), undefined, 'all durable')

  const before = calls.length
  const b = store.lazyTransaction(() => { const x = store.allocateBlock(); store.putAlloc('w1', x); return x })
  t.ok(b.id > first.id)
  let lazyReleased = false
  t.equal(store.afterDurable(() => { lazyReleased = true }), true, 'a lazy change holds a reply until its batch is committed (in the WAL)')
  await new Promise(resolve => setImmediate(resolve))
  t.ok(lazyReleased, 'and no longer: not until the fsync')
  t.equal(calls.length, before + 1, 'but it is committed and fsynced like any other')
  t.same(store.storedSessions(), [], 'allocations without a session row are not a session')
  store.lazyTransaction(() => { store.putSession('w1', '{}') })
  t.same(store.storedSessions(), [{ writeId: 'w1', state: '{}', allocs: [[b.id, b.gen]] }], 'visible at once to later calls')
  store.transaction(() => store.insert(row('strict')))
  let released = false
  t.equal(store.afterDurable(() => { released = true }), true, 'a strict change in the same batch holds replies again')
  calls.at(-1)!(null)
  await new Promise(resolve => setImmediate(resolve))
  t.notOk(released, 'until the fsync that covers it')
  calls.at(-1)!(null)
  t.ok(released)
})

t.test('a namespace of an older version gains the new block_updates columns', async t => {
  const dir = t.testdir()
  const store = new NamespaceStore(dir, OPTS)
  store.transaction(() => { store.setPendingUpdate({ id: 7, base: 1, first: 2, last: 3, owner: 'w', tried: [2, 3] }) })
  await store.whenDurable()
  store.close()
  // Make it look as the version before owner and tried were stored left it.
  const { default: Database } = await import('better-sqlite3')
  const db = new Database(join(dir, DB_FILE))
  db.exec('DROP TABLE block_updates; CREATE TABLE block_updates (id INTEGER PRIMARY KEY, base INTEGER NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL); INSERT INTO block_updates VALUES (7, 1, 2, 3)')
  db.close()
  const again = new NamespaceStore(dir, OPTS)
  t.teardown(() => { again.close() })
  t.same(again.pendingUpdates(), [{ id: 7, base: 1, first: 2, last: 3, owner: null, tried: [] }], 'the old row reads as ownerless')
  again.transaction(() => { again.setPendingUpdate({ id: 8, base: 1, first: 4, last: 4, owner: 'w2', tried: [4] }) })
  await again.whenDurable()
  t.same(again.pendingUpdates().find(u => u.id === 8), { id: 8, base: 1, first: 4, last: 4, owner: 'w2', tried: [4] }, 'and new rows keep their writer')
})
