// Two Unix users on one mount (made by root with allow_other): each one's private files
// stay private, directories are listable but not writable by others, and only owners
// change modes and owners. The uids 4101/4102 need no /etc/passwd entry: setpriv runs
// the tools with those ids, and the mount passes the caller's uid/gid to the NameServer.
import t from 'tap'
import { join } from 'node:path'
import { FUSE_TEST_CONFIG as STABLE, fuseSkipReason, sh, shOk, startFuseCluster } from '../helpers/mount.js'

const ALICE = 'setpriv --reuid=4101 --regid=4101 --clear-groups'
const BOB = 'setpriv --reuid=4102 --regid=4102 --clear-groups'
const q = (p: string): string => JSON.stringify(p)

const skip = fuseSkipReason() ?? ((await sh('command -v setpriv')).code !== 0 ? 'setpriv (util-linux) is missing' : undefined)
if (skip !== undefined) t.comment(`skipping two-user FUSE tests: ${skip}`)

t.test('two users on one mount', { skip: skip ?? false }, async t => {
  const { mount } = await startFuseCluster(t, { config: STABLE, dataServers: 2, replication: 2, blockSize: 1024 * 1024 })
  const M = mount.dir
  const home = join(M, 'home')
  // root prepares a shared, sticky directory (like /tmp) for both users.
  await shOk(`mkdir ${q(home)} && chmod 1777 ${q(home)}`)

  const a = join(home, 'alice')
  await shOk(`${ALICE} sh -c 'mkdir ${a} && chmod 755 ${a} && echo secret > ${a}/private.txt && chmod 600 ${a}/private.txt && echo hello > ${a}/public.txt'`)
  t.equal((await shOk(`stat -c '%u:%g %a' ${q(join(a, 'private.txt'))}`)).trim(), '4101:4101 600', 'the file belongs to its creator with the mode she set')

  await t.test('a 0600 file of one user is unreadable by the other', async t => {
    const r = await sh(`${BOB} cat ${q(join(a, 'private.txt'))}`)
    t.not(r.code, 0, 'bob cannot read it')
    t.match(r.stderr, /Permission denied/)
    t.equal((await shOk(`${ALICE} cat ${q(join(a, 'private.txt'))}`)).trim(), 'secret', 'alice can')
  })

  await t.test('a 0755 directory is listable but not writable by the other user', async t => {
    const ls = await shOk(`${BOB} ls ${q(a)}`)
    t.match(ls, /public\.txt/, 'bob lists it')
    t.equal((await shOk(`${BOB} cat ${q(join(a, 'public.txt'))}`)).trim(), 'hello', 'bob reads a 0644 file in it')
    for (const cmd of [`touch ${q(join(a, 'bob.txt'))}`, `mkdir ${q(join(a, 'bobdir'))}`, `rm -f ${q(join(a, 'public.txt'))}`, `mv ${q(join(a, 'public.txt'))} ${q(join(home, 'stolen'))}`]) {
      const r = await sh(`${BOB} ${cmd}`)
      t.not(r.code, 0, `bob: ${cmd} fails`)
      t.match(r.stderr, /Permission denied|Operation not permitted/, `bob: ${cmd}: EACCES/EPERM`)
    }
    const left = await shOk(`ls ${q(a)}`)
    t.same(left.trim().split('\n').sort(), ['private.txt', 'public.txt'], 'nothing changed in alice\'s directory')
  })

  await t.test('chmod and chown by a non-owner fail with EPERM', async t => {
    const chmod = await sh(`${BOB} chmod 644 ${q(join(a, 'private.txt'))}`)
    t.not(chmod.code, 0)
    t.match(chmod.stderr, /Operation not permitted/)
    const chown = await sh(`${BOB} chown 4102 ${q(join(a, 'public.txt'))}`)
    t.not(chown.code, 0)
    t.match(chown.stderr, /Operation not permitted/)
    const giveAway = await sh(`${ALICE} chown 4102 ${q(join(a, 'public.txt'))}`)
    t.not(giveAway.code, 0, 'even the owner cannot give a file away (only root can)')
    t.equal((await shOk(`stat -c '%u %a' ${q(join(a, 'private.txt'))} ${q(join(a, 'public.txt'))}`)).trim(), '4101 600\n4101 644', 'modes and owners unchanged')
  })

  await t.test('sticky directory: the other user cannot remove a file she owns there', async t => {
    await shOk(`${ALICE} sh -c 'echo x > ${home}/alice-shared.txt'`)
    const r = await sh(`${BOB} rm -f ${q(join(home, 'alice-shared.txt'))}`)
    t.not(r.code, 0)
    t.equal((await shOk(`cat ${q(join(home, 'alice-shared.txt'))}`)).trim(), 'x', 'still there')
  })
})
