// The NameServer over real HTTP on 127.0.0.1:0: namespace calls, hostile input, cluster
// authentication, a DataServer's conversation and a write through the wire, and a
// reopen on the same directory.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import https from 'node:https'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { signClusterAuth } from '../../src/common/auth.js'
import { parseConfig, type HissConfigInput } from '../../src/common/config.js'
import { createLogger } from '../../src/common/log.js'
import { HEADER_CLUSTER_AUTH, HEADER_GIDS, HEADER_UID } from '../../src/common/protocol.js'
import { NameServer } from '../../src/nameserver/nameserver.js'

const SECRET = 'http-test-secret-0123456789abcdef'

interface Reply { status: number, body: any }

async function start (t: { teardown (fn: () => unknown): void }, dir: string, extra: Partial<HissConfigInput> = {}): Promise<{ ns: NameServer, addr: string, logs: string[] }> {
  const logs: string[] = []
  const cfg = parseConfig({
    'nameserver.address': '127.0.0.1:0',
    'nameserver.root.dir': dir,
    'cluster.secret': SECRET,
    'nameserver.sync': 'normal',
    'safemode.extension.ms': 0,
    ...extra,
  })
  const ns = new NameServer(cfg, { log: createLogger('ns', 'warn', l => { logs.push(l) }) })
  t.teardown(() => ns.close())
  const addr = await ns.start()
  return { ns, addr, logs }
}

function client (addr: string, identity: { uid: number, gids: number[] } | null = { uid: 0, gids: [0] }) {
  const headers = (extra: Record<string, string> = {}): Record<string, string> => ({
    ...(identity === null ? {} : { [HEADER_UID]: String(identity.uid), [HEADER_GIDS]: identity.gids.join(',') }),
    ...extra,
  })
  const send = async (method: string, path: string, body?: unknown, extra?: Record<string, string>): Promise<Reply> => {
    const res = await fetch(`http://${addr}${path}`, {
      method,
      headers: headers({ 'content-type': 'application/json', ...extra }),
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      signal: AbortSignal.timeout(5000),
    })
    return { status: res.status, body: await res.json() }
  }
  return {
    get: (path: string, extra?: Record<string, string>) => send('GET', path, undefined, extra),
    post: (path: string, body: unknown, extra?: Record<string, string>) => send('POST', path, body, extra),
  }
}

t.test('namespace calls over HTTP', async t => {
  const { addr } = await start(t, t.testdir())
  const c = client(addr)
  const ping = await c.get('/v1/ping')
  t.match(ping, { status: 200, body: { ok: true, version: 1, safeMode: false, liveDataServers: 0 } })

  t.equal((await c.post('/v1/ns/mkdir', { path: '/d/e', parents: true, mode: 0o750 })).body.stat.mode, 0o750)
  const created = await c.post('/v1/ns/create', { path: '/d/f' })
  t.equal(created.status, 200)
  t.equal(created.body.stat.type, 'file')
  t.match(await c.post('/v1/ns/create', { path: '/d/f', exclusive: true }), { status: 409, body: { error: { code: 'EEXIST' } } })
  t.same((await c.get('/v1/ns/list?path=/d')).body.entries.map((e: { name: string }) => e.name), ['e', 'f'])
  const renamed = await c.post('/v1/ns/rename', { src: '/d/f', dst: '/d/g' })
  t.equal(renamed.body.stat.ino, created.body.stat.ino)
  t.equal((await c.get('/v1/ns/stat?path=/d/g')).body.stat.ino, created.body.stat.ino)
  t.match(await c.get('/v1/ns/stat?path=/d/f'), { status: 404, body: { error: { code: 'ENOENT' } } })
  t.match(await c.post('/v1/ns/symlink', { path: '/d/l', target: 'g' }), { status: 200, body: { stat: { type: 'symlink' } } })
  t.same((await c.get('/v1/ns/readlink?path=/d/l')).body, { target: 'g' })
  t.equal((await c.get('/v1/ns/stat?path=/d/l&nofollow=1')).body.stat.type, 'symlink')
  t.equal((await c.get('/v1/ns/stat?path=/d/l')).body.stat.type, 'file')
  t.match(await c.post('/v1/ns/setattr', { path: '/d/g', mode: 0o600, mtimeNs: '1700000000123456789' }), { status: 200, body: { stat: { mode: 0o600, mtimeNs: '1700000000123456789' } } })
  t.same((await c.post('/v1/ns/setrep', { path: '/d', replication: 2 })).body, { files: 1 })
  t.same((await c.get('/v1/ns/du?path=/d')).body, { files: 1, dirs: 2, bytes: 0, spaceConsumed: 0 })
  t.match((await c.get('/v1/ns/statfs')).body, { capacity: 0, files: 5 })
  t.match(await c.post('/v1/ns/delete', { path: '/d' }), { status: 409, body: { error: { code: 'ENOTEMPTY' } } })
  t.same((await c.post('/v1/ns/delete', { path: '/d', recursive: true })).body, { deleted: true })
  t.match(await c.get('/v1/ns/list?path=/d'), { status: 404 })

  const nobody = client(addr, null)
  t.match(await nobody.post('/v1/ns/mkdir', { path: '/x' }), { status: 403, body: { error: { code: 'EACCES' } } }, 'no identity headers: nobody')
  t.match(await c.post('/v1/ns/mkdir', { path: '/x' }, { [HEADER_UID]: 'root' }), { status: 400, body: { error: { code: 'BAD_REQUEST' } } })

  const report = (await c.get('/v1/admin/report')).body
  t.match(report, { dataservers: [], blocks: { total: 0, underReplicated: 0, missing: 0, corrupt: 0, pendingDeletion: 0 }, safeMode: false, files: 0, dirs: 1 })
  t.match((await c.get('/v1/admin/fsck?path=/')).body, { path: '/', files: 0, blocks: 0, healthy: true, entries: [] })
})

t.test('hostile input gets 4xx and changes nothing', async t => {
  const { addr } = await start(t, t.testdir())
  const c = client(addr)
  const cases: Array<[string, Reply, number, string]> = [
    ['malformed JSON', await c.post('/v1/ns/mkdir', '{"path": "/a"'), 400, 'BAD_REQUEST'],
    ['unknown field', await c.post('/v1/ns/mkdir', { path: '/a', sneaky: true }), 400, 'BAD_REQUEST'],
    ['wrong type', await c.post('/v1/ns/mkdir', { path: 5 }), 400, 'BAD_REQUEST'],
    ['array body', await c.post('/v1/ns/mkdir', [1, 2]), 400, 'BAD_REQUEST'],
    ['mode out of range', await c.post('/v1/ns/mkdir', { path: '/a', mode: 0o777777 }), 400, 'BAD_REQUEST'],
    ['relative path', await c.post('/v1/ns/mkdir', { path: 'a' }), 400, 'EINVAL'],
    ['dot-dot', await c.post('/v1/ns/mkdir', { path: '/x/../a' }), 400, 'EINVAL'],
    ['NUL', await c.post('/v1/ns/mkdir', { path: '/a\u0000b' }), 400, 'EINVAL'],
    ['long name', await c.post('/v1/ns/mkdir', { path: '/' + 'n'.repeat(256) }), 414, 'ENAMETOOLONG'],
    ['unknown query', await c.get('/v1/ns/stat?path=/&x=1'), 400, 'BAD_REQUEST'],
    ['repeated query', await c.get('/v1/ns/stat?path=/&path=/'), 400, 'BAD_REQUEST'],
    ['bad ino', await c.get('/v1/ns/blocks?ino=-1'), 400, 'BAD_REQUEST'],
    ['unknown endpoint', await c.get('/v1/ns/nope'), 404, 'NOT_FOUND'],
    ['unknown writeId', await c.post('/v1/ns/write/addblock', { writeId: 'deadbeef' }), 410, 'LEASE_EXPIRED'],
    ['float size', await c.post('/v1/ns/write/commit', { writeId: 'x', blocks: [], size: 1.5 }), 400, 'BAD_REQUEST'],
    ['commit with a file-type mode', await c.post('/v1/ns/write/commit', { writeId: 'x', blocks: [], size: 0, mode: 0o100644 }), 400, 'BAD_REQUEST'],
    ['commit with a negative uid', await c.post('/v1/ns/write/commit', { writeId: 'x', blocks: [], size: 0, uid: -1 }), 400, 'BAD_REQUEST'],
    ['commit with a gid by name', await c.post('/v1/ns/write/commit', { writeId: 'x', blocks: [], size: 0, gid: 'root' }), 400, 'BAD_REQUEST'],
    ['a block flagged zero: false', await c.post('/v1/ns/write/commit', { writeId: 'x', blocks: [{ id: 1, gen: 1, length: 1, zero: false }], size: 1 }), 400, 'BAD_REQUEST'],
    ['a block flagged zero: 1', await c.post('/v1/ns/write/commit', { writeId: 'x', blocks: [{ id: 1, gen: 1, length: 1, zero: 1 }], size: 1 }), 400, 'BAD_REQUEST'],
    ['bad time', await c.post('/v1/ns/setattr', { path: '/', mtimeNs: 'yesterday' }), 400, 'BAD_REQUEST'],
  ]
  for (const [what, r, status, code] of cases) {
    t.equal(r.status, status, `${what}: status`)
    t.equal(r.body?.error?.code, code, `${what}: code`)
  }
  t.match(cases[1]![1].body.error.message, /sneaky/, 'the unknown field is named')
  t.same((await c.get('/v1/ns/list?path=/')).body.entries, [], 'nothing was created')
  t.equal((await c.get('/v1/ping')).status, 200, 'still serving')
})

t.test('listing pages over HTTP: limit, after, from, more; bad paging input is refused', async t => {
  const { addr } = await start(t, t.testdir())
  const c = client(addr)
  await c.post('/v1/ns/mkdir', { path: '/big' })
  const names = Array.from({ length: 25 }, (_v, i) => `n${String(i).padStart(2, '0')}`)
  for (const n of names) t.equal((await c.post('/v1/ns/create', { path: `/big/${n}` })).status, 200)
  const all = await c.get('/v1/ns/list?path=/big')
  t.equal(all.body.entries.length, 25, 'without limit: every entry')
  t.equal(all.body.more, undefined, 'and no more flag')
  const seen: string[] = []
  let query = '&limit=10'
  for (let pages = 1; ; pages++) {
    const r = await c.get(`/v1/ns/list?path=/big${query}`)
    t.equal(r.status, 200)
    const got = r.body.entries.map((e: { name: string }) => e.name) as string[]
    seen.push(...got)
    if (r.body.more !== true) { t.equal(pages, 3, 'three pages of at most 10'); break }
    t.equal(got.length, 10)
    query = `&limit=10&after=${encodeURIComponent(got[got.length - 1]!)}`
  }
  t.same(seen, names, 'the pages hold every name once, in order')
  t.same((await c.get('/v1/ns/list?path=/big&from=n20&limit=2')).body.entries.map((e: { name: string }) => e.name), ['n20', 'n21'], 'from: inclusive')
  t.same((await c.get('/v1/ns/list?path=/big&after=n23')).body.entries.map((e: { name: string }) => e.name), ['n24'], 'after without limit: the rest')
  const capped = await c.get('/v1/ns/list?path=/big&limit=999999999')
  t.equal(capped.body.entries.length, 25, 'a limit above the cap is accepted (and cut to it: list-pages.test)')
  for (const [what, q] of [
    ['limit 0', '&limit=0'],
    ['negative limit', '&limit=-1'],
    ['limit not a number', '&limit=ten'],
    ['both after and from', '&after=a&from=b'],
    ['empty after', '&after='],
    ['unknown parameter', '&page=2'],
  ] as const) {
    t.match(await c.get(`/v1/ns/list?path=/big${q}`), { status: 400, body: { error: { code: 'BAD_REQUEST' } } }, what)
  }
  t.match(await c.get('/v1/ns/list?path=/big/n00&limit=5'), { status: 409, body: { error: { code: 'ENOTDIR' } } }, 'a page of a file')
  t.match(await c.get('/v1/ns/list?path=/nope&limit=5'), { status: 404 }, 'a page of nothing')
})

t.test('DataServer API: cluster authentication and a write through the wire', async t => {
  const { addr, logs } = await start(t, t.testdir(), { replication: 1, 'block.size': 4096 })
  const c = client(addr)
  const auth = (id: string, secret = SECRET): Record<string, string> => ({ [HEADER_CLUSTER_AUTH]: signClusterAuth(secret, id, Date.now()) })
  const reg = { id: 'ds-1', address: '127.0.0.1:1', capacity: 1e9, used: 0, remaining: 1e9, activeStreams: 0 }

  t.match(await c.post('/v1/ds/register', reg), { status: 401, body: { error: { code: 'UNAUTHORIZED' } } }, 'no header')
  const before = logs.length
  const wrong = await c.post('/v1/ds/register', reg, auth('ds-1', 'not-the-secret-but-long-enough!!'))
  t.match(wrong, { status: 401, body: { error: { code: 'UNAUTHORIZED' } } }, 'wrong secret')
  const warn = logs.slice(before).find(l => l.includes('authentication failed'))
  t.ok(warn, 'a warning is logged')
  t.match(warn, /127\.0\.0\.1/, 'naming the remote address')
  t.match(warn, /ds-1/, 'and the claimed id')
  t.notMatch(logs.join('\n'), SECRET, 'never the secret')
  t.match(await c.post('/v1/ds/register', reg, auth('ds-2')), { status: 401 }, 'body id must match the authenticated id')
  t.match(await c.post('/v1/ds/register', { ...reg, extra: 1 }, auth('ds-1')), { status: 400 })

  t.same((await c.post('/v1/ds/heartbeat', { ...reg, blocks: 0 }, auth('ds-1'))).body, { reregister: true, commands: [] })
  t.same((await c.post('/v1/ds/register', reg, auth('ds-1'))).body, { ok: true, blockReportNow: true })
  t.same((await c.post('/v1/ds/blockreport', { id: 'ds-1', blocks: [[999, 1, 10]] }, auth('ds-1'))).body, { ok: true })
  t.same((await c.post('/v1/ds/heartbeat', { ...reg, blocks: 1 }, auth('ds-1'))).body, { commands: [{ type: 'delete', blocks: [[999, 1]] }] })

  const open = (await c.post('/v1/ns/write/open', { path: '/w', clientId: 'cli', create: true })).body
  t.match(open, { ino: 0, replication: 1, blockSize: 4096, blocks: [], size: 0 })
  const add = (await c.post('/v1/ns/write/addblock', { writeId: open.writeId })).body
  t.same(add.targets, [{ id: 'ds-1', address: '127.0.0.1:1' }])
  t.equal(typeof add.token, 'string')
  t.same((await c.post('/v1/ds/incremental', { id: 'ds-1', received: [[add.block.id, add.block.gen, 3000]] }, auth('ds-1'))).body, { ok: true })
  const commit = await c.post('/v1/ns/write/commit', { writeId: open.writeId, blocks: [{ ...add.block, length: 3000 }], size: 3000 })
  t.equal(commit.body.stat.size, 3000)
  const plan = (await c.get(`/v1/ns/blocks?ino=${commit.body.stat.ino}&offset=0&length=10`)).body
  t.match(plan.blocks, [{ id: add.block.id, offset: 0, length: 3000, locations: [{ id: 'ds-1' }] }])
  t.same((await c.post('/v1/ns/write/renew', { clientId: 'cli' })).body, { renewed: 0 })
  t.same((await c.post('/v1/ns/badblock', { block: { id: add.block.id, gen: add.block.gen }, dataserver: 'ds-1' })).body, { ok: true })
  // A client's report cannot condemn a replica (only its DataServer can): still offered.
  t.match((await c.get('/v1/ns/blocks?path=/w')).body.blocks[0].locations, [{ id: 'ds-1' }], 'reported bad by a client: still offered')
  t.match((await c.get('/v1/admin/fsck?path=/w')).body, { files: 1, blocks: 1, corrupt: 0 })
  t.same((await c.post('/v1/ds/unregister', { id: 'ds-1' }, auth('ds-1'))).body, { ok: true })
  t.match((await c.get('/v1/admin/report')).body, { dataservers: [{ id: 'ds-1', state: 'dead' }], blocks: { total: 1, missing: 1 } })
})

t.test('a new NameServer on the same directory sees everything; start/close are idempotent', async t => {
  const dir = t.testdir()
  const first = await start(t, dir)
  t.equal(await first.ns.start(), first.addr, 'start twice: same address')
  const c = client(first.addr)
  await c.post('/v1/ns/mkdir', { path: '/a/b', parents: true })
  const f = (await c.post('/v1/ns/create', { path: '/a/b/f', mode: 0o640 })).body.stat
  await c.post('/v1/ns/rename', { src: '/a/b', dst: '/a/c' })
  await first.ns.close()
  await first.ns.close()
  await t.rejects(first.ns.start(), 'a closed NameServer does not start again')

  const second = await start(t, dir)
  const c2 = client(second.addr)
  const st = (await c2.get('/v1/ns/stat?path=/a/c/f')).body.stat
  t.equal(st.ino, f.ino)
  t.equal(st.mode, 0o640)
  t.equal(st.ctimeNs, f.ctimeNs)
  t.match(await c2.get('/v1/ns/stat?path=/a/b'), { status: 404 })
})

t.test('configuration errors fail the start', async t => {
  const noDir = new NameServer(parseConfig({ 'nameserver.address': '127.0.0.1:0', 'cluster.secret': SECRET }))
  await t.rejects(noDir.start(), { code: 'CONFIG', message: /nameserver\.root\.dir/ })
  const noSecret = new NameServer(parseConfig({ 'nameserver.address': '127.0.0.1:0', 'nameserver.root.dir': t.testdir() }))
  await t.rejects(noSecret.start(), { code: 'CONFIG', message: /cluster\.secret/ })
})

t.test('HTTPS when a certificate is configured', async t => {
  const dir = t.testdir()
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' })
  } catch {
    t.plan(0, 'openssl is not installed')
    return
  }
  const { addr } = await start(t, join(dir, 'ns'), { 'tls.cert': cert, 'tls.key': key })
  const body = await new Promise<string>((resolve, reject) => {
    const req = https.get(`https://${addr}/v1/ping`, { ca: readFileSync(cert), timeout: 5000 }, res => {
      let s = ''
      res.on('data', d => { s += String(d) })
      res.on('end', () => resolve(s))
    })
    req.on('error', reject)
  })
  t.match(JSON.parse(body), { ok: true })
})
