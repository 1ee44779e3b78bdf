// POSIX permissions end to end, for two ordinary users and the superuser: first through
// the client library (createClient with an explicit identity), then through the CLI run
// as real other users (setpriv as root; the CLI sends its process's uid and groups).
// A 0600 file is unreadable to others (read, block plan by path and by inode), a 0755
// directory is listable but not writable to others, only the owner may chmod and only
// the superuser chown, and in a sticky (1777) directory nobody removes or renames
// another user's file. The superuser can do all of it.
import t, { type Test } from 'tap'
import { execFileSync, spawn } from 'node:child_process'
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { buffer as readAll } from 'node:stream/consumers'
import type { HissClient } from '../../src/client/index.js'
import { CLI_MAIN } from '../helpers/cluster.js'
import { sha256 } from '../helpers/cluster-files.js'
import { startCluster } from '../helpers/inprocess-cluster.js'

const ALICE = { uid: 1001, gids: [1001] }
const BOB = { uid: 1002, gids: [1002] }
/** In alice's group, not alice. */
const CAROL = { uid: 1003, gids: [1003, 1001] }
const ROOT = { uid: 0, gids: [0] }

/** POSIX lets unlink/rename in a sticky directory fail with either (Linux says EPERM). */
const STICKY_CODES = ['EACCES', 'EPERM']

function bytes (n: number, tag: string): Buffer {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = (i * 31 + tag.charCodeAt(i % tag.length)) & 0xff
  return b
}

async function read (fs: HissClient, path: string): Promise<Buffer> {
  return await readAll(fs.createReadStream(path))
}

async function failsWith (t: Test, p: Promise<unknown>, codes: string | string[], what: string): Promise<void> {
  const want = Array.isArray(codes) ? codes : [codes]
  try {
    await p
    t.fail(`${what}: succeeded, expected ${want.join(' or ')}`)
  } catch (err) {
    const code = (err as { code?: unknown }).code
    t.ok(typeof code === 'string' && want.includes(code), `${what}: ${String(code)} (want ${want.join('/')})`)
  }
}

t.test('permissions through the client library', async t => {
  const c = await startCluster(t, { dataServers: 2, replication: 2, blockSize: 64 * 1024 })
  const root = c.newClient({ identity: ROOT })
  const alice = c.newClient({ identity: ALICE })
  const bob = c.newClient({ identity: BOB })
  const carol = c.newClient({ identity: CAROL })

  await root.mkdir('/home/alice', { parents: true, mode: 0o755 })
  await root.setattr('/home/alice', { uid: ALICE.uid, gid: 1001 })
  await root.mkdir('/tmp', { mode: 0o1777 })
  t.equal((await root.stat('/tmp')).mode, 0o1777, '/tmp is 1777')

  const secret = bytes(200_000, 'secret')
  const pub = bytes(70_000, 'public')
  const grp = bytes(5_000, 'group')
  const priv = await alice.put('/home/alice/private', Readable.from([secret]), { mode: 0o600 })
  await alice.put('/home/alice/public', Readable.from([pub]), { mode: 0o644 })
  await alice.put('/home/alice/group', Readable.from([grp]), { mode: 0o640 })
  t.match(priv, { uid: ALICE.uid, gid: 1001, mode: 0o600, size: secret.length }, 'alice owns her 0600 file')

  await t.test('a 0600 file is readable by its owner only', async t => {
    t.equal(sha256(await read(alice, '/home/alice/private')), sha256(secret), 'the owner reads it')
    await failsWith(t, read(bob, '/home/alice/private'), 'EACCES', 'bob reads it')
    await failsWith(t, bob.getBlocks({ path: '/home/alice/private' }), 'EACCES', 'bob asks for the block plan by path')
    await failsWith(t, bob.getBlocks({ ino: priv.ino }), 'EACCES', 'bob asks for the block plan by inode')
    await failsWith(t, bob.getBlocks({ path: '/home/alice/private' }, { offset: 0, length: 10 }), 'EACCES', 'bob asks for a range')
    await failsWith(t, bob.openWrite({ path: '/home/alice/private' }), 'EACCES', 'bob opens it for writing')
    await failsWith(t, bob.openWrite({ ino: priv.ino }), 'EACCES', 'bob opens it for writing by inode')
    await failsWith(t, read(carol, '/home/alice/private'), 'EACCES', 'carol (alice\'s group) reads it')
    t.equal((await bob.stat('/home/alice/private')).mode, 0o600, 'stat needs only search permission on the directory')
    t.equal(sha256(await read(carol, '/home/alice/group')), sha256(grp), 'carol reads the 0640 group file')
    await failsWith(t, read(bob, '/home/alice/group'), 'EACCES', 'bob reads the 0640 group file')
    t.equal(sha256(await read(bob, '/home/alice/public')), sha256(pub), 'bob reads the 0644 file')
    await failsWith(t, bob.openWrite({ path: '/home/alice/public' }), 'EACCES', 'bob opens the 0644 file for writing')
    t.equal(sha256(await read(root, '/home/alice/private')), sha256(secret), 'root reads it')
  })

  await t.test('a 0755 directory is listable but not writable by others', async t => {
    const before = (await alice.list('/home/alice')).map(e => e.name)
    t.same((await bob.list('/home/alice')).map(e => e.name), before, 'bob lists it')
    await failsWith(t, bob.create('/home/alice/x'), 'EACCES', 'bob creates a file in it')
    await failsWith(t, bob.put('/home/alice/y', Readable.from([Buffer.from('intruder')])), 'EACCES', 'bob puts a file in it')
    await failsWith(t, bob.put('/home/alice/public', Readable.from([Buffer.from('intruder')]), { overwrite: true }), 'EACCES', 'bob overwrites a file in it')
    await failsWith(t, bob.mkdir('/home/alice/d'), 'EACCES', 'bob makes a directory in it')
    await failsWith(t, bob.symlink('/etc/passwd', '/home/alice/l'), 'EACCES', 'bob makes a symlink in it')
    await failsWith(t, bob.delete('/home/alice/public'), 'EACCES', 'bob deletes a file in it')
    await failsWith(t, bob.rename('/home/alice/public', '/tmp/stolen'), 'EACCES', 'bob moves a file out of it')
    await failsWith(t, bob.delete('/home/alice', { recursive: true }), 'EACCES', 'bob deletes it recursively')
    t.same((await alice.list('/home/alice')).map(e => e.name), before, 'nothing changed')
    t.equal(sha256(await read(alice, '/home/alice/public')), sha256(pub), 'the file is intact')
    t.notOk(await root.exists('/tmp/stolen'))
    const d = await root.mkdir('/home/alice/by-root')
    t.equal(d.uid, 0, 'root creates in it')
    await root.delete('/home/alice/by-root')
  })

  await t.test('chmod/chown/chgrp: owner for mode, superuser for owner', async t => {
    await failsWith(t, bob.setattr('/home/alice/private', { mode: 0o666 }), 'EPERM', 'bob chmods alice\'s file')
    await failsWith(t, bob.setattr('/home/alice/private', { uid: BOB.uid }), 'EPERM', 'bob chowns alice\'s file to himself')
    await failsWith(t, bob.setattr('/home/alice/private', { gid: 1002 }), 'EPERM', 'bob chgrps alice\'s file')
    await failsWith(t, bob.setattr('/home/alice', { mode: 0o777 }), 'EPERM', 'bob chmods alice\'s directory')
    await failsWith(t, alice.setattr('/home/alice/private', { uid: BOB.uid }), 'EPERM', 'alice gives her file away')
    await failsWith(t, alice.setattr('/home/alice/private', { gid: 1002 }), 'EPERM', 'alice chgrps to a group she is not in')
    await failsWith(t, bob.setReplication('/home/alice/private', 1), 'EACCES', 'bob changes the replication of alice\'s file')
    t.match(await alice.stat('/home/alice/private'), { uid: ALICE.uid, gid: 1001, mode: 0o600 }, 'unchanged')
    t.equal((await alice.setattr('/home/alice/private', { mode: 0o640 })).mode, 0o640, 'the owner chmods')
    t.equal((await alice.setattr('/home/alice/private', { mode: 0o600 })).mode, 0o600)
    t.match(await root.setattr('/home/alice/public', { uid: BOB.uid, gid: 1002 }), { uid: BOB.uid, gid: 1002 }, 'root chowns')
    t.equal((await root.setattr('/home/alice/public', { mode: 0o600 })).mode, 0o600, 'root chmods someone else\'s file')
    t.equal(sha256(await read(bob, '/home/alice/public')), sha256(pub), 'the new owner reads it')
    await failsWith(t, read(alice, '/home/alice/public'), 'EACCES', 'the old owner no longer does')
  })

  await t.test('a sticky directory protects other users\' files', async t => {
    const a = bytes(30_000, 'sticky')
    await alice.put('/tmp/a', Readable.from([a]), { mode: 0o666 })
    await bob.put('/tmp/bobs', Readable.from([Buffer.from('bob was here')]))
    await failsWith(t, bob.delete('/tmp/a'), STICKY_CODES, 'bob deletes alice\'s file')
    await failsWith(t, bob.rename('/tmp/a', '/tmp/b'), STICKY_CODES, 'bob renames alice\'s file')
    await failsWith(t, bob.rename('/tmp/bobs', '/tmp/a'), STICKY_CODES, 'bob renames his file over alice\'s')
    await failsWith(t, bob.put('/tmp/a', Readable.from([Buffer.from('replaced')]), { overwrite: true }), STICKY_CODES, 'bob replaces alice\'s file with a put')
    t.equal(sha256(await read(alice, '/tmp/a')), sha256(a), 'alice\'s file is intact')
    t.notOk(await root.exists('/tmp/b'))
    t.equal((await bob.rename('/tmp/bobs', '/tmp/bobs2')).uid, BOB.uid, 'bob renames his own file')
    await bob.delete('/tmp/bobs2')
    t.notOk(await root.exists('/tmp/bobs2'), 'and deletes it')
    t.equal((await root.rename('/tmp/a', '/tmp/moved-by-root')).uid, ALICE.uid, 'root renames alice\'s file')
    await root.delete('/tmp/moved-by-root')
    t.notOk(await root.exists('/tmp/moved-by-root'), 'root deletes it')
  })

  await t.test('the superuser bypasses every check', async t => {
    await alice.setattr('/home/alice', { mode: 0o700 })
    await failsWith(t, bob.list('/home/alice'), 'EACCES', 'bob lists a 0700 directory')
    t.ok((await root.list('/home/alice')).length >= 3, 'root lists it')
    t.equal((await root.put('/home/alice/by-root', Readable.from([Buffer.from('root')]))).uid, 0, 'root writes in it')
    await root.setattr('/home/alice/private', { mode: 0o000 })
    t.equal(sha256(await read(root, '/home/alice/private')), sha256(secret), 'root reads a 0000 file')
    await failsWith(t, read(alice, '/home/alice/private'), 'EACCES', 'its owner does not')
    await root.delete('/home/alice', { recursive: true })
    t.notOk(await root.exists('/home/alice'), 'root deletes the whole tree')
  })
})

// ---------------------------------------------------------------------------
// The CLI as real users

function cliSkipReason (): string | false {
  if (process.getuid?.() !== 0) return 'not running as root: cannot run the CLI as other users'
  try {
    execFileSync('setpriv', ['--reuid=1001', '--regid=1001', '--clear-groups', 'true'], { stdio: 'pipe', timeout: 10000 })
  } catch (err) {
    return `setpriv cannot switch users here: ${(err as Error).message.split('\n')[0] ?? ''}`
  }
  return false
}

/**
 * The environment for a CLI run as another user: without the test runner's hooks (they
 * write under the repository, which that user cannot). The runner re-adds NODE_OPTIONS
 * to every spawn, so the command line also drops it with `env -u`.
 */
function otherUserEnv (home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'NODE_OPTIONS' || k.startsWith('TAP') || k.startsWith('_TAPJS')) continue
    env[k] = v
  }
  env.HOME = home
  return env
}

interface CliRun { code: number | null, stdout: Buffer, stderr: string }

t.test('permissions through the CLI run as other users', { skip: cliSkipReason() }, async t => {
  const c = await startCluster(t, { dataServers: 2, replication: 2, blockSize: 64 * 1024 })
  const root = c.newClient({ identity: ROOT })
  // Everything the other users need must be readable by them: a 0755 directory with a
  // 0644 config (no secret: clients never need it).
  const dir = await mkdtemp(join(tmpdir(), 'hiss-sec-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await chmod(dir, 0o755)
  const config = join(dir, 'client.json')
  await writeFile(config, JSON.stringify({ 'nameserver.address': c.nameServerAddress, 'client.timeout.ms': 5000, 'client.retry.ms': 5000 }), { mode: 0o644 })

  const cli = (as: number | undefined, args: string[], input?: Buffer): Promise<CliRun> => new Promise((resolve, reject) => {
    const argv = [CLI_MAIN, ...args, '--config', config]
    const child = as === undefined
      ? spawn(process.execPath, argv, { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn('setpriv', [`--reuid=${as}`, `--regid=${as}`, '--clear-groups', 'env', '-u', 'NODE_OPTIONS', process.execPath, ...argv], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'], env: otherUserEnv(dir) })
    const out: Buffer[] = []
    let err = ''
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    child.stdin.on('error', () => {})
    child.stdin.end(input)
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`hissdfs ${args.join(' ')} as ${as ?? 'root'}: no exit within 30 s`)) }, 30000)
    child.once('close', code => { clearTimeout(timer); resolve({ code, stdout: Buffer.concat(out), stderr: err }) })
  })
  const denied = (t: Test, r: CliRun, what: string): void => {
    t.equal(r.code, 1, `${what}: exit 1`)
    const lines = r.stderr.trim().split('\n')
    t.equal(lines.length, 1, `${what}: one line of error`)
    t.match(lines[0], /^hissdfs: \w+: \/\S+: (permission denied|operation not permitted)/, `${what}: says why (${r.stderr.trim()})`)
  }

  await root.mkdir('/cli/alice', { parents: true, mode: 0o755 })
  await root.setattr('/cli/alice', { uid: 1001, gid: 1001 })
  await root.mkdir('/cli/tmp', { mode: 0o1777 })

  // A local 0600 file of alice's: `put` keeps the local mode.
  const secret = bytes(150_000, 'cli-secret')
  const local = join(dir, 'private.bin')
  await writeFile(local, secret, { mode: 0o600 })
  await chown(local, 1001, 1001)

  const put = await cli(1001, ['put', local, '/cli/alice/private'])
  t.equal(put.code, 0, `alice puts her file (${put.stderr.trim()})`)
  t.match(await root.stat('/cli/alice/private'), { uid: 1001, gid: 1001, mode: 0o600, size: secret.length }, 'owned by alice, mode 0600 from the local file')
  const own = await cli(1001, ['cat', '/cli/alice/private'])
  t.equal(own.code, 0)
  t.equal(sha256(own.stdout), sha256(secret), 'alice cats it')

  denied(t, await cli(1002, ['cat', '/cli/alice/private']), 'bob cats alice\'s 0600 file')
  const ls = await cli(1002, ['ls', '/cli/alice'])
  t.equal(ls.code, 0, 'bob lists alice\'s 0755 directory')
  t.match(ls.stdout.toString(), /private/)
  denied(t, await cli(1002, ['put', '-', '/cli/alice/x'], Buffer.from('intruder')), 'bob puts into alice\'s directory')
  denied(t, await cli(1002, ['mkdir', '/cli/alice/d']), 'bob makes a directory in alice\'s directory')
  denied(t, await cli(1002, ['rm', '/cli/alice/private']), 'bob removes alice\'s file')

  const a = await cli(1001, ['put', '-', '/cli/tmp/a'], Buffer.from('alice in tmp'))
  t.equal(a.code, 0, 'alice puts into the sticky directory')
  denied(t, await cli(1002, ['rm', '/cli/tmp/a']), 'bob removes alice\'s file in the sticky directory')
  denied(t, await cli(1002, ['mv', '/cli/tmp/a', '/cli/tmp/b']), 'bob renames alice\'s file in the sticky directory')
  t.same((await root.list('/cli/tmp')).map(e => e.name), ['a'], 'the sticky directory is unchanged')

  const rootCat = await cli(undefined, ['cat', '/cli/alice/private'])
  t.equal(sha256(rootCat.stdout), sha256(secret), 'root cats alice\'s 0600 file')
  t.equal((await cli(undefined, ['rm', '/cli/tmp/a'])).code, 0, 'root removes alice\'s file in the sticky directory')
  t.notOk(await root.exists('/cli/tmp/a'))
})
