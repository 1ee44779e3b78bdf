// Every acknowledged namespace change survives kill -9 of the NameServer process, and
// under sync=full no reply (nor a read showing a change) goes out before the WAL fsync
// that covers it.
import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { fdatasync } from 'node:fs'
import http, { type ServerResponse } from 'node:http'
import { fileURLToPath } from 'node:url'
import { parseConfig } from '../../src/common/config.js'
import { silentLogger } from '../../src/common/log.js'
import { ManualClock } from '../../src/common/clock.js'
import { HEADER_GIDS, HEADER_UID } from '../../src/common/protocol.js'
import { NameServerCore } from '../../src/nameserver/core.js'
import { ROOT_INO } from '../../src/nameserver/namespace-store.js'
import { listen } from '../../src/common/http-server.js'
import { createNameServerHandlers } from '../../src/nameserver/nameserver.js'

const CHILD = fileURLToPath(new URL('./nameserver-child.js', import.meta.url))
const ROOT = { uid: 0, gids: [0] }

/** A NameServer (sync=full) in a child process on `dir`; killed at teardown if still running. */
async function startChild (t: Test, dir: string): Promise<{ child: ChildProcess, exited: Promise<NodeJS.Signals | null>, addr: string }> {
  const child = spawn(process.execPath, [CHILD, dir], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise<NodeJS.Signals | null>(resolve => child.once('exit', (_code, sig) => resolve(sig)))
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const addr = await new Promise<string>((resolve, reject) => {
    let buf = ''
    const timer = setTimeout(() => reject(new Error('child did not start within 10 s')), 10000)
    child.stdout!.on('data', d => {
      buf += String(d)
      const m = /listening (\S+)/.exec(buf)
      if (m !== null) { clearTimeout(timer); resolve(m[1]!) }
    })
    child.once('exit', () => { clearTimeout(timer); reject(new Error('child exited early')) })
  })
  return { child, exited, addr }
}

/** The namespace of `dir`, opened in this process after the child is gone. */
function reopen (t: Test, dir: string): NameServerCore {
  const cfg = parseConfig({ 'nameserver.address': '127.0.0.1:0', 'nameserver.root.dir': dir, 'security.insecure': true })
  const core = new NameServerCore(cfg, { clock: new ManualClock(), log: silentLogger })
  t.teardown(() => core.close())
  return core
}

t.test('acknowledged mutations survive kill -9', async t => {
  const dir = t.testdir()
  const { child, exited, addr } = await startChild(t, dir)
  const post = async (path: string, body: unknown): Promise<any> => {
    const res = await fetch(`http://${addr}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [HEADER_UID]: '0', [HEADER_GIDS]: '0' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    })
    t.equal(res.status, 200, `${path} acknowledged`)
    return res.json()
  }
  await post('/v1/ns/mkdir', { path: '/keep/deep', parents: true })
  const inos = new Map<string, number>()
  for (let i = 0; i < 20; i++) inos.set(`f${i}`, (await post('/v1/ns/create', { path: `/keep/f${i}`, mode: 0o600 })).stat.ino)
  await post('/v1/ns/rename', { src: '/keep/f0', dst: '/keep/deep/moved' })
  await post('/v1/ns/delete', { path: '/keep/f1' })
  await post('/v1/ns/setattr', { path: '/keep/f2', mode: 0o755, mtimeNs: '1234567890123456789' })
  await post('/v1/ns/symlink', { path: '/keep/link', target: 'deep/moved' })
  const last = (await post('/v1/ns/create', { path: '/keep/last' })).stat.ino

  child.kill('SIGKILL')
  t.equal(await exited, 'SIGKILL')

  const ns = reopen(t, dir).ns
  t.equal(ns.stat('/keep/deep/moved', ROOT).ino, inos.get('f0'))
  t.throws(() => ns.stat('/keep/f0', ROOT), { code: 'ENOENT' })
  t.throws(() => ns.stat('/keep/f1', ROOT), { code: 'ENOENT' })
  t.equal(ns.stat('/keep/f2', ROOT).mode, 0o755)
  t.equal(ns.stat('/keep/f2', ROOT).mtimeNs, '1234567890123456789')
  t.equal(ns.stat('/keep/link', ROOT).ino, inos.get('f0'))
  t.equal(ns.stat('/keep/last', ROOT).ino, last, 'the very last acknowledged change is there')
  t.equal(ns.list('/keep', ROOT).length, 18 + 1 + 1 + 1, 'f2..f19, deep, link, last')
  t.ok(ns.create('/after', ROOT).ino > last, 'inode counter did not go back')
})

t.test('kill -9 amid concurrent creates: every acknowledged one is there', async t => {
  // Many clients at once: commits gather while the previous WAL fsync runs (group
  // commit), and the process dies with requests in flight, some committed, not synced.
  const dir = t.testdir()
  const { child, exited, addr } = await startChild(t, dir)
  const acknowledged: string[] = []
  const KILL_AFTER = 300
  const worker = async (w: number): Promise<void> => {
    for (let i = 0; child.signalCode === null; i++) {
      const name = `w${w}-${i}`
      let res: Response
      try {
        res = await fetch(`http://${addr}/v1/ns/create`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', [HEADER_UID]: '0', [HEADER_GIDS]: '0' },
          body: JSON.stringify({ path: `/${name}` }),
          signal: AbortSignal.timeout(5000),
        })
        await res.arrayBuffer()
      } catch {
        return // the NameServer is gone
      }
      if (res.status !== 200) throw new Error(`create /${name}: ${res.status}`)
      acknowledged.push(name)
      if (acknowledged.length === KILL_AFTER) child.kill('SIGKILL')
    }
  }
  await Promise.all(Array.from({ length: 32 }, (_, w) => worker(w)))
  t.equal(await exited, 'SIGKILL')
  t.ok(acknowledged.length >= KILL_AFTER, `${acknowledged.length} creates acknowledged before the kill`)

  const core = reopen(t, dir)
  const missing = acknowledged.filter(name => core.store.lookup(ROOT_INO, name) === undefined)
  t.same(missing, [], 'no acknowledged create is lost')
})

t.test('sync=full over HTTP: no reply, nor a read showing the change, before its WAL fsync ends', async t => {
  const dir = t.testdir()
  // The WAL fsyncs are held until the test lets them run (then they really run).
  type Done = (err: NodeJS.ErrnoException | null) => void
  const held: Array<() => void> = []
  let heldChanged: () => void = () => {}
  const core = new NameServerCore(parseConfig({
    'nameserver.address': '127.0.0.1:0',
    'nameserver.root.dir': dir,
    'nameserver.sync': 'full',
    'security.insecure': true,
    'safemode.extension.ms': 0,
  }), {
    clock: new ManualClock(),
    log: silentLogger,
    fdatasync: (fd: number, done: Done) => { held.push(() => { fdatasync(fd, done) }); heldChanged() },
  })
  const { app, front } = createNameServerHandlers(core, silentLogger)
  const server = await listen(app, { host: '127.0.0.1', port: 0, front })
  t.teardown(async () => {
    for (const run of held.splice(0)) run()
    await server.close()
    core.close()
  })
  /** Resolves when `n` fsyncs have been asked for (bounded). */
  const fsyncs = async (n: number): Promise<void> => {
    const limit = setTimeout(() => { heldChanged() }, 10000)
    try {
      while (held.length < n) {
        const before = held.length
        await new Promise<void>(resolve => { heldChanged = resolve })
        if (held.length === before) throw new Error(`no fsync #${n} within 10 s`)
      }
    } finally { clearTimeout(limit) }
  }
  const responses = new Map<string, ServerResponse>()
  server.server.prependListener('request', (req: http.IncomingMessage, res: ServerResponse) => { responses.set(`${req.method} ${req.url}`, res) })
  /** The server-side response of a request once its handler has run (GETs: synchronous). */
  const handled = async (key: string): Promise<ServerResponse> => {
    for (let i = 0; i < 1000 && !responses.has(key); i++) await new Promise(resolve => setTimeout(resolve, 10))
    await new Promise(resolve => setImmediate(resolve))
    await new Promise(resolve => setImmediate(resolve))
    const res = responses.get(key)
    if (res === undefined) throw new Error(`${key} never reached the server`)
    return res
  }
  // Each request on its own connection: another client.
  const send = async (method: string, path: string, body?: string, chunked = false): Promise<{ status: number, body: any }> => {
    return await new Promise((resolve, reject) => {
      const headers: Record<string, string> = { 'content-type': 'application/json', [HEADER_UID]: '0', [HEADER_GIDS]: '0' }
      if (body !== undefined && !chunked) headers['content-length'] = String(Buffer.byteLength(body))
      const req = http.request({ host: '127.0.0.1', port: server.port, method, path, headers, agent: false, timeout: 10000 }, res => {
        const chunks: Buffer[] = []
        res.on('data', (d: Buffer) => chunks.push(d))
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }) })
        res.on('error', reject)
      })
      req.on('timeout', () => { req.destroy(new Error(`${method} ${path}: timed out`)) })
      req.on('error', reject)
      if (body !== undefined && chunked) { req.write(body.slice(0, 3)); req.end(body.slice(3)) } else req.end(body)
    })
  }

  // The fast dispatch: a mutation's reply waits for the fsync of its commit.
  const mkdirA = send('POST', '/v1/ns/mkdir', JSON.stringify({ path: '/a' }))
  await fsyncs(1)
  t.equal(responses.get('POST /v1/ns/mkdir')?.headersSent, false, 'committed, fsync running: the mkdir is not acknowledged')
  const statA = send('GET', '/v1/ns/stat?path=/a')
  t.equal((await handled('GET /v1/ns/stat?path=/a')).headersSent, false, 'another client\'s read that would show /a waits too')
  held[0]!()
  t.equal((await mkdirA).status, 200, 'acknowledged once the fsync ended')
  t.match(await statA, { status: 200, body: { stat: { type: 'dir' } } })

  // The Router (a chunked body is not read by the fast dispatch): the same hold.
  const mkdirB = send('POST', '/v1/ns/mkdir?via=router', JSON.stringify({ path: '/b' }), true)
  await fsyncs(2)
  t.equal(responses.get('POST /v1/ns/mkdir?via=router')?.headersSent, false, 'through the Router: not acknowledged before the fsync')
  const missing = send('GET', '/v1/ns/stat?path=/nope')
  t.equal((await handled('GET /v1/ns/stat?path=/nope')).headersSent, false, 'an error reply waits as well')
  held[1]!()
  t.equal((await mkdirB).status, 200)
  t.match(await missing, { status: 404, body: { error: { code: 'ENOENT' } } })
  t.equal(core.store.whenDurable(), undefined, 'everything durable')
  t.equal(held.length, 2, 'one fsync per group commit')
})
