// Attributes answered inside the patched fuse-native (its native table, mirrored from
// the mount's attribute cache) instead of a hop into JS for every directory of every
// path walk and every entry of `ls -l`. Shown here: repeated path walks and listings
// do not reach the JS getattr (the mount logs every op at debug level, and the test
// counts them), and nothing is ever answered stale that was not before: chmod, rmdir,
// rename and re-creation of a directory show at once, an open file's size follows its
// writes, another mount's new content shows in full after open (close-to-open), and
// another mount's change to a directory shows once the attribute timeout has passed.
// Also the flush of a read-only handle (close() waits for it), answered natively while
// the file has nothing to commit, and libfuse's fgetattr after a create.
import t, { type Test } from 'tap'
import { chmod, mkdir, open, readFile, rename, rmdir, stat, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { FUSE_TEST_CONFIG as STABLE, fuseSkipReason, mountOpLog, settleMountLog, shOk, startMount } from '../helpers/mount.js'
import { startCluster } from '../helpers/inprocess-cluster.js'
import { waitUntil } from '../helpers/wait-until.js'

async function suite (t: Test): Promise<void> {
  const cluster = await startCluster(t, { config: STABLE, dataServers: 1, replication: 1 })
  const log = mountOpLog()
  const a = await startMount(t, cluster.cfg, {
    config: { 'log.level': 'debug', 'fuse.attr.timeout.ms': 600_000 },
    onStderr: d => { log.feed(d) },
  })
  const b = await startMount(t, cluster.cfg, { config: { 'fuse.attr.timeout.ms': 300 } })
  const settle = (): Promise<void> => settleMountLog(a.dir, log)

  await t.test('path walks through cached directories stay out of JS', async t => {
    const deep = join(a.dir, 'w1', 'w2', 'w3')
    await mkdir(deep, { recursive: true })
    await stat(deep)
    await settle()
    log.take()
    for (let i = 0; i < 50; i++) await stat(deep)
    await settle()
    const seen = log.take()
    for (const p of ['/', '/w1', '/w1/w2', '/w1/w2/w3']) {
      t.equal(seen[p] ?? 0, 0, `50 stats of ${p === '/w1/w2/w3' ? 'the directory' : 'a directory on the way'}: no getattr ${p} in JS`)
    }
  })

  await t.test('what this mount changes shows at once', async t => {
    const d = join(a.dir, 'c')
    await mkdir(join(d, 'sub'), { recursive: true })
    await stat(join(d, 'sub'))
    await chmod(join(d, 'sub'), 0o700)
    t.equal((await stat(join(d, 'sub'))).mode & 0o7777, 0o700, 'chmod')
    const ino = (await stat(join(d, 'sub'))).ino
    await rmdir(join(d, 'sub'))
    await t.rejects(stat(join(d, 'sub')), { code: 'ENOENT' }, 'rmdir')
    await mkdir(join(d, 'sub'))
    t.not((await stat(join(d, 'sub'))).ino, ino, 'made again: the new directory, not the cached one')
    await mkdir(join(d, 'sub', 'inner'))
    await stat(join(d, 'sub', 'inner'))
    await rename(join(d, 'sub'), join(d, 'moved'))
    await t.rejects(stat(join(d, 'sub')), { code: 'ENOENT' }, 'the old name of a renamed directory is gone')
    await t.rejects(stat(join(d, 'sub', 'inner')), { code: 'ENOENT' }, 'and so is what was under it')
    t.ok((await stat(join(d, 'moved', 'inner'))).isDirectory(), 'the new name has it')
    const before = (await stat(d)).nlink
    await mkdir(join(d, 'another'))
    t.equal((await stat(d)).nlink, before + 1, 'the parent\'s link count follows a mkdir')
    const server = await cluster.client.stat('/c/moved')
    t.equal((await stat(join(d, 'moved'))).ino, server.ino, 'the inode the NameServer has')
  })

  await t.test('files: ls -l stays out of JS; an open file\'s growing size and another mount\'s new content still show', async t => {
    const d = join(a.dir, 'files')
    await mkdir(d)
    for (let i = 0; i < 10; i++) await writeFile(join(d, `f${i}`), 'x'.repeat(i))
    await shOk(`ls -l ${JSON.stringify(d)}`)
    await settle()
    log.take()
    const listing = await shOk(`ls -l ${JSON.stringify(d)}`)
    for (let i = 0; i < 10; i++) await stat(join(d, `f${i}`))
    await settle()
    const seen = log.take()
    t.equal(listing.trim().split('\n').filter(l => l.startsWith('-')).length, 10)
    const inJs = Object.keys(seen).filter(p => p.startsWith('/files/'))
    t.same(inJs, [], 'ls -l and stat of closed files: no getattr in JS')

    // A file open for reading only keeps being answered natively.
    const ro = await open(join(d, 'f2'), 'r')
    try {
      await ro.read(Buffer.alloc(2), 0, 2, 0)
      await settle()
      log.take()
      for (let i = 0; i < 20; i++) t.equal((await stat(join(d, 'f2'))).size, 2)
      await settle()
      t.equal(log.take()['/files/f2'] ?? 0, 0, 'stat of a file open read-only: no getattr in JS')
    } finally {
      await ro.close()
    }

    // A file open for writing: its size follows the writes, before any close.
    const fh = await open(join(d, 'f3'), 'r+')
    try {
      t.equal((await stat(join(d, 'f3'))).size, 3, 'open for writing, nothing written yet: the committed size')
      await fh.write(Buffer.alloc(5000, 1), 0, 5000, 0)
      t.equal((await stat(join(d, 'f3'))).size, 5000, 'stat by path sees the unflushed size')
      t.equal((await fh.stat()).size, 5000, 'and so does fstat of the writing handle')
      await fh.write(Buffer.alloc(1000, 2), 0, 1000, 5000)
      t.equal((await stat(join(d, 'f3'))).size, 6000, 'and its growth')
      t.equal((await fh.stat()).size, 6000, 'fstat too')
      // Answered natively from the view this mount shows, which follows every change.
      await settle()
      log.take()
      for (const [what, change, size, mode] of [
        ['a write', async () => { await fh.write(Buffer.alloc(100, 3), 0, 100, 6000) }, 6100, undefined],
        ['an ftruncate', async () => { await fh.truncate(4000) }, 4000, undefined],
        ['an fchmod', async () => { await fh.chmod(0o600) }, 4000, 0o600],
        ['a write past the end', async () => { await fh.write(Buffer.alloc(10, 4), 0, 10, 9000) }, 9010, 0o600],
      ] as const) {
        await change()
        for (let i = 0; i < 5; i++) {
          const st = await stat(join(d, 'f3'))
          t.equal(st.size, size, `after ${what}: the size at once (${i})`)
          if (mode !== undefined) t.equal(st.mode & 0o7777, mode, `after ${what}: the mode`)
        }
      }
      await settle()
      t.ok((log.take()['/files/f3'] ?? 0) <= 4, 'stats of the file being written: at most one getattr in JS per change')
    } finally {
      await fh.close()
    }
    t.equal((await stat(join(d, 'f3'))).size, 9010, 'after close')

    // Close-to-open across mounts, with this mount's cached (native) attributes fresh.
    await stat(join(d, 'f5'))
    await writeFile(join(b.dir, 'files', 'f5'), 'y'.repeat(7777))
    t.equal((await readFile(join(d, 'f5'), 'utf8')).length, 7777, 'the other mount\'s content in full after open')
    t.equal((await stat(join(d, 'f5'))).size, 7777, 'and its size')
    await truncate(join(d, 'f6'), 3)
    t.equal((await stat(join(d, 'f6'))).size, 3, 'truncate by path')
  })

  await t.test('a create costs one getattr in JS: the lookup before it, not libfuse\'s fgetattr after it', async t => {
    await mkdir(join(a.dir, 'made'))
    await settle()
    log.take()
    const handles = []
    try {
      for (let i = 0; i < 10; i++) {
        const fh = await open(join(a.dir, 'made', `n${i}`), 'w')
        handles.push(fh)
        t.equal((await fh.stat()).size, 0, `n${i}: fstat right after the create`)
      }
      await settle()
      const seen = log.take()
      for (let i = 0; i < 10; i++) t.equal(seen[`/made/n${i}`] ?? 0, 1, `n${i}: only the lookup of the new name reached the JS getattr`)
      // A write right after is answered by the addon before the mount has run it (see
      // fuse-async-writes), so an fstat of that path then asks the mount, which answers
      // once the write is in: not counted, only checked.
      for (let i = 0; i < 10; i++) {
        await handles[i]!.write('abc')
        t.equal((await handles[i]!.stat()).size, 3, `n${i}: and after a write`)
      }
    } finally {
      for (const fh of handles) await fh.close()
    }
  })

  await t.test('flush of a read-only handle is answered natively, unless its file has something to commit', async t => {
    const f = join(a.dir, 'flushy')
    await writeFile(f, 'one')
    await settle()
    log.take()
    for (let i = 0; i < 10; i++) t.equal(await readFile(f, 'utf8'), 'one')
    await settle()
    const seen = log.take()
    t.equal(seen['op:open'], 10, 'ten opens reached the mount')
    t.equal(seen['op:flush'] ?? 0, 0, 'no flush of the read-only handles in JS')
    t.equal(seen['op:release'], 10, 'every handle was released')

    // A writer on another handle: the read-only handle's flush goes to JS again and, as
    // before, commits what the file has (another mount then sees it).
    const w = await open(f, 'r+')
    const r = await open(f, 'r')
    try {
      await w.write(Buffer.from('TWO'), 0, 3, 0)
      await settle()
      log.take()
      await r.close()
      await settle()
      t.equal(log.take()['op:flush'], 1, 'the read-only handle\'s close flushed in JS')
      t.equal(await readFile(join(b.dir, 'flushy'), 'utf8'), 'TWO', 'and committed the other handle\'s write')
    } finally {
      await w.close()
    }
  })

  await t.test('another mount\'s change shows once the attribute timeout has passed', async t => {
    await mkdir(join(b.dir, 'x'))
    await stat(join(b.dir, 'x'))
    await chmod(join(a.dir, 'x'), 0o711)
    await waitUntil(async () => ((await stat(join(b.dir, 'x'))).mode & 0o7777) === 0o711, { timeoutMs: 10_000, what: 'the new mode on the other mount' })
    t.pass('the other mount sees the new mode')
    await rmdir(join(a.dir, 'x'))
    await waitUntil(async () => stat(join(b.dir, 'x')).then(() => false, (err: NodeJS.ErrnoException) => err.code === 'ENOENT'), { timeoutMs: 10_000, what: 'the removal on the other mount' })
    t.pass('and the removal')
  })
}

const skip = fuseSkipReason()
if (skip !== undefined) {
  t.test('FUSE tests', { skip }, async () => {})
} else {
  t.test('native directory attributes', async t => { await suite(t) })
}
