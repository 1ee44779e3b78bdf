// What everyday metadata work through the mount costs in requests: the mount runs at
// log level debug, which logs one line per NameServer request and per DataServer block
// store or read, and the test counts them per phase. The attribute timeout is long here,
// so no expiry can add requests on a slow machine; what is counted is the design (a
// small file is one create and one commit request plus one block store, a read-back of
// it one block-list request and no DataServer read, ls -l one listing, rm -r one delete
// per entry), not timing. Also: what this mount changed is seen at once, names made on
// another mount are found at once (a lookup of a name not held asks the NameServer),
// and a create of a name made elsewhere opens that file.
import t, { type Test } from 'tap'
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { FUSE_TEST_CONFIG as STABLE, MountLogCounter, fuseSkipReason, shOk, startMount } from '../helpers/mount.js'
import { startCluster } from '../helpers/inprocess-cluster.js'
import { waitUntil } from '../helpers/wait-until.js'

const N = 12

/** NameServer requests and DataServer block stores/reads the mount logged, by kind. */
const requestLog = (): MountLogCounter => new MountLogCounter(j => {
  if (j.msg === 'nameserver request') return [`${String(j.req ?? '?')}${j.code === 'ok' ? '' : ' ' + String(j.code)}`]
  if (j.msg === 'block stored') return ['block store']
  if (j.msg === 'block read') return ['block read']
  return []
})

async function suite (t: Test): Promise<void> {
  const cluster = await startCluster(t, { config: STABLE, dataServers: 3, replication: 3, blockSize: 1024 * 1024 })
  const log = requestLog()
  const a = await startMount(t, cluster.cfg, {
    config: { 'log.level': 'debug', 'fuse.attr.timeout.ms': 600_000 },
    onStderr: d => { log.feed(d) },
  })
  const b = await startMount(t, cluster.cfg, { config: { 'fuse.attr.timeout.ms': 300 } })
  const q = (p: string): string => JSON.stringify(p)
  const files = Array.from({ length: N }, (_v, i) => `f${i}`)
  const body = (i: number): string => `small file ${i}\n`.repeat(100)

  await t.test('requests per operation', async t => {
    await mkdir(join(a.dir, 'd'))
    await log.takeSettled(a.dir)

    for (const [i, f] of files.entries()) await writeFile(join(a.dir, 'd', f), body(i))
    t.same(await log.takeSettled(a.dir), { 'GET /v1/ns/stat ENOENT': N, 'POST /v1/ns/create': N, 'POST /v1/ns/write/commit': N, 'block store': N },
      'a small file: the lookup before the create (a name another mount made must be found), one create (with its lease and first block), one block store, one commit')

    for (const [i, f] of files.entries()) t.equal(await readFile(join(a.dir, 'd', f), 'utf8'), body(i))
    t.same(await log.takeSettled(a.dir), { 'GET /v1/ns/blocks': N }, 'read back: the block list on open (close-to-open), the data from the cache')

    const ls = await shOk(`ls -l ${q(join(a.dir, 'd'))}`)
    t.equal(ls.trim().split('\n').filter(l => l.startsWith('-')).length, N)
    for (const f of files) await stat(join(a.dir, 'd', f))
    t.same(await log.takeSettled(a.dir), { 'GET /v1/ns/list': 1 }, 'ls -l and stat of what this mount made: the listing, the rest from its caches')

    await mkdir(join(a.dir, 'e'))
    t.same(await log.takeSettled(a.dir), { 'GET /v1/ns/stat ENOENT': 1, 'POST /v1/ns/mkdir': 1 }, 'mkdir in a directory never listed: the lookup, the mkdir')
    for (let i = 0; i < N; i++) await mkdir(join(a.dir, 'e', `sub${i}`))
    t.same(await log.takeSettled(a.dir), { 'GET /v1/ns/stat ENOENT': N, 'POST /v1/ns/mkdir': N }, 'mkdir in a directory made here: still the lookup, then the mkdir')

    await shOk(`rm -r ${q(join(a.dir, 'd'))} ${q(join(a.dir, 'e'))}`)
    const rm = await log.takeSettled(a.dir)
    t.equal(rm['POST /v1/ns/delete'], 2 * N + 2, 'rm -r: one delete per entry')
    t.same(Object.keys(rm).filter(k => !['POST /v1/ns/delete', 'GET /v1/ns/list', 'GET /v1/ns/statfs'].includes(k)), [], 'besides the listings rm reads: no lookups')

    // A shell's >> opens (taking the write lease in open), dups the descriptor and closes
    // the original (a flush) before it writes: the lease must survive that flush.
    await writeFile(join(a.dir, 'log'), 'first\n')
    await log.takeSettled(a.dir)
    for (let i = 0; i < 3; i++) await shOk(`echo line${i} >> ${q(join(a.dir, 'log'))}`)
    const ap = await log.takeSettled(a.dir)
    t.equal(ap['POST /v1/ns/write/open'], 3, `>> from a shell: one write/open per append ${JSON.stringify(ap)}`)
    t.equal(ap['POST /v1/ns/write/abort'], undefined, 'and no lease given back unused')
    t.equal(ap['POST /v1/ns/write/commit'], 3, 'one commit per append')
    t.equal(await readFile(join(b.dir, 'log'), 'utf8'), 'first\nline0\nline1\nline2\n')
    // An append open that never writes gives its lease back when it is closed.
    await shOk(`: >> ${q(join(a.dir, 'log'))}`)
    // FUSE's release comes after close() returned: wait for the abort it sends.
    await waitUntil(() => log.seen('POST /v1/ns/write/abort') || undefined, { timeoutMs: 10_000, what: 'the unused lease to be given back' })
    t.same(await log.takeSettled(a.dir), { 'GET /v1/ns/stat': 1, 'POST /v1/ns/write/open': 1, 'POST /v1/ns/write/abort': 1 }, '`: >>`: the stat of the open, the lease taken at open and given back at close')

    // A fresh listing answers the lookups of its entries.
    await cluster.client.mkdir('/other')
    for (const f of files) await cluster.client.create(`/other/${f}`)
    await shOk(`ls ${q(join(a.dir, 'other'))}`)
    await log.takeSettled(a.dir)
    for (const f of files) await stat(join(a.dir, 'other', f))
    t.same(await log.takeSettled(a.dir), {}, 'stat after readdir: no request')
  })

  await t.test('tar x: the fchown, fchmod and utimens of a file being written ride its commit', async t => {
    const src = t.testdir()
    const modes = [0o640, 0o755, 0o600, 0o644, 0o2750]
    await mkdir(join(src, 'src'))
    for (const [i, m] of modes.entries()) {
      await writeFile(join(src, 'src', `f${i}`), body(i))
      await shOk(`chmod ${m.toString(8)} ${q(join(src, 'src', `f${i}`))} && touch -d '2001-02-03 04:05:06Z' ${q(join(src, 'src', `f${i}`))}`)
    }
    await shOk(`tar cf ${q(join(src, 't.tar'))} -C ${q(src)} src`)
    await mkdir(join(a.dir, 'tx'))
    await log.takeSettled(a.dir)
    await shOk(`tar xf ${q(join(src, 't.tar'))} -C ${q(join(a.dir, 'tx'))}`)
    const reqs = await log.takeSettled(a.dir)
    t.equal(reqs['POST /v1/ns/create'], modes.length, 'one create per file')
    t.equal(reqs['POST /v1/ns/write/commit'], modes.length, 'one commit per file')
    t.ok((reqs['POST /v1/ns/setattr'] ?? 0) <= 3, `no setattr per file, only the directory's own (utimens, chown, chmod): ${JSON.stringify(reqs)}`)
    for (const [i, m] of modes.entries()) {
      const st = await cluster.client.stat(`/tx/src/f${i}`)
      t.equal(st.mode & 0o7777, m, `f${i}: the archived mode ${m.toString(8)} on the NameServer`)
      t.equal(st.mtimeNs, String(Date.parse('2001-02-03T04:05:06Z') * 1_000_000), `f${i}: the archived mtime`)
      t.same([st.uid, st.gid], [0, 0])
      t.equal(await readFile(join(b.dir, 'tx', 'src', `f${i}`), 'utf8'), body(i), `f${i}: content on the other mount`)
    }
    t.equal((await stat(join(a.dir, 'tx', 'src', 'f4'))).mode & 0o7777, 0o2750, 'and this mount shows it')
    await shOk(`diff -r ${q(join(src, 'src'))} ${q(join(a.dir, 'tx', 'src'))}`)
    const modesHere = await shOk(`stat -c '%a %Y' ${modes.map((_m, i) => q(join(a.dir, 'tx', 'src', `f${i}`))).join(' ')}`)
    t.equal(modesHere.trim(), modes.map(m => `${m.toString(8)} ${Date.parse('2001-02-03T04:05:06Z') / 1000}`).join('\n'), 'stat through the mount: modes and mtimes as archived')
  })

  await t.test('this mount sees its own changes at once', async t => {
    const d = join(a.dir, 'own')
    await mkdir(d)
    await writeFile(join(d, 'x'), 'x')
    await shOk(`mv ${q(join(d, 'x'))} ${q(join(d, 'y'))} && mkdir ${q(join(d, 'sub'))} && ln -s y ${q(join(d, 'l'))}`)
    t.equal((await shOk(`ls ${q(d)}`)).trim().split('\n').join(' '), 'l sub y')
    await t.rejects(stat(join(d, 'x')), { code: 'ENOENT' }, 'the old name is gone')
    t.equal(await readFile(join(d, 'l'), 'utf8'), 'x')
    const before = await stat(d)
    t.equal(before.nlink, 3, 'one subdirectory')
    const server = await cluster.client.stat('/own')
    t.equal(before.mtimeMs, Number(BigInt(server.mtimeNs) / 1_000_000n), 'the directory mtime the NameServer has')
    await shOk(`rm ${q(join(d, 'y'))} && rmdir ${q(join(d, 'sub'))}`)
    await t.rejects(stat(join(d, 'y')), { code: 'ENOENT' })
    const after = await stat(d)
    t.equal(after.nlink, 2)
    t.equal(after.mtimeMs, Number(BigInt((await cluster.client.stat('/own')).mtimeNs) / 1_000_000n), 'and after removals')
    await writeFile(join(d, 'y'), 'again')
    t.equal(await readFile(join(d, 'y'), 'utf8'), 'again', 'a name removed here can be created again')
  })

  await t.test('names made elsewhere are found at once (close-to-open), even in a directory listed or made here', async t => {
    await mkdir(join(b.dir, 'shared'))
    t.equal((await shOk(`ls -A ${q(join(b.dir, 'shared'))}`)).trim(), '', 'b listed it empty')
    await cluster.client.create('/shared/late')
    await writeFile(join(a.dir, 'shared', 'from-a'), 'A')
    // No waiting: a's close returned, so b must see the file and its content now.
    t.equal(await readFile(join(b.dir, 'shared', 'from-a'), 'utf8'), 'A', 'b reads the file a just closed')
    t.ok((await stat(join(b.dir, 'shared', 'late'))).isFile(), 'and stats the one another client made')
    t.ok((await shOk(`ls ${q(join(b.dir, 'shared'))}`)).includes('late'), 'a new listing shows it')
    // A directory made on a and a file written into it on a: b walks into both at once.
    await shOk(`ls ${q(join(b.dir, 'shared'))}`)
    await mkdir(join(a.dir, 'shared', 'sub'))
    await writeFile(join(a.dir, 'shared', 'sub', 'deep'), 'D')
    t.equal(await readFile(join(b.dir, 'shared', 'sub', 'deep'), 'utf8'), 'D', 'a new directory and the file in it')
    // A rename on a: b finds the new name and not the old one.
    await shOk(`ls ${q(join(b.dir, 'shared', 'sub'))}`)
    await rename(join(a.dir, 'shared', 'sub', 'deep'), join(a.dir, 'shared', 'sub', 'moved'))
    t.equal(await readFile(join(b.dir, 'shared', 'sub', 'moved'), 'utf8'), 'D', 'the new name of a renamed file')
    // b made the directory, so it "knows" it; a create there of a name made elsewhere
    // must open that file (O_CREAT), not fail or make a second one.
    await mkdir(join(b.dir, 'fresh'))
    await cluster.client.create('/fresh/race')
    await writeFile(join(b.dir, 'fresh', 'race'), 'from b')
    t.equal((await cluster.client.list('/fresh')).length, 1, 'one file')
    t.equal(await readFile(join(a.dir, 'fresh', 'race'), 'utf8'), 'from b', 'with b\'s content')
  })
}

const skip = fuseSkipReason()
if (skip !== undefined) {
  t.test('FUSE tests', { skip }, async () => {})
} else {
  t.test('FUSE round trips and caches', async t => { await suite(t) })
}
