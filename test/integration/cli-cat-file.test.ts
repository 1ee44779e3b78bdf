// `hissdfs cat` with stdout on a regular file or /dev/null, and `hissdfs get` into a
// local file, write the bytes straight from the receive buffer (HissFs.readInto) instead
// of through a stream. Shown here with real processes: several files of many blocks
// concatenate exactly, a missing file and a directory among them are reported while the
// rest are still printed (cat(1)), get copies exactly and leaves nothing behind when it
// fails, and a killed DataServer holding replicas is read around.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { cliToFile, startCluster, type Cluster } from '../helpers/cluster.js'
import { randomData, sha256, tempDir } from '../helpers/cluster-files.js'

const MiB = 1024 * 1024

/** `hissdfs cat PATHS > outFile`. */
const catTo = (c: Cluster, outFile: string, paths: string[]): Promise<{ code: number | null, stderr: string }> => cliToFile(c, outFile, ['cat', ...paths])

t.test('cat into a regular file', async t => {
  const c = await startCluster(t, { dataServers: 3, replication: 3, blockSize: MiB })
  const local = await tempDir(t)
  const big = randomData(5 * MiB + 777)
  const small = Buffer.from('small file\n')
  await writeFile(join(local, 'big'), big)
  await writeFile(join(local, 'small'), small)
  for (const [src, dst] of [['big', '/big'], ['small', '/small']]) {
    const r = await c.cli(['put', join(local, src!), dst!])
    t.equal(r.code, 0, `put ${dst}`)
  }
  t.equal((await c.cli(['mkdir', '/dir'])).code, 0, 'mkdir /dir')
  await writeFile(join(local, 'empty'), '')
  t.equal((await c.cli(['put', join(local, 'empty'), '/empty'])).code, 0, 'put /empty')

  const out = join(local, 'out')
  let r = await catTo(c, out, ['/big', '/empty', '/small', '/big'])
  t.equal(r.code, 0, `exit 0${r.stderr === '' ? '' : ': ' + r.stderr}`)
  t.equal(sha256(await readFile(out)), sha256(Buffer.concat([big, small, big])), 'the files, concatenated, byte for byte')

  r = await catTo(c, '/dev/null', ['/big'])
  t.equal(r.code, 0, 'to /dev/null: exit 0')

  r = await catTo(c, out, ['/small', '/nope', '/dir', '/small'])
  t.not(r.code, 0, 'a missing file and a directory: non-zero exit')
  t.match(r.stderr, /nope.*no such file/i, 'the missing file is reported')
  t.match(r.stderr, /dir/, 'the directory is reported')
  t.equal((await readFile(out)).toString(), 'small file\nsmall file\n', 'the other files are still printed')

  const got = join(local, 'got')
  let g = await c.cli(['get', '/big', got])
  t.equal(g.code, 0, `get: exit 0${g.stderr === '' ? '' : ': ' + g.stderr}`)
  t.equal(sha256(await readFile(got)), sha256(big), 'get: the file, byte for byte')
  t.equal((await stat(got)).mode & 0o777, 0o644, 'get: the remote mode')
  g = await c.cli(['get', '/nope', join(local, 'nope')])
  t.not(g.code, 0, 'get of a missing file: non-zero exit')
  t.same((await readdir(local)).filter(n => n.startsWith('nope')), [], 'and no file or temp file left')
  g = await c.cli(['get', '/dir', join(local, 'dircopy')])
  t.not(g.code, 0, 'get of a directory: non-zero exit')
  t.same((await readdir(local)).filter(n => n.startsWith('dircopy')), [], 'and nothing left')

  // A full local disk: the local file is named, nothing is left behind (root only: the
  // test mounts a 1 MiB tmpfs of its own).
  if (process.getuid?.() === 0) {
    const small = join(local, 'small-fs')
    await mkdir(small)
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small])
    t.equal(m.status, 0, 'a 1 MiB tmpfs for the full-disk case')
    t.teardown(() => { spawnSync('umount', ['-l', small]) })
    g = await c.cli(['get', '/big', join(small, 'big')])
    t.not(g.code, 0, 'get into a full disk: non-zero exit')
    t.match(g.stderr, /small-fs\/big.*no space/i, 'the message names the local file and the full disk')
    t.same(await readdir(small), [], 'and no file or temp file is left on it')
  } else {
    t.comment('full-disk case skipped: mounting a tmpfs needs root')
  }
  r = await catTo(c, '/dev/full', ['/small', '/big'])
  t.not(r.code, 0, 'cat into /dev/full: non-zero exit')
  t.match(r.stderr, /no space/i, 'the write error is reported')

  await c.killDataServer(0, 'SIGKILL')
  r = await catTo(c, out, ['/big'])
  t.equal(r.code, 0, `with a DataServer killed: exit 0${r.stderr === '' ? '' : ': ' + r.stderr}`)
  t.equal(sha256(await readFile(out)), sha256(big), 'and the content read around it')
  g = await c.cli(['get', '/big', join(local, 'got2')])
  t.equal(g.code, 0, 'get with a DataServer killed: exit 0')
  t.equal(sha256(await readFile(join(local, 'got2'))), sha256(big), 'get reads around it too')
  t.same((await readdir(local)).filter(n => n.includes('.tmp-')), [], 'no temp files left by get')
})
