// Never a synchronous fs call on the mount here: the servers live in this process.
// Everyday tools on a real mount: tar xf of a real source tree then diff -r, rsync -a
// twice (the second run transfers nothing), git init/add/commit/log/fsck, and the
// namespace operations people type: mv over a file, mv of a directory, rm -r,
// ln -s/readlink, chmod/stat, touch -d/stat, chown.
import t, { type Test } from 'tap'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FUSE_TEST_CONFIG as STABLE, fuseSkipReason, isMounted, REPO_ROOT, sh, shOk, startFuseCluster } from '../helpers/mount.js'

/** A real source tree of a few thousand files, packed at test time. */
// es-toolkit (about 4,400 entries) is in package-lock.json, so every clone has it.
const TREE_CANDIDATES = ['node_modules/es-toolkit', 'node_modules/@tapjs']

async function suite (t: Test): Promise<void> {
  const { mount } = await startFuseCluster(t, { config: STABLE, dataServers: 3, blockSize: 1024 * 1024 })
  const M = mount.dir
  const local = await mkdtemp(join(tmpdir(), 'hiss-fuse-tools-'))
  t.teardown(() => rm(local, { recursive: true, force: true }))
  const q = (p: string): string => JSON.stringify(p)

  await t.test('tar xf of a source tree, then diff -r is clean', { timeout: 900_000 }, async t => {
    const tree = TREE_CANDIDATES.map(p => join(REPO_ROOT, p)).find(p => existsSync(p))
    if (tree === undefined) { t.fail('no source tree found in node_modules (npm ci incomplete?)'); return }
    const tarball = join(local, 'tree.tar')
    await shOk(`tar cf ${q(tarball)} -C ${q(join(tree, '..'))} ${q(tree.split('/').pop()!)}`)
    const entries = (await shOk(`tar tf ${q(tarball)} | wc -l`)).trim()
    t.comment(`extracting ${entries} entries of ${tree}`)
    await shOk(`mkdir ${q(join(M, 'tree'))} && tar xf ${q(tarball)} -C ${q(join(M, 'tree'))}`, { timeoutMs: 800_000 })
    const d = await sh(`diff -r ${q(tree)} ${q(join(M, 'tree', tree.split('/').pop()!))}`, { timeoutMs: 600_000 })
    t.equal(d.code, 0, `diff -r clean${d.code === 0 ? '' : ': ' + (d.stdout + d.stderr).slice(0, 2000)}`)
  })

  await t.test('rsync -a in, then a second rsync transfers nothing', { timeout: 600_000 }, async t => {
    // A private copy, so nobody edits the source between the two runs.
    const src = join(local, 'rsync-src')
    await shOk(`mkdir -p ${q(src)} && cp -a ${q(join(REPO_ROOT, 'src'))}/. ${q(src)}/ && ln -s common ${q(join(src, 'link-to-common'))}`)
    await shOk(`touch -d '2020-05-06 07:08:09.123456789' ${q(join(src, 'common'))}`)
    await shOk(`rsync -a ${q(src)}/ ${q(join(M, 'rs'))}/`, { timeoutMs: 500_000 })
    const again = await shOk(`rsync -a --itemize-changes ${q(src)}/ ${q(join(M, 'rs'))}/`, { timeoutMs: 300_000 })
    t.equal(again.trim(), '', 'second rsync itemizes no change')
    t.equal((await sh(`diff -r ${q(src)} ${q(join(M, 'rs'))}`)).code, 0, 'diff -r clean')
  })

  await t.test('git init/add/commit/log/fsck inside the mount', { timeout: 600_000 }, async t => {
    const repo = join(M, 'repo')
    const git = 'git -c user.email=test@example.com -c user.name=Test -c init.defaultBranch=main'
    await shOk(`mkdir ${q(repo)} && cd ${q(repo)} && ${git} init -q . && cp -r ${q(join(REPO_ROOT, 'src', 'common'))} . && ${git} add . && ${git} commit -qm first`, { timeoutMs: 300_000 })
    await shOk(`cd ${q(repo)} && echo '// change' >> common/errors.ts && ${git} commit -qam second`, { timeoutMs: 120_000 })
    const log = await shOk(`cd ${q(repo)} && ${git} log --oneline`)
    t.equal(log.trim().split('\n').length, 2, 'two commits in the log')
    const fsck = await sh(`cd ${q(repo)} && ${git} fsck --full --strict`, { timeoutMs: 120_000 })
    t.equal(fsck.code, 0, `git fsck clean ${fsck.stderr}`)
    t.equal((await shOk(`cd ${q(repo)} && ${git} status --porcelain`)).trim(), '', 'clean work tree')
  })

  await t.test('mv over an existing file, mv of a directory, rm -r', async t => {
    await writeFile(join(M, 'a.txt'), 'A')
    await writeFile(join(M, 'b.txt'), 'B')
    const inoA = (await stat(join(M, 'a.txt'))).ino
    await shOk(`mv ${q(join(M, 'a.txt'))} ${q(join(M, 'b.txt'))}`)
    t.equal(await readFile(join(M, 'b.txt'), 'utf8'), 'A', 'mv replaced the target')
    t.equal((await stat(join(M, 'b.txt'))).ino, inoA, 'inode number kept across the rename')
    await t.rejects(stat(join(M, 'a.txt')), { code: 'ENOENT' }, 'source name gone')
    await shOk(`mkdir -p ${q(join(M, 'd1/d2/d3'))} && echo deep > ${q(join(M, 'd1/d2/d3/f'))}`)
    await shOk(`mv ${q(join(M, 'd1'))} ${q(join(M, 'moved'))}`)
    t.equal(await readFile(join(M, 'moved/d2/d3/f'), 'utf8'), 'deep\n', 'directory moved with its contents')
    await shOk(`rm -r ${q(join(M, 'moved'))}`)
    await t.rejects(stat(join(M, 'moved')), { code: 'ENOENT' }, 'rm -r removed the tree')
    const r = await sh(`rmdir ${q(join(M, 'rs'))}`)
    t.not(r.code, 0, 'rmdir of a non-empty directory fails')
    t.match(r.stderr, /not empty/i)
  })

  await t.test('ln -s and readlink', async t => {
    await writeFile(join(M, 'target.txt'), 'T')
    await shOk(`ln -s target.txt ${q(join(M, 'link'))}`)
    t.equal(await readlink(join(M, 'link')), 'target.txt')
    t.equal((await shOk(`readlink ${q(join(M, 'link'))}`)).trim(), 'target.txt')
    t.equal(await readFile(join(M, 'link'), 'utf8'), 'T', 'reads through the link')
    t.equal((await shOk(`stat -c %F ${q(join(M, 'link'))}`)).trim(), 'symbolic link')
    // lutimes/lchown change the link itself, never its target.
    await shOk(`touch -h -d '1999-09-09 09:09:09' ${q(join(M, 'link'))} && chown -h 4321:4321 ${q(join(M, 'link'))}`)
    t.equal((await shOk(`stat -c '%Y %u' ${q(join(M, 'link'))}`)).trim(), '936868149 4321', 'link time and owner set')
    t.not((await shOk(`stat -c '%Y %u' ${q(join(M, 'target.txt'))}`)).trim(), '936868149 4321', 'target untouched')
    await shOk(`ln -s does-not-exist ${q(join(M, 'dangling'))} && touch -h -d 2000-01-01 ${q(join(M, 'dangling'))}`)
    t.equal((await shOk(`stat -c %Y ${q(join(M, 'dangling'))}`)).trim(), '946684800', 'time set on a dangling link')
  })

  await t.test('chmod, chown, touch -d and stat', async t => {
    const f = join(M, 'perm.txt')
    await writeFile(f, 'x')
    await shOk(`chmod 640 ${q(f)}`)
    t.equal((await shOk(`stat -c %a ${q(f)}`)).trim(), '640')
    await shOk(`chmod u+x,g-r ${q(f)}`)
    t.equal((await shOk(`stat -c %a ${q(f)}`)).trim(), '700')
    await shOk(`chown 1234:2345 ${q(f)}`)
    t.equal((await shOk(`stat -c %u:%g ${q(f)}`)).trim(), '1234:2345')
    await shOk(`touch -d '2001-02-03 04:05:06.123456789' ${q(f)}`)
    t.equal((await shOk(`stat -c %y ${q(f)}`)).trim(), '2001-02-03 04:05:06.123456789 +0000', 'mtime with nanoseconds')
    await shOk(`touch -m -d '2011-12-13 14:15:16.5' ${q(f)}`)
    t.equal((await shOk(`stat -c '%x|%y' ${q(f)}`)).trim(), '2001-02-03 04:05:06.123456789 +0000|2011-12-13 14:15:16.500000000 +0000', 'touch -m leaves atime alone')
    await shOk(`mkdir ${q(join(M, 'dd'))} && touch -d 2000-01-01 ${q(join(M, 'dd'))} && touch ${q(join(M, 'dd/new'))}`)
    t.not((await shOk(`stat -c %Y ${q(join(M, 'dd'))}`)).trim(), '946684800', 'creating an entry updates the directory mtime')
  })

  await t.test('errors reach the tools with their errno', async t => {
    await shOk(`mkdir ${q(join(M, 'edir'))} && echo x > ${q(join(M, 'efile'))} && echo y > ${q(join(M, 'edir/inner'))}`)
    const cases: Array<[string, RegExp]> = [
      [`cat ${q(join(M, 'missing'))}`, /No such file or directory/],
      [`mkdir ${q(join(M, 'edir'))}`, /File exists/],
      [`rm ${q(join(M, 'edir'))}`, /Is a directory/],
      [`rmdir ${q(join(M, 'efile'))}`, /Not a directory/],
      [`rmdir ${q(join(M, 'edir'))}`, /not empty/i],
      [`ls ${q(join(M, 'efile/x'))}`, /Not a directory/],
      [`mkfifo ${q(join(M, 'fifo'))}`, /Operation not permitted/],
      [`ln ${q(join(M, 'efile'))} ${q(join(M, 'hard'))}`, /Operation not permitted/],
    ]
    for (const [cmd, want] of cases) {
      const r = await sh(cmd)
      t.not(r.code, 0, `fails: ${cmd.replaceAll(M, 'M')}`)
      t.match(r.stderr, want, `errno: ${cmd.replaceAll(M, 'M')}`)
    }
    await shOk(`python3 -c 'import os,stat; os.mknod(${q(join(M, 'via-mknod'))}, 0o600 | stat.S_IFREG)'`)
    t.equal((await shOk(`stat -c '%F %a' ${q(join(M, 'via-mknod'))}`)).trim(), 'regular empty file 600', 'mknod of a regular file')
  })

  await t.test('other users: the kernel checks modes, new files belong to the caller', async t => {
    if ((await sh('command -v setpriv')).code !== 0) { t.fail('setpriv (util-linux) is missing'); return }
    const nobody = 'setpriv --reuid=65534 --regid=65534 --clear-groups'
    await shOk(`mkdir ${q(join(M, 'private'))} && chmod 755 ${q(join(M, 'private'))} && mkdir ${q(join(M, 'public'))} && chmod 1777 ${q(join(M, 'public'))}`)
    const denied = await sh(`${nobody} touch ${q(join(M, 'private', 'x'))}`)
    t.not(denied.code, 0, 'nobody cannot create in a 755 root directory')
    t.match(denied.stderr, /Permission denied/)
    await shOk(`${nobody} sh -c 'echo mine > ${join(M, 'public', 'n.txt')} && mkdir ${join(M, 'public', 'nd')}'`)
    t.equal((await shOk(`stat -c %u:%g ${q(join(M, 'public', 'n.txt'))} ${q(join(M, 'public', 'nd'))}`)).trim(), '65534:65534\n65534:65534', 'file and directory owned by the caller')
    t.equal((await shOk(`${nobody} cat ${q(join(M, 'public', 'n.txt'))}`)).trim(), 'mine')
    // A read-only file created and written through one descriptor (as git does).
    const script = `const fs = require('fs'); const c = fs.constants; const fd = fs.openSync(${JSON.stringify(join(M, 'public', 'ro'))}, c.O_CREAT | c.O_WRONLY | c.O_EXCL, 0o444); fs.writeSync(fd, 'ro-data'); fs.closeSync(fd)`
    await shOk(`${nobody} ${q(process.execPath)} -e ${q(script)}`)
    t.equal(await readFile(join(M, 'public', 'ro'), 'utf8'), 'ro-data', 'writable descriptor on a 0444 file it created')
    const rm = await sh(`${nobody} rm -f ${q(join(M, 'efile'))}`)
    t.not(rm.code, 0, 'nobody cannot remove root\'s file from a 755 directory')
  })

  await t.test('fusermount -u unmounts and the process exits 0', async t => {
    await shOk(`fusermount -u ${q(M)}`)
    const r = await Promise.race([mount.exited, new Promise<'timeout'>(resolve => setTimeout(() => resolve('timeout'), 20_000))])
    t.not(r, 'timeout', 'the process exits')
    if (r !== 'timeout') t.equal(r.code, 0, 'exit code 0')
    t.notOk(await isMounted(M), 'no mount left behind')
  })
}

const skip = fuseSkipReason()
if (skip !== undefined) {
  t.comment(`skipping FUSE tests: ${skip}`)
  t.test('FUSE tests', { skip }, async () => {})
} else {
  await t.test('FUSE with everyday tools', async t => { await suite(t) })
}
