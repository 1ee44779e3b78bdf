// The hissdfs CLI against a real cluster of processes: data round trips (empty, one
// byte, 20 MiB over 1 MiB blocks) and the namespace commands as documented.
import t from 'tap'
import { readFile, writeFile, stat as localStat, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { FileStat } from '../../src/common/protocol.js'
import { startCluster, type Cluster } from '../helpers/cluster.js'
import { randomData, sha256, tempDir } from '../helpers/cluster-files.js'

const MiB = 1024 * 1024

type Tap = Pick<typeof t, 'equal'>

async function ok (t: Tap, c: Cluster, args: string[], input?: Buffer | string): Promise<Buffer> {
  const r = await c.cli(args, input === undefined ? {} : { input })
  t.equal(r.code, 0, `hissdfs ${args.join(' ')} exits 0${r.code === 0 ? '' : ': ' + r.stderr.trim()}`)
  return r.stdout
}


t.test('round trips and namespace commands through the CLI', async t => {
  const c = await startCluster(t, { dataServers: 3, replication: 3, blockSize: MiB })
  const local = await tempDir(t)
  const uid = process.getuid?.() ?? 0
  const gid = process.getgid?.() ?? 0

  const files = {
    empty: Buffer.alloc(0),
    one: Buffer.from('x'),
    big: randomData(20 * MiB),
  }
  for (const [name, data] of Object.entries(files)) await writeFile(join(local, name), data, { mode: 0o644 })

  await t.test('ping', async t => {
    const out = await ok(t, c, ['ping'])
    t.match(out.toString(), /pong .* 3 live dataserver/)
  })

  await t.test('put then cat/get: empty, one byte, 20 MiB in 1 MiB blocks', async t => {
    for (const [name, data] of Object.entries(files)) {
      await ok(t, c, ['put', join(local, name), `/${name}`])
      const out = await ok(t, c, ['cat', `/${name}`])
      t.equal(out.length, data.length, `${name}: cat length`)
      t.equal(sha256(out), sha256(data), `${name}: cat sha256`)
      const dest = join(local, `${name}.back`)
      await ok(t, c, ['get', `/${name}`, dest])
      t.equal(sha256(await readFile(dest)), sha256(data), `${name}: get sha256`)
    }
    // get leaves no temp files behind
    t.same((await readdir(local)).filter(f => f.includes('.tmp-')), [], 'no .tmp- files left by get')
    // get into a directory keeps the remote basename
    const dir = await tempDir(t)
    await ok(t, c, ['get', '/one', dir])
    t.equal((await readFile(join(dir, 'one'))).toString(), 'x', 'get into a directory')
    // cat of several files concatenates
    const both = await ok(t, c, ['cat', '/one', '/one'])
    t.equal(both.toString(), 'xx')
  })

  await t.test('stat --json is the FileStat', async t => {
    const st = JSON.parse((await ok(t, c, ['stat', '/big', '--json'])).toString()) as FileStat
    t.equal(st.type, 'file')
    t.equal(st.size, 20 * MiB)
    t.equal(st.blockSize, MiB)
    t.equal(st.replication, 3)
    t.equal(st.mode & 0o777, 0o644, 'mode taken from the local file')
    t.equal(st.uid, uid)
    t.equal(st.gid, gid)
    t.type(st.ino, 'number')
    t.match(st.mtimeNs, /^[0-9]+$/)
    const human = (await ok(t, c, ['stat', '/big'])).toString()
    t.match(human, /File: \/big/)
    t.match(human, /Size: 20971520/)
    t.match(human, /Blocks: 20 .*Replication: 3/)
    t.match(human, /\(0644\/-rw-r--r--\)/)
  })

  await t.test('ls and ls -l', async t => {
    const names = (await ok(t, c, ['ls'])).toString().trim().split('\n')
    t.same(names, ['big', 'empty', 'one'], 'ls / lists names in order')
    const long = (await ok(t, c, ['ls', '-l', '/'])).toString().trim().split('\n')
    t.equal(long.length, 3)
    const bigLine = long.find(l => l.endsWith(' big')) ?? ''
    t.match(bigLine, new RegExp(`^-rw-r--r-- +3 +${uid} +${gid} +20971520 +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d big$`), 'ls -l row')
    const fileOnly = (await ok(t, c, ['ls', '-l', '/one'])).toString().trim().split('\n')
    t.equal(fileOnly.length, 1, 'ls of a file lists just the file')
    t.match(fileOnly[0], / 1 \d{4}-\d\d-\d\d \d\d:\d\d \/one$/)
    t.same((await ok(t, c, ['ls', 'one'])).toString(), '/one\n', 'relative remote paths are taken from /')

    type LsJson = Array<FileStat & { name: string, path: string }>
    const js = JSON.parse((await ok(t, c, ['ls', '--json', '/'])).toString()) as LsJson
    t.same(js.map(e => [e.name, e.path, e.type]), [['big', '/big', 'file'], ['empty', '/empty', 'file'], ['one', '/one', 'file']], 'ls --json: names, full paths, types in order')
    const big = js.find(e => e.name === 'big')!
    t.equal(big.size, 20971520, 'with each entry\'s FileStat')
    t.equal(big.replication, 3)
    t.equal(big.ino, (JSON.parse((await ok(t, c, ['stat', '/big', '--json'])).toString()) as FileStat).ino, 'the same inode stat --json shows')
    const file = JSON.parse((await ok(t, c, ['ls', '--json', '/one'])).toString()) as LsJson
    t.same(file.map(e => [e.name, e.path, e.size]), [['one', '/one', 1]], 'ls --json of a file: an array of just the file')
    const missing = await c.cli(['ls', '--json', '/nope'])
    t.equal(missing.code, 1, 'ls --json of a missing path fails')
    t.match(missing.stderr, /no such file or directory/)
  })

  await t.test('mkdir -p, put into a directory, ls -R, mv, rm -r', async t => {
    await ok(t, c, ['mkdir', '-p', '/a/b/c'])
    await ok(t, c, ['mkdir', '-p', '/a/b/c'])
    const again = await c.cli(['mkdir', '/a/b'])
    t.equal(again.code, 1, 'mkdir of an existing dir without -p fails')
    t.match(again.stderr, /^hissdfs: mkdir: \/a\/b: file exists/m)
    const noParent = await c.cli(['mkdir', '/x/y'])
    t.equal(noParent.code, 1, 'mkdir without -p needs the parent')
    t.match(noParent.stderr, /no such file or directory/)

    await ok(t, c, ['put', join(local, 'one'), '/a/b/c'])
    t.equal((await ok(t, c, ['cat', '/a/b/c/one'])).toString(), 'x', 'put into an existing dir uses the local basename')
    const lsl = (await ok(t, c, ['ls', '-l', '/a'])).toString().trim()
    t.match(lsl, /^drwx/, 'a directory shows d in ls -l')
    const tree = (await ok(t, c, ['ls', '-R', '/a'])).toString().trim().split('\n')
    t.same(tree, ['/a/b', '/a/b/c', '/a/b/c/one'], 'ls -R lists full paths depth-first')
    const treeJson = JSON.parse((await ok(t, c, ['ls', '-R', '--json', '/a'])).toString()) as Array<{ name: string, path: string, type: string }>
    t.same(treeJson.map(e => [e.path, e.name, e.type]), [['/a/b', 'b', 'dir'], ['/a/b/c', 'c', 'dir'], ['/a/b/c/one', 'one', 'file']], 'ls -R --json: the same entries with names and types')

    await ok(t, c, ['mv', '/a/b/c/one', '/a'])
    t.equal((await c.cli(['exists', '/a/one'])).code, 0, 'mv into an existing directory')
    t.equal((await c.cli(['exists', '/a/b/c/one'])).code, 1, 'source is gone')
    await ok(t, c, ['mv', '/a/one', '/a/renamed'])
    t.equal((await ok(t, c, ['cat', '/a/renamed'])).toString(), 'x', 'mv renames')

    const rmDir = await c.cli(['rm', '/a'])
    t.equal(rmDir.code, 1, 'rm of a directory without -r fails')
    t.match(rmDir.stderr, /^hissdfs: rm: \/a: is a directory$/m)
    t.equal((await c.cli(['exists', '/a'])).code, 0, 'and removes nothing')
    await ok(t, c, ['rm', '-r', '/a'])
    t.equal((await c.cli(['exists', '/a/b/c'])).code, 1, 'rm -r removes the tree')
    t.equal((await c.cli(['exists', '/a'])).code, 1)
  })

  await t.test('put from stdin, overwrite, --no-overwrite, touch', async t => {
    await ok(t, c, ['put', '-', '/stdin.txt'], 'hello from stdin\n')
    t.equal((await ok(t, c, ['cat', '/stdin.txt'])).toString(), 'hello from stdin\n')
    await ok(t, c, ['put', '-', '/stdin.txt'], 'second\n')
    t.equal((await ok(t, c, ['cat', '/stdin.txt'])).toString(), 'second\n', 'put overwrites by default')
    const refused = await c.cli(['put', '--no-overwrite', '-', '/stdin.txt'], { input: 'third\n' })
    t.equal(refused.code, 1, '--no-overwrite refuses an existing file')
    t.equal((await ok(t, c, ['cat', '/stdin.txt'])).toString(), 'second\n', 'content unchanged')

    await ok(t, c, ['touch', '/t'])
    const st1 = JSON.parse((await ok(t, c, ['stat', '/t', '--json'])).toString()) as FileStat
    t.equal(st1.size, 0, 'touch creates an empty file')
    await ok(t, c, ['touch', '/t'])
    const st2 = JSON.parse((await ok(t, c, ['stat', '/t', '--json'])).toString()) as FileStat
    t.ok(BigInt(st2.mtimeNs) > BigInt(st1.mtimeNs), 'touch of an existing file moves mtime forward')
    t.equal(st2.ino, st1.ino, 'same file')
    await ok(t, c, ['touch', '/stdin.txt'])
    t.equal((await ok(t, c, ['cat', '/stdin.txt'])).toString(), 'second\n', 'touch keeps content')
  })

  await t.test('du, setrep, ln -s', async t => {
    const total = JSON.parse((await ok(t, c, ['du', '-s', '/', '--json'])).toString()) as { bytes: number, spaceConsumed: number }
    t.ok(total.bytes >= 20 * MiB + 1, 'du -s counts the bytes')
    t.ok(total.spaceConsumed >= 3 * 20 * MiB, 'spaceConsumed counts replicas')
    const rows = (await ok(t, c, ['du', '/'])).toString().trim().split('\n')
    t.ok(rows.some(r => /^ *20971520 +\d+ \/big$/.test(r)), 'du lists bytes per entry')

    await ok(t, c, ['setrep', '2', '/one'])
    const st = JSON.parse((await ok(t, c, ['stat', '/one', '--json'])).toString()) as FileStat
    t.equal(st.replication, 2, 'setrep changes the replication factor')
    const bad = await c.cli(['setrep', 'lots', '/one'])
    t.equal(bad.code, 1)
    t.match(bad.stderr, /invalid argument/)

    await ok(t, c, ['ln', '-s', '/one', '/link'])
    const l = (await ok(t, c, ['ls', '-l', '/link'])).toString()
    t.match(l, /^l.* \/link -> \/one$/m, 'ls -l shows the link target')
    const lst = JSON.parse((await ok(t, c, ['stat', '/link', '--json'])).toString()) as FileStat
    t.equal(lst.type, 'symlink')
    t.equal(lst.target, '/one')
  })

  await t.test('missing paths and exists exit codes', async t => {
    for (const args of [['cat', '/nope'], ['ls', '/nope'], ['stat', '/nope'], ['get', '/nope', join(local, 'nope')], ['rm', '/nope'], ['mv', '/nope', '/other']]) {
      const r = await c.cli(args)
      t.equal(r.code, 1, `${args.join(' ')} exits 1`)
      t.match(r.stderr, new RegExp(`^hissdfs: ${args[0] as string}: /nope: no such file or directory\\n$`), `${args[0] as string}: one clear line`)
      t.notMatch(r.stderr, /\n\s+at /, 'no stack trace')
    }
    await t.rejects(localStat(join(local, 'nope')), 'get of a missing file creates nothing locally')
    t.equal((await c.cli(['rm', '-f', '/nope'])).code, 0, 'rm -f ignores missing paths')
    t.equal((await c.cli(['exists', '/big'])).code, 0, 'exists: 0 when present')
    t.equal((await c.cli(['exists', '/nope'])).code, 1, 'exists: 1 when absent')
    const bad = await c.cli(['exists', '/a/../b'])
    t.equal(bad.code, 2, 'exists: 2 on error')
    t.match(bad.stderr, /invalid argument/)
    const missingLocal = await c.cli(['put', join(local, 'no-such-local'), '/x'])
    t.equal(missingLocal.code, 1)
    t.match(missingLocal.stderr, /^hissdfs: put: .*no-such-local: no such file or directory$/m)
  })

  await t.test('chmod and chown, also -R', async t => {
    const mode = async (p: string): Promise<number> => (JSON.parse((await ok(t, c, ['stat', p, '--json'])).toString()) as FileStat).mode
    await ok(t, c, ['mkdir', '-p', '/perm/sub'])
    await ok(t, c, ['touch', '/perm/f', '/perm/sub/g'])
    await ok(t, c, ['chmod', '640', '/perm/f'])
    t.equal(await mode('/perm/f'), 0o640, 'octal')
    await ok(t, c, ['chmod', 'u+x,o+r', '/perm/f'])
    t.equal(await mode('/perm/f'), 0o744, 'symbolic, from the current mode')
    await ok(t, c, ['chmod', '-R', 'go-rwx', '/perm'])
    t.same([await mode('/perm'), await mode('/perm/sub'), await mode('/perm/f'), await mode('/perm/sub/g')], [0o700, 0o700, 0o700, 0o600], '-R: the directory and everything below it')
    const badMode = await c.cli(['chmod', 'u+q', '/perm/f'])
    t.equal(badMode.code, 1, 'a bad mode fails')
    t.match(badMode.stderr, /^hissdfs: chmod: u\+q: invalid argument/m)
    t.equal(await mode('/perm/f'), 0o700, 'and changes nothing')
    const missing = await c.cli(['chmod', '600', '/perm/nope', '/perm/f'])
    t.equal(missing.code, 1, 'a missing path fails the command')
    t.match(missing.stderr, /^hissdfs: chmod: \/perm\/nope: no such file or directory$/m)
    t.equal(await mode('/perm/f'), 0o600, 'the other paths are still changed')

    const owner = async (p: string): Promise<[number, number]> => {
      const st = JSON.parse((await ok(t, c, ['stat', p, '--json'])).toString()) as FileStat
      return [st.uid, st.gid]
    }
    await ok(t, c, ['chown', '1234:567', '/perm/f'])
    t.same(await owner('/perm/f'), [1234, 567], 'OWNER:GROUP')
    await ok(t, c, ['chown', ':89', '/perm/f'])
    t.same(await owner('/perm/f'), [1234, 89], ':GROUP keeps the owner')
    await ok(t, c, ['chown', '-R', '42', '/perm'])
    t.same([await owner('/perm'), await owner('/perm/sub'), await owner('/perm/sub/g')], [[42, gid], [42, gid], [42, gid]], '-R: owner everywhere below, groups kept')
    const badUser = await c.cli(['chown', 'no-such-user-here', '/perm/f'])
    t.equal(badUser.code, 1)
    t.match(badUser.stderr, /invalid user "no-such-user-here"/)
    t.same(await owner('/perm/f'), [42, 89], 'and changes nothing')
  })

  await t.test('fsck and report', async t => {
    const r = await c.cli(['fsck', '/'])
    t.match(r.stdout.toString(), /Status: (HEALTHY|CORRUPT)/)
    const rep = await ok(t, c, ['report'])
    t.match(rep.toString(), /DataServers: 3 live, 0 dead/)
  })
})
