// Config files with mistakes stop every process at start with one line naming the key
// (exit 2); usage errors exit 2; the shipped configs are valid.
import t from 'tap'
import { spawn } from 'node:child_process'
import { readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { loadConfigFile } from '../../src/common/config.js'
import { CLI_MAIN, REPO_ROOT, TEST_SECRET } from '../helpers/cluster.js'
import { tempDir } from '../helpers/cluster-files.js'

interface Run { code: number | null, stdout: string, stderr: string }

function run (args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_MAIN, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`hissdfs ${args.join(' ')} did not exit within 20 s`)) }, 20000)
    child.once('close', code => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}

t.test('bad configs stop the daemons with one line naming the key', async t => {
  const dir = await tempDir(t)
  const good = {
    'nameserver.address': '127.0.0.1:0',
    'nameserver.root.dir': join(dir, 'ns'),
    'dataserver.root.dir': join(dir, 'ds'),
    'cluster.secret': TEST_SECRET,
  }
  const cases: Array<{ name: string, role: 'nameserver' | 'dataserver', cfg: Record<string, unknown>, key: string }> = [
    { name: 'unknown key', role: 'nameserver', cfg: { ...good, 'heartbeat.intervall.ms': 100 }, key: 'heartbeat.intervall.ms' },
    { name: 'wrong type', role: 'nameserver', cfg: { ...good, 'heartbeat.interval.ms': 'fast' }, key: 'heartbeat.interval.ms' },
    { name: 'missing key', role: 'nameserver', cfg: { 'nameserver.root.dir': join(dir, 'ns'), 'cluster.secret': TEST_SECRET }, key: 'nameserver.address' },
    { name: 'unknown key', role: 'dataserver', cfg: { ...good, 'dataserver.port': 1 }, key: 'dataserver.port' },
    { name: 'wrong type', role: 'dataserver', cfg: { ...good, replication: '3' }, key: 'replication' },
    { name: 'missing storage dir', role: 'dataserver', cfg: { 'nameserver.address': '127.0.0.1:1', 'cluster.secret': TEST_SECRET }, key: 'dataserver.root.dir' },
    { name: 'missing secret', role: 'dataserver', cfg: { ...good, 'cluster.secret': undefined }, key: 'cluster.secret' },
    { name: 'missing secret', role: 'nameserver', cfg: { ...good, 'cluster.secret': undefined }, key: 'cluster.secret' },
  ]
  for (const [i, c] of cases.entries()) {
    const file = join(dir, `bad-${i}.json`)
    await writeFile(file, JSON.stringify(c.cfg))
    const r = await run([c.role, '--config', file], dir)
    t.equal(r.code, 2, `${c.role} ${c.name}: exit 2`)
    const lines = r.stderr.trim().split('\n')
    t.equal(lines.length, 1, `${c.role} ${c.name}: one line (${r.stderr.trim()})`)
    t.match(lines[0], /^hissdfs: /, 'prefixed')
    t.ok(lines[0]?.includes(`"${c.key}"`), `${c.role} ${c.name}: names "${c.key}": ${lines[0] ?? ''}`)
    t.equal(r.stdout, '', 'never claims to be listening')
  }
  const notJson = join(dir, 'not-json.json')
  await writeFile(notJson, '{ "nameserver.address": ')
  const r = await run(['nameserver', '--config', notJson], dir)
  t.equal(r.code, 2, 'invalid JSON: exit 2')
  t.match(r.stderr, /not valid JSON/)
  const missing = await run(['ping', '--config', join(dir, 'nope.json')], dir)
  t.equal(missing.code, 2, 'unreadable client config: exit 2')
  t.match(missing.stderr, /^hissdfs: cannot read config file .*nope\.json: ENOENT\n$/)
  // The NameServer's directory is not created by a config error.
  t.notOk((await readdir(dir)).includes('ns'), 'nothing created')
})

t.test('config file lookup: --config, then $HISSDFS_CONFIG', async t => {
  const dir = await tempDir(t)
  const bad = join(dir, 'env.json')
  await writeFile(bad, JSON.stringify({ 'nameserver.address': '127.0.0.1:1', 'no.such.key': 1 }))
  const viaEnv = await run(['ping'], dir, { ...process.env, HISSDFS_CONFIG: bad })
  t.equal(viaEnv.code, 2, '$HISSDFS_CONFIG is read')
  t.match(viaEnv.stderr, /"no\.such\.key"/)
  const flagWins = await run(['ping', '--config', join(dir, 'other.json')], dir, { ...process.env, HISSDFS_CONFIG: bad })
  t.match(flagWins.stderr, /other\.json/, '--config wins over $HISSDFS_CONFIG')
})

t.test('usage errors exit 2; --help exits 0', async t => {
  const dir = await tempDir(t)
  const unknown = await run(['frobnicate'], dir)
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, /^hissdfs: unknown command 'frobnicate'/)
  const missingArg = await run(['cat'], dir)
  t.equal(missingArg.code, 2)
  t.match(missingArg.stderr, /missing required argument/)
  const help = await run(['--help'], dir)
  t.equal(help.code, 0)
  t.match(help.stdout, /Usage: hissdfs/)
  const port = await run(['dataserver', '--port', 'x'], dir)
  t.equal(port.code, 2, 'bad --port is a usage error')
})

t.test('the shipped configs are valid', async t => {
  for (const f of ['nameserver.json', 'dataserver-1.json', 'dataserver-2.json', 'dataserver-3.json', 'client.json']) {
    const cfg = loadConfigFile(join(REPO_ROOT, 'configs', f))
    t.match(cfg['nameserver.address'], /^127\.0\.0\.1:9870$/, `${f}: NameServer on 127.0.0.1:9870`)
  }
  const ports = ['dataserver-1.json', 'dataserver-2.json', 'dataserver-3.json'].map(f => loadConfigFile(join(REPO_ROOT, 'configs', f))['dataserver.address'])
  t.same(ports, ['127.0.0.1:9866', '127.0.0.1:9867', '127.0.0.1:9868'])
  const secrets = new Set(['nameserver.json', 'dataserver-1.json', 'dataserver-2.json', 'dataserver-3.json'].map(f => loadConfigFile(join(REPO_ROOT, 'configs', f))['cluster.secret']))
  t.equal(secrets.size, 1, 'one shared cluster secret')
  t.equal(loadConfigFile(join(REPO_ROOT, 'configs', 'client.json'))['cluster.secret'], undefined, 'clients do not get the secret')
})
