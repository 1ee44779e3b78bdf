// The cluster secret: a DataServer that does not hold it cannot join (every /v1/ds call
// is 401, and a real DataServer instance with the wrong secret never receives a block),
// one that holds it joins and gets replicas; the secret never appears in any log line
// (captured at debug level through the `log` dependency), in `hissdfs report --json`,
// nor in any admin reply; and a short or missing secret stops the servers at start.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { buffer as readAll } from 'node:stream/consumers'
import { signClusterAuth } from '../../src/common/auth.js'
import { parseConfig, type HissConfigInput } from '../../src/common/config.js'
import { createLogger, type Logger } from '../../src/common/log.js'
import { HEADER_CLUSTER_AUTH, type ReportReply } from '../../src/common/protocol.js'
import { NameServer } from '../../src/nameserver/nameserver.js'
import { DataServer } from '../../src/dataserver/dataserver.js'
import { createClient, type HissClient } from '../../src/client/index.js'
import { CLI_MAIN } from '../helpers/cluster.js'
import { findBlockFiles, sha256 } from '../helpers/cluster-files.js'
import { errorCodeOf, rawRequest } from '../helpers/fuzz.js'
import { waitUntil } from '../helpers/wait-until.js'

const SECRET = 'right-cluster-secret-7f3a9c1e5b'
const WRONG = 'rogue-cluster-secret-0d8e2b6a4c'
/** Block tokens are bearer credentials: base64url JSON claims + "." + 43-char HMAC. */
const TOKEN_SHAPE = /eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{43}/

const FAST: Partial<HissConfigInput> = {
  'heartbeat.interval.ms': 100,
  'heartbeat.dead.ms': 3000,
  'replication.interval.ms': 100,
  'safemode.extension.ms': 0,
  'nameserver.sync': 'normal',
  'client.timeout.ms': 5000,
  'client.retry.ms': 8000,
  'block.size': 64 * 1024,
  'replication': 2,
  'replication.min': 1,
}

interface Captured { name: string, lines: string[], log: Logger }

function capture (name: string, all: Captured[]): Captured {
  const lines: string[] = []
  const c: Captured = { name, lines, log: createLogger(name, 'debug', l => { lines.push(l) }) }
  all.push(c)
  return c
}

function run (args: string[], timeoutMs = 30000): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`hissdfs ${args.join(' ')}: no exit within ${timeoutMs} ms`)) }, timeoutMs)
    child.once('close', code => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}

t.test('only DataServers holding the cluster secret join; the secret never leaks', async t => {
  const root = await mkdtemp(join(tmpdir(), 'hiss-sec-auth-'))
  const logs: Captured[] = []
  const closers: Array<() => Promise<unknown>> = []
  t.teardown(async () => {
    for (const c of closers.reverse()) await c().catch(() => {})
    await rm(root, { recursive: true, force: true })
  })

  const nsLog = capture('nameserver', logs)
  const ns = new NameServer(parseConfig({ ...FAST, 'cluster.secret': SECRET, 'nameserver.address': '127.0.0.1:0', 'nameserver.root.dir': join(root, 'ns') }), { log: nsLog.log })
  closers.push(() => ns.close())
  const nsAddr = await ns.start()

  const startDs = async (name: string, secret: string): Promise<{ ds: DataServer, dir: string, addr: string }> => {
    const dir = join(root, name)
    const cap = capture(name, logs)
    const ds = new DataServer(parseConfig({ ...FAST, 'cluster.secret': secret, 'nameserver.address': nsAddr, 'dataserver.address': '127.0.0.1:0', 'dataserver.root.dir': dir }), { log: cap.log })
    closers.push(() => ds.close({ unregister: false }))
    return { ds, dir, addr: await ds.start() }
  }
  const client: HissClient = createClient(parseConfig({ ...FAST, 'nameserver.address': nsAddr }), { identity: { uid: 0, gids: [0] }, log: capture('client', logs).log })
  closers.push(() => client.close())
  const live = async (): Promise<ReportReply['dataservers']> => (await client.report()).dataservers.filter(d => d.state === 'live')

  const a = await startDs('ds-a', SECRET)
  const b = await startDs('ds-b', SECRET)
  await waitUntil(async () => (await live()).length === 2, { timeoutMs: 15000, what: 'two good DataServers live' })

  // A real DataServer with the wrong secret: it serves its block API, keeps trying to
  // register, and is refused every time.
  const rogue = await startDs('ds-rogue', WRONG)
  await waitUntil(() => nsLog.lines.some(l => l.includes('authentication failed') && l.includes(rogue.ds.id)), { timeoutMs: 10000, what: 'the NameServer refusing the rogue DataServer' })

  await t.test('every DataServer endpoint refuses a wrong, stale, forged or missing signature (401)', async t => {
    const reg = { id: 'rogue-x', address: '127.0.0.1:1', capacity: 1e12, used: 0, remaining: 1e12, activeStreams: 0 }
    const calls: Array<[string, Record<string, unknown>]> = [
      ['/v1/ds/register', reg],
      ['/v1/ds/heartbeat', { ...reg, blocks: 0 }],
      ['/v1/ds/blockreport', { id: 'rogue-x', blocks: [] }],
      ['/v1/ds/incremental', { id: 'rogue-x', received: [[1, 1, 1]] }],
      ['/v1/ds/unregister', { id: 'rogue-x' }],
    ]
    const goodSig = signClusterAuth(SECRET, 'rogue-x', Date.now())
    const headerCases: Array<[string, Record<string, string>]> = [
      ['wrong secret', { [HEADER_CLUSTER_AUTH]: signClusterAuth(WRONG, 'rogue-x', Date.now()) }],
      ['no header', {}],
      ['stale timestamp (10 min old, right secret)', { [HEADER_CLUSTER_AUTH]: signClusterAuth(SECRET, 'rogue-x', Date.now() - 600000) }],
      ['timestamp from the future (10 min, right secret)', { [HEADER_CLUSTER_AUTH]: signClusterAuth(SECRET, 'rogue-x', Date.now() + 600000) }],
      ['forged MAC', { [HEADER_CLUSTER_AUTH]: goodSig.slice(0, -4) + (goodSig.endsWith('AAAA') ? 'BBBB' : 'AAAA') }],
      ['id swapped after signing', { [HEADER_CLUSTER_AUTH]: goodSig.replace('.rogue-x.', `.${encodeURIComponent(a.ds.id)}.`) }],
      ['the secret itself as the header', { [HEADER_CLUSTER_AUTH]: SECRET }],
      ['garbage', { [HEADER_CLUSTER_AUTH]: '1.2.3.4.5' }],
    ]
    for (const [path, body] of calls) {
      for (const [what, headers] of headerCases) {
        const r = await rawRequest(nsAddr, { method: 'POST', path, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
        t.equal(r.status, 401, `${path}, ${what}: 401`)
        t.equal(errorCodeOf(r.body), 'UNAUTHORIZED', `${path}, ${what}: UNAUTHORIZED`)
      }
    }
    // Impersonating a good DataServer without the secret changes nothing about it.
    const asA = { [HEADER_CLUSTER_AUTH]: signClusterAuth(WRONG, a.ds.id, Date.now()), 'content-type': 'application/json' }
    t.equal((await rawRequest(nsAddr, { method: 'POST', path: '/v1/ds/unregister', headers: asA, body: JSON.stringify({ id: a.ds.id }) })).status, 401)
    t.equal((await rawRequest(nsAddr, { method: 'POST', path: '/v1/ds/register', headers: asA, body: JSON.stringify({ ...reg, id: a.ds.id, address: '127.0.0.1:9' }) })).status, 401)
    const now = await live()
    t.same(now.map(d => d.id).sort(), [a.ds.id, b.ds.id].sort(), 'still exactly the two good DataServers')
    t.equal(now.find(d => d.id === a.ds.id)?.address, a.addr, 'a\'s address was not hijacked')
  })

  const files = new Map<string, string>()
  await t.test('writes never land on the rogue DataServer', async t => {
    for (let i = 0; i < 6; i++) {
      const data = Buffer.alloc(150_000 + i * 7_000, `file-${i}-`)
      await client.put(`/f${i}`, Readable.from([data]))
      files.set(`/f${i}`, sha256(data))
    }
    for (const [p, h] of files) t.equal(sha256(await readAll(client.createReadStream(p))), h, `${p} reads back`)
    t.same(await findBlockFiles(rogue.dir), [], 'no blk_* file in the rogue\'s storage directory')
    const rep = await client.report()
    t.notOk(rep.dataservers.some(d => d.id === rogue.ds.id || d.address === rogue.addr), 'the rogue is absent from the report')
    const fsck = await client.fsck('/')
    const holders = new Set(fsck.entries.flatMap(e => e.blocks.flatMap(b => b.replicas.map(r => r.dataserver))))
    t.notOk(holders.has(rogue.ds.id), 'fsck lists no replica on the rogue')
    t.ok(fsck.healthy, 'and the files are healthy')
    t.notOk(rogue.ds.registered, 'the rogue itself knows it is not registered')
    const rogueLog = logs.find(l => l.name === 'ds-rogue')!.lines.join('\n')
    t.match(rogueLog, /UNAUTHORIZED|authentication/i, 'the rogue logs why it cannot join')
  })

  await t.test('a DataServer with the right secret joins and receives replicas', async t => {
    const c = await startDs('ds-c', SECRET)
    await waitUntil(async () => (await live()).some(d => d.id === c.ds.id), { timeoutMs: 15000, what: 'the third good DataServer live' })
    t.equal(await client.setReplication('/', 3), files.size, 'replication raised to 3 on every file')
    const blocks = await waitUntil(async () => {
      const found = await findBlockFiles(c.dir)
      const f = await client.fsck('/')
      return f.underReplicated === 0 && found.length > 0 ? found : undefined
    }, { timeoutMs: 20000, what: 're-replication onto the new DataServer' })
    t.ok(blocks.length >= files.size, `the new DataServer holds ${blocks.length} replicas`)
    t.same(await findBlockFiles(rogue.dir), [], 'still nothing on the rogue')
  })

  await t.test('the secret is in no log line, report or reply', async t => {
    // The client config has no secret: the CLI proves a client never needs it.
    const clientCfg = join(root, 'client.json')
    await writeFile(clientCfg, JSON.stringify({ 'nameserver.address': nsAddr }))
    const rep = await run(['report', '--json', '--config', clientCfg])
    t.equal(rep.code, 0, `report --json exits 0 ${rep.stderr}`)
    const parsed = JSON.parse(rep.stdout) as ReportReply
    t.equal(parsed.dataservers.filter(d => d.state === 'live').length, 3, 'report --json lists the three good DataServers')
    const replies = [
      rep.stdout,
      rep.stderr,
      (await rawRequest(nsAddr, { method: 'GET', path: '/v1/admin/report' })).body.toString(),
      (await rawRequest(nsAddr, { method: 'GET', path: '/v1/ping' })).body.toString(),
      (await rawRequest(a.addr, { method: 'GET', path: '/v1/ping' })).body.toString(),
      JSON.stringify(await client.fsck('/')),
    ]
    for (const [i, text] of replies.entries()) {
      t.notOk(text.includes(SECRET), `reply ${i} does not contain the secret`)
      t.notOk(text.includes(WRONG), `reply ${i} does not contain the rogue's secret`)
    }
    const total = logs.reduce((n, l) => n + l.lines.length, 0)
    t.ok(total > 20, `logs were captured (${total} lines at debug level)`)
    for (const l of logs) {
      const text = l.lines.join('\n')
      t.notOk(text.includes(SECRET), `${l.name}: no log line contains the cluster secret`)
      t.notOk(text.includes(WRONG), `${l.name}: no log line contains the rogue's secret`)
      t.notOk(text.includes(Buffer.from(SECRET).toString('base64')), `${l.name}: nor its base64`)
      const leaked = l.lines.find(line => TOKEN_SHAPE.test(line))
      t.equal(leaked, undefined, `${l.name}: no block access token (a bearer credential) is logged`)
    }
  })
})

t.test('a short or missing secret stops both servers at start', async t => {
  const dir = t.testdir()
  const ns = (extra: Partial<HissConfigInput>, name: string): NameServer =>
    new NameServer(parseConfig({ 'nameserver.address': '127.0.0.1:0', 'nameserver.root.dir': join(dir, name), ...extra }), { log: createLogger('ns', 'error', () => {}) })
  const ds = async (extra: Partial<HissConfigInput>, name: string): Promise<DataServer> => {
    const d = new DataServer(parseConfig({ 'nameserver.address': '127.0.0.1:1', 'dataserver.address': '127.0.0.1:0', 'dataserver.root.dir': join(dir, name), ...extra }), { log: createLogger('ds', 'error', () => {}) })
    await d.start()
    return d
  }
  const fifteen = 'fifteen-bytes!!'
  t.equal(Buffer.byteLength(fifteen), 15)
  const refused: Array<[string, Partial<HissConfigInput>, RegExp]> = [
    ['15-byte secret', { 'cluster.secret': fifteen }, /at least 16 bytes/],
    ['empty secret', { 'cluster.secret': '' }, /cluster\.secret/],
    ['no secret', {}, /cluster\.secret/],
    ['no secret, security.insecure false', { 'security.insecure': false }, /cluster\.secret/],
  ]
  for (const [i, [what, extra, msg]] of refused.entries()) {
    const n = ns(extra, `ns-bad-${i}`)
    await t.rejects(n.start(), { code: 'CONFIG', message: msg }, `NameServer, ${what}: CONFIG`)
    await n.close()
    await t.rejects(ds(extra, `ds-bad-${i}`), { code: 'CONFIG', message: msg }, `DataServer, ${what}: CONFIG`)
  }
  // The boundary and the explicit opt-out start.
  const accepted: Array<[string, Partial<HissConfigInput>]> = [
    ['exactly 16 bytes', { 'cluster.secret': 'sixteen-bytes-ok' }],
    ['16 bytes of UTF-8 in 8 characters', { 'cluster.secret': '\u00e9'.repeat(8) }],
    ['no secret with security.insecure', { 'security.insecure': true }],
  ]
  for (const [i, [what, extra]] of accepted.entries()) {
    const n = ns(extra, `ns-ok-${i}`)
    t.match(await n.start(), /^127\.0\.0\.1:\d+$/, `NameServer, ${what}: starts`)
    await n.close()
    const d = await ds(extra, `ds-ok-${i}`)
    t.ok(d.address, `DataServer, ${what}: starts`)
    await d.close({ unregister: false })
  }

  // Through the CLI daemons: exit 2, one line naming the key, and never the value.
  const cfgFile = join(dir, 'short.json')
  await writeFile(cfgFile, JSON.stringify({ 'nameserver.address': '127.0.0.1:0', 'nameserver.root.dir': join(dir, 'cli-ns'), 'dataserver.root.dir': join(dir, 'cli-ds'), 'cluster.secret': fifteen }))
  for (const role of ['nameserver', 'dataserver']) {
    const r = await run([role, '--config', cfgFile])
    t.equal(r.code, 2, `hissdfs ${role} with a 15-byte secret exits 2`)
    t.match(r.stderr, /"cluster\.secret".*16 bytes/, `${role}: names the key and the rule`)
    t.notOk(r.stderr.includes(fifteen), `${role}: does not print the secret`)
    t.equal(r.stdout, '', `${role}: never claims to be listening`)
  }
})
