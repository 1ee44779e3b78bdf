// The patched fuse-native (patches/fuse-native+2.2.6.patch): a tiny in-test filesystem
// is mounted for real and driven with coreutils, as root and as other users, to check
// that ops see their caller, that stat times keep nanoseconds both ways, and that the
// caller's groups can be read from /proc while the op is in flight.
import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SystemClock } from '../../../src/common/clock.js'
import type { Identity } from '../../../src/client/types.js'
import { CallerIdentities, parseStatusGroups, utimeToProtocol } from '../../../src/fuse/fuse-context.js'
import type { CallerContext, NsStatTimes, UtimeNs } from '../../../src/fuse/fuse-context.js'

// fuse-native ships no types; the test only needs this much of it.
interface FuseInstance {
  mount (cb: (err: Error | null) => void): void
  unmount (cb: (err: Error | null) => void): void
}
type FuseCtor = new (mnt: string, ops: object, opts: object) => FuseInstance
const require = createRequire(import.meta.url)

const ENOENT = -2
const NOBODY = 65534
const UTC = { ...process.env, TZ: 'UTC', LC_ALL: 'C' }

interface Run { pid: number, stdout: string }

/** Runs a program without a shell (so the pid we see is the one FUSE sees), bounded. */
function run (file: string, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { env: UTC, timeout: 10_000 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${file} ${args.join(' ')}: ${err.message} ${stderr}`))
      else resolve({ pid: child.pid ?? -1, stdout: stdout.trim() })
    })
  })
}

function asUser (uid: number, groups: number[], file: string, args: string[]): Promise<Run> {
  const g = groups.length === 0 ? ['--clear-groups'] : [`--groups=${groups.join(',')}`]
  return run('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, ...g, file, ...args])
}

function skipReason (): string | undefined {
  if (!existsSync('/dev/fuse')) return '/dev/fuse is missing'
  if (process.getuid?.() !== 0) return 'needs root (allow_other mount, setpriv to other users)'
  if (!['/usr/bin/setpriv', '/bin/setpriv'].some(p => existsSync(p))) return 'setpriv (util-linux) is missing'
  if (!['/usr/bin/fusermount', '/bin/fusermount'].some(p => existsSync(p))) return 'fusermount is missing'
  return undefined
}

t.test('parseStatusGroups reads the Groups: line', async t => {
  t.same(parseStatusGroups('Name:\tx\nGroups:\t4 24 27 \nNgid:\t0\n'), [4, 24, 27])
  t.same(parseStatusGroups('Groups:\t\n'), [])
  t.equal(parseStatusGroups('Name:\tx\n'), undefined)
  t.equal(utimeToProtocol(null), undefined)
  t.equal(utimeToProtocol(1577934245123456789n), '1577934245123456789')
})

const reason = skipReason()
if (reason !== undefined) {
  console.log(`# skipping the fuse-native mount test: ${reason}`)
  t.test('patched fuse-native on a real mount', { skip: reason }, async () => {})
} else {
  t.test('patched fuse-native on a real mount', async t => {
    const Fuse = require('fuse-native') as FuseCtor
    const dir = await mkdtemp(join(tmpdir(), 'hiss-fusepatch-'))
    // Other users must be able to walk to the mountpoint.
    await chmod(dir, 0o755)
    const mnt = join(dir, 'mnt')
    await mkdir(mnt)

    const identities = new CallerIdentities({ clock: new SystemClock(), ttlMs: 60_000 })
    const seen = new Map<string, Array<{ caller: CallerContext, identity: Identity }>>()
    const utimens: Array<{ path: string, atime: UtimeNs, mtime: UtimeNs, caller: CallerContext }> = []
    // Times of /f, as the adapter would keep them (protocol-style decimal strings).
    const times: NsStatTimes = { atimeNs: '1577934245111111111', mtimeNs: '1577934245987654321', ctimeNs: '-1500000000' }
    // /dir-N/slow lookups are held until all of them are in flight at once. They sit in
    // different directories because the kernel serialises lookups within one directory
    // (libfuse 2 does not negotiate parallel dirops).
    const SLOW = 4
    const slowWaiting: Array<() => void> = []

    type Cb = (err: number, stat?: object) => void
    const file = (extra: object): object => ({ mode: 0o100644, size: 3, nlink: 1, uid: 0, gid: 0, ...extra })
    const ops = {
      getattr (path: string, cb: Cb, caller: CallerContext) {
        if (path === '/') return cb(0, { mode: 0o40755, size: 4096, nlink: 2, mtime: new Date(0), atime: new Date(0), ctime: new Date(0) })
        if (path === '/f') return cb(0, file({ ...times, mtime: new Date(5) }))
        if (path === '/ms') return cb(0, file({ atime: new Date(1234567), mtime: new Date(1234567), ctime: 1234567 }))
        if (/^\/dir-\d+$/.test(path)) return cb(0, { mode: 0o40755, size: 4096, nlink: 2 })
        const slow = /^\/dir-\d+\/slow$/.test(path)
        if (!path.startsWith('/who-') && !slow) return cb(ENOENT)
        // Read the caller's groups while its syscall is still blocked on us.
        identities.identity(caller).then(identity => {
          const list = seen.get(path) ?? []
          list.push({ caller, identity })
          seen.set(path, list)
          const reply = (): void => cb(0, file({ uid: caller.uid, gid: caller.gid }))
          if (!slow) return reply()
          slowWaiting.push(reply)
          if (slowWaiting.length === SLOW) for (const r of slowWaiting.splice(0)) r()
        }, () => cb(-5))
      },
      utimens (path: string, atime: UtimeNs, mtime: UtimeNs, cb: (err: number) => void, caller: CallerContext) {
        utimens.push({ path, atime, mtime, caller })
        if (path !== '/f') return cb(ENOENT)
        if (atime !== null) times.atimeNs = atime.toString()
        if (mtime !== null) times.mtimeNs = mtime.toString()
        cb(0)
      },
      readdir (path: string, cb: (err: number, names?: string[]) => void) {
        cb(0, path === '/' ? ['f', 'ms'] : [])
      }
    }

    const fuse = new Fuse(mnt, ops, { allowOther: true, timeout: 10_000 })
    await new Promise<void>((resolve, reject) => fuse.mount(err => err === null ? resolve() : reject(err)))
    t.teardown(async () => {
      // Unmount with a bound; fall back to a lazy fusermount if fuse-native's hangs.
      const done = new Promise<void>(resolve => fuse.unmount(() => resolve()))
      const bound = new Promise<string>(resolve => setTimeout(() => resolve('timeout'), 5000).unref())
      if (await Promise.race([done.then(() => 'ok'), bound]) === 'timeout') {
        await new Promise<void>(resolve => execFile('fusermount', ['-uz', mnt], { timeout: 5000 }, () => resolve()))
      }
      await rm(dir, { recursive: true, force: true })
    })

    t.test('ops see the calling uid, gid and pid', async t => {
      const asRoot = await run('stat', ['-c', '%u:%g', join(mnt, 'who-root')])
      t.equal(asRoot.stdout, '0:0')
      const r = seen.get('/who-root')?.[0]
      t.ok(r, 'getattr ran for root')
      t.same(r?.caller, { uid: 0, gid: 0, pid: asRoot.pid })
      const rootGroups = process.getgroups?.() ?? []
      t.same(r?.identity, { uid: 0, gids: [0, ...rootGroups.filter(g => g !== 0)] }, 'root keeps our groups')

      const asNobody = await asUser(NOBODY, [4242, 4343], 'stat', ['-c', '%u:%g', join(mnt, 'who-nobody')])
      t.equal(asNobody.stdout, `${NOBODY}:${NOBODY}`)
      const n = seen.get('/who-nobody')?.[0]
      t.same(n?.caller, { uid: NOBODY, gid: NOBODY, pid: asNobody.pid })
      t.same(n?.identity, { uid: NOBODY, gids: [NOBODY, 4242, 4343] }, 'supplementary groups from /proc')
    })

    t.test('concurrent ops each get their own caller', async t => {
      const uids = [1001, 1002, 1003, 1004]
      t.equal(uids.length, SLOW)
      const runs = await Promise.all(uids.map(uid =>
        asUser(uid, [], 'stat', ['-c', '%u', join(mnt, `dir-${uid}`, 'slow')])))
      for (const [i, uid] of uids.entries()) {
        t.equal(runs[i]?.stdout, String(uid))
        t.same(seen.get(`/dir-${uid}/slow`)?.[0]?.caller, { uid, gid: uid, pid: runs[i]?.pid })
      }
    })

    t.test('stat times keep nanoseconds; the ms fields still work', async t => {
      const f = await run('stat', ['-c', '%x|%y|%z', join(mnt, 'f')])
      t.equal(f.stdout, '2020-01-02 03:04:05.111111111 +0000|2020-01-02 03:04:05.987654321 +0000|1969-12-31 23:59:58.500000000 +0000')
      const ms = await run('stat', ['-c', '%x|%y|%z', join(mnt, 'ms')])
      t.equal(ms.stdout, '1970-01-01 00:20:34.567000000 +0000|1970-01-01 00:20:34.567000000 +0000|1970-01-01 00:20:34.567000000 +0000')
    })

    t.test('utimens gets nanoseconds, and null for the time left alone', async t => {
      const path = join(mnt, 'f')
      const both = await run('touch', ['-d', '2020-01-02 03:04:05.123456789', path])
      const u1 = utimens.at(-1)
      t.same(u1, { path: '/f', atime: 1577934245123456789n, mtime: 1577934245123456789n, caller: { uid: 0, gid: 0, pid: both.pid } })

      await run('touch', ['-m', '-d', '2021-01-02 03:04:05.5', path])
      const u2 = utimens.at(-1)
      t.equal(u2?.atime, null, 'touch -m leaves atime alone')
      t.equal(u2?.mtime, 1609556645500000000n)
      t.equal(utimens.length, 2)

      // The new times read back with their nanoseconds.
      const back = await run('stat', ['-c', '%x|%y', path])
      t.equal(back.stdout, '2020-01-02 03:04:05.123456789 +0000|2021-01-02 03:04:05.500000000 +0000')
    })
  })
}
