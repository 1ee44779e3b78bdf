// Every acknowledged namespace change survives kill -9 of the NameServer process.
import t from 'tap'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { parseConfig } from '../../src/common/config.js'
import { silentLogger } from '../../src/common/log.js'
import { ManualClock } from '../../src/common/clock.js'
import { HEADER_GIDS, HEADER_UID } from '../../src/common/protocol.js'
import { NameServerCore } from '../../src/nameserver/core.js'

const CHILD = fileURLToPath(new URL('./nameserver-child.js', import.meta.url))
const ROOT = { uid: 0, gids: [0] }

t.test('acknowledged mutations survive kill -9', async t => {
  const dir = t.testdir()
  const child = spawn(process.execPath, [CHILD, dir], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise<NodeJS.Signals | null>(resolve => child.once('exit', (_code, sig) => resolve(sig)))
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const addr = await new Promise<string>((resolve, reject) => {
    let buf = ''
    const timer = setTimeout(() => reject(new Error('child did not start within 10 s')), 10000)
    child.stdout.on('data', d => {
      buf += String(d)
      const m = /listening (\S+)/.exec(buf)
      if (m !== null) { clearTimeout(timer); resolve(m[1]!) }
    })
    child.once('exit', () => { clearTimeout(timer); reject(new Error('child exited early')) })
  })
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

  const cfg = parseConfig({ 'nameserver.address': '127.0.0.1:0', 'nameserver.root.dir': dir, 'security.insecure': true })
  const core = new NameServerCore(cfg, { clock: new ManualClock(), log: silentLogger })
  t.teardown(() => core.close())
  const ns = core.ns
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
