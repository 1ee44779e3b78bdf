// A directory larger than one listing page (LIST_PAGE_ENTRIES) through the client library
// and the mount. The client lists it a page at a time and gets every name once, in order.
// Through the mount, readdir shows every entry; a lookup that misses in it (its cached
// attributes expired, as during `ls -l` of a large directory) asks for a window of names
// from the missed one on instead of one stat per name, and a window that shows the name
// absent answers ENOENT; lookups of absent names (files being created there) then go
// back to one stat each, until WINDOW_AFTER_FOUND stats in a row find theirs. Counted from the mount's debug log (one line per NameServer
// request), as in fuse-round-trips.test.ts: the design, not timing.
import t, { type Test } from 'tap'
import { lstat, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { LIST_PAGE_ENTRIES } from '../../src/common/protocol.js'
import { WINDOW_AFTER_FOUND } from '../../src/fuse/fuse-fs.js'
import { FUSE_TEST_CONFIG as STABLE, MountLogCounter, fuseSkipReason, startMount, type Mount } from '../helpers/mount.js'
import { startCluster, type Cluster } from '../helpers/inprocess-cluster.js'
import { settleAll } from '../../src/common/settle-all.js'

const N = LIST_PAGE_ENTRIES * 2 + 300
/** Long enough that the lstat loop below outlasts no window (a slow machine included). */
const ATTR_MS = 4000

const requestLog = (): MountLogCounter => new MountLogCounter(j => {
  if (j.msg === 'nameserver request') return [`${String(j.req ?? '?')}${j.code === 'ok' ? '' : ' ' + String(j.code)}`]
  return []
})

const name = (i: number): string => `f${String(i).padStart(5, '0')}`
const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

async function suite (t: Test): Promise<void> {
  const cluster = await startCluster(t, { config: { ...STABLE, 'nameserver.sync': 'normal' }, dataServers: 1, replication: 1 })
  await cluster.client.mkdir('/big')
  // 32 creates in flight: a few seconds for the whole directory.
  let next = 0
  await settleAll(Array.from({ length: 32 }, async () => {
    for (let i; (i = next++) < N;) await cluster.client.create(`/big/${name(i)}`)
  }))
  const names = Array.from({ length: N }, (_v, i) => name(i))

  await t.test('the client lists it: every name once, in order (in pages: see readdir below)', async t => {
    const listed = await cluster.client.list('/big')
    t.equal(listed.length, N)
    t.same(listed.map(e => e.name), names)
    t.equal(new Set(listed.map(e => e.ino)).size, N, 'distinct inodes')
  })

  const log = requestLog()
  const a = await startMount(t, cluster.cfg, {
    config: { 'log.level': 'debug', 'fuse.attr.timeout.ms': ATTR_MS },
    onStderr: d => { log.feed(d) },
  })
  const big = join(a.dir, 'big')
  await stat(big)
  await log.takeSettled(a.dir)

  await t.test('readdir through the mount: every entry, fetched in pages', async t => {
    const got = await readdir(big)
    t.same(got, names, 'every name once, in order')
    const reqs = await log.takeSettled(a.dir)
    t.equal(reqs['GET /v1/ns/list'], Math.ceil(N / LIST_PAGE_ENTRIES), `one request per page ${JSON.stringify(reqs)}`)
  })

  await t.test('lookups after the cached attributes expired: windows of names, not a stat each', async t => {
    await sleep(ATTR_MS + 200)
    await log.takeSettled(a.dir)
    const wrong: string[] = []
    for (const n of names) if (!(await lstat(join(big, n))).isFile()) wrong.push(n)
    t.same(wrong, [], 'every name is found, as a file')
    const reqs = await log.takeSettled(a.dir)
    // The directory's own entry expired as well: the path walk asks for it once.
    t.ok((reqs['GET /v1/ns/stat'] ?? 0) <= 1, `no stat per name ${JSON.stringify(reqs)}`)
    const windows = reqs['GET /v1/ns/list'] ?? 0
    t.ok(windows >= Math.ceil(N / LIST_PAGE_ENTRIES) && windows <= 2 * Math.ceil(N / LIST_PAGE_ENTRIES), `about one window per ${LIST_PAGE_ENTRIES} names (${windows})`)
  })

  await t.test('a window answers what changed elsewhere at once, and absent names', async t => {
    await sleep(ATTR_MS + 200)
    await cluster.client.create('/big/f00000a')
    await cluster.client.delete('/big/f00001')
    await stat(big)
    await log.takeSettled(a.dir)
    t.equal((await lstat(join(big, 'f00000'))).isFile(), true)
    // The window from f00000 on was fetched just now: it holds the new name, not the gone one.
    t.equal((await lstat(join(big, 'f00000a'))).isFile(), true, 'a name made on another client is found')
    t.same(await log.takeSettled(a.dir), { 'GET /v1/ns/list': 1 }, 'both from one window')
    await t.rejects(lstat(join(big, 'nothing-here')), { code: 'ENOENT' })
    t.same(await log.takeSettled(a.dir), { 'GET /v1/ns/list': 1 }, 'an absent name: one window, which shows it absent')
    // After a window that missed, the next lookup miss asks for its name alone.
    await t.rejects(lstat(join(big, 'f00001')), { code: 'ENOENT' }, 'a name removed elsewhere is gone')
    // (Twice: the kernel revalidates the name it had seen, then looks it up afresh.)
    t.same(Object.keys(await log.takeSettled(a.dir)), ['GET /v1/ns/stat ENOENT'], 'then: stats, no window')
    // Beyond the window fetched above (its entries are fresh, these expired). Present and
    // absent names mixed stay with stats...
    t.equal((await lstat(join(big, 'f02100'))).isFile(), true)
    await t.rejects(lstat(join(big, 'f02100x')), { code: 'ENOENT' })
    t.same(await log.takeSettled(a.dir), { 'GET /v1/ns/stat': 1, 'GET /v1/ns/stat ENOENT': 1 }, 'present and absent names mixed: stats')
    for (let i = 0; i < WINDOW_AFTER_FOUND; i++) t.equal((await lstat(join(big, name(2101 + i)))).isFile(), true)
    t.same(await log.takeSettled(a.dir), { 'GET /v1/ns/stat': WINDOW_AFTER_FOUND }, `${WINDOW_AFTER_FOUND} stats in a row that find their names...`)
    t.equal((await lstat(join(big, 'f02200'))).isFile(), true)
    t.equal((await lstat(join(big, 'f02201'))).isFile(), true)
    t.same(await log.takeSettled(a.dir), { 'GET /v1/ns/list': 1 }, '...turn windows back on')
  })

  await t.test('creating new names in it: one stat per absent name, not a window each', async t => {
    for (let i = 0; i < 5; i++) await writeFile(join(big, `new${i}`), `n${i}`)
    const reqs = await log.takeSettled(a.dir)
    t.ok((reqs['GET /v1/ns/list'] ?? 0) <= 1, `at most one window ${JSON.stringify(reqs)}`)
    t.ok((reqs['GET /v1/ns/stat ENOENT'] ?? 0) >= 4, 'the lookups before the creates are stats')
    t.equal(reqs['POST /v1/ns/create'], 5)
    t.same((await cluster.client.list('/big')).filter(e => e.name.startsWith('new')).map(e => e.size), [2, 2, 2, 2, 2])
  })

  await t.test('a window that cannot be listed: the lookup asks for its name', async t => { await windowFails(t, cluster, a, log) })
}


async function windowFails (t: Test, cluster: Cluster, a: Mount, log: MountLogCounter): Promise<void> {
  const big = join(a.dir, 'big')
  await readdir(big) // listed again: lookup misses there ask for windows
  await log.takeSettled(a.dir)
  // The directory goes while this mount still holds its entry: the next lookup miss in it
  // asks for a window, which fails, and then for the name itself.
  await cluster.client.delete('/big', { recursive: true })
  await t.rejects(lstat(join(big, 'never-looked-up')), { code: 'ENOENT' })
  t.same(await log.takeSettled(a.dir), { 'GET /v1/ns/list ENOENT': 1, 'GET /v1/ns/stat ENOENT': 1 }, 'the window fails, a stat answers')
  await t.rejects(lstat(join(big, 'nor-this')), { code: 'ENOENT' })
  t.same(await log.takeSettled(a.dir), { 'GET /v1/ns/stat ENOENT': 1 }, 'and the directory is no longer treated as large')
}

const skip = fuseSkipReason()
if (skip !== undefined) {
  t.test('FUSE tests', { skip }, async () => {})
} else {
  t.test('a large directory through the client and the mount', async t => { await suite(t) })
}
