// A create that loses its race: another client makes the name after the kernel's lookup
// found it absent and before the mount's create reaches the NameServer. The mount then
// answers ESTALE, the kernel walks the path again, finds that file and opens it as any
// existing file, with its own checks: O_EXCL fails, the caller's permission is checked,
// O_TRUNC truncates, O_APPEND appends. The race is made exact with an HTTP relay
// between the mount and the NameServer that holds the mount's create of one path until
// the test has made the file through another client.
import t, { type Test } from 'tap'
import http from 'node:http'
import { once } from 'node:events'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { startCluster, type Cluster } from '../helpers/inprocess-cluster.js'
import { FUSE_TEST_CONFIG as STABLE, fuseSkipReason, sh, startMount } from '../helpers/mount.js'

const BOB = 'setpriv --reuid=4102 --regid=4102 --clear-groups'

/** Forwards every request to `target`; holdCreate(path) stops the create of `path` until released. */
async function relay (t: { teardown (fn: () => unknown): void }, target: string): Promise<{ address: string, holdCreate (path: string): { arrived: Promise<void>, release (): void } }> {
  const holds = new Map<string, { arrive: () => void, released: Promise<void> }>()
  const agent = new http.Agent({ keepAlive: true })
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      let wait: Promise<void> = Promise.resolve()
      if (req.method === 'POST' && req.url === '/v1/ns/create') {
        const h = holds.get((JSON.parse(body.toString()) as { path: string }).path)
        if (h !== undefined) { h.arrive(); wait = h.released }
      }
      void wait.then(() => {
        const [host, port] = target.split(':')
        const out = http.request({ host, port: Number(port), method: req.method, path: req.url, headers: req.headers, agent }, up => {
          res.writeHead(up.statusCode ?? 502, up.headers)
          up.pipe(res)
        })
        out.on('error', () => { res.destroy() })
        out.end(body)
      })
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
    agent.destroy()
  })
  const port = (server.address() as { port: number }).port
  return {
    address: `127.0.0.1:${port}`,
    holdCreate (path) {
      let arrive!: () => void
      let release!: () => void
      const arrived = new Promise<void>(resolve => { arrive = resolve })
      const released = new Promise<void>(resolve => { release = resolve })
      holds.set(path, { arrive, released })
      return { arrived, release }
    },
  }
}

async function suite (t: Test): Promise<void> {
  const c: Cluster = await startCluster(t, { config: STABLE, dataServers: 1, replication: 1 })
  const r = await relay(t, c.nameServerAddress)
  const m = await startMount(t, { ...c.cfg, 'nameserver.address': r.address })
  await c.client.mkdir('/d', { mode: 0o777 })
  const content = async (p: string): Promise<string> => {
    const parts: Buffer[] = []
    await c.client.readInto(p, b => { parts.push(Buffer.from(b)) })
    return Buffer.concat(parts).toString()
  }

  /** Run `cmd` (which opens /d/NAME with O_CREAT through the mount); the file is made meanwhile. */
  const race = async (name: string, body: string, mode: number, cmd: string): Promise<{ code: number, stderr: string }> => {
    const hold = r.holdCreate(`/d/${name}`)
    const run = sh(cmd.replaceAll('FILE', JSON.stringify(join(m.dir, 'd', name))), { timeoutMs: 60_000 })
    await hold.arrived
    await c.client.put(`/d/${name}`, Readable.from([Buffer.from(body)]))
    await c.client.setattr(`/d/${name}`, { mode, uid: 1000, gid: 1000 })
    hold.release()
    return await run
  }

  await t.test('O_EXCL: EEXIST, the other client\'s file unchanged', async t => {
    const res = await race('excl', 'theirs', 0o666, 'set -C; printf ours > FILE')
    t.not(res.code, 0, 'the exclusive create fails')
    t.match(res.stderr, /exist/, `with EEXIST: ${res.stderr.trim()}`)
    t.equal(await content('/d/excl'), 'theirs', 'unchanged')
  })

  await t.test('O_TRUNC: the file is opened and truncated', async t => {
    const res = await race('trunc', 'theirs, longer than ours', 0o666, `${BOB} sh -c 'printf ours > FILE'`)
    t.equal(res.code, 0, `> succeeds ${res.stderr}`)
    t.equal(await content('/d/trunc'), 'ours', 'no tail of the old content is left')
  })

  await t.test('O_APPEND: writes go to the end', async t => {
    const res = await race('append', 'theirs\n', 0o666, `${BOB} sh -c 'printf "ours\\n" >> FILE'`)
    t.equal(res.code, 0, `>> succeeds ${res.stderr}`)
    t.equal(await content('/d/append'), 'theirs\nours\n', 'appended, not written over')
  })

  await t.test('no permission on the file made meanwhile: EACCES, nothing changes', async t => {
    const res = await race('private', 'secret', 0o600, `${BOB} sh -c 'printf ours > FILE'`)
    t.not(res.code, 0, 'write')
    t.match(res.stderr, /Permission denied/)
    t.equal(await content('/d/private'), 'secret', 'not truncated')
    const ro = await race('readonly', 'shared', 0o644, `${BOB} sh -c 'printf ours >> FILE'`)
    t.not(ro.code, 0, 'write on a read-only file')
    t.equal(await content('/d/readonly'), 'shared')
    // Root may, as the kernel lets root.
    const root = await race('rootok', 'secret', 0o600, 'printf "" >> FILE')
    t.equal(root.code, 0, `root opens it ${root.stderr}`)
    t.equal(await content('/d/rootok'), 'secret', 'nothing written')
  })
}

const skip = fuseSkipReason() ?? ((await sh('command -v setpriv')).code !== 0 ? 'setpriv (util-linux) is missing' : undefined)
if (skip !== undefined) {
  t.test('FUSE tests', { skip }, async () => {})
} else {
  t.test('a create that lost its race to another client', async t => { await suite(t) })
}
