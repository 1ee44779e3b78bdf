// The mount against a cluster: close-to-open between two mounts of the same cluster, a
// DataServer killed while a large file is read through the mount, and the ways
// hissdfs-mount refuses to start (non-empty or busy mountpoint, unreachable NameServer,
// bad config) with one clear line and a non-zero exit.
import t, { type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, open, readFile, rm, rmdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig } from '../../src/common/config.js'
import { startCluster } from '../helpers/inprocess-cluster.js'
import { FUSE_TEST_CONFIG as STABLE, fuseSkipReason, isMounted, MOUNT_MAIN, sh, shOk, startMount, type Mount } from '../helpers/mount.js'

const MiB = 1024 * 1024

function md5 (b: Buffer): string {
  return createHash('md5').update(b).digest('hex')
}

async function exitWithin (m: Mount, ms: number): Promise<{ code: number | null } | 'timeout'> {
  return Promise.race([m.exited, new Promise<'timeout'>(resolve => { setTimeout(() => resolve('timeout'), ms).unref() })])
}

async function suite (t: Test): Promise<void> {
  const cluster = await startCluster(t, { config: STABLE, dataServers: 3, replication: 2, blockSize: MiB })
  const a = await startMount(t, cluster.cfg)
  const b = await startMount(t, cluster.cfg)
  const q = (p: string): string => JSON.stringify(p)

  await t.test('a file closed on one mount reads identically on another', async t => {
    const data = randomBytes(3 * MiB + 123)
    await writeFile(join(a.dir, 'shared.bin'), data)
    t.equal(md5(await readFile(join(b.dir, 'shared.bin'))), md5(data), 'first version read through the second mount')
    // Rewrite with another size; b has the old content cached.
    const v2 = randomBytes(2 * MiB + 7)
    await writeFile(join(a.dir, 'shared.bin'), v2)
    // Close-to-open: opening refreshes the attributes (a bare stat may be up to
    // fuse.attr.timeout.ms old, as with NFS).
    const fh = await open(join(b.dir, 'shared.bin'), 'r')
    try {
      t.equal((await fh.stat()).size, v2.length, 'new size seen once opened')
    } finally {
      await fh.close()
    }
    t.equal(md5(await readFile(join(b.dir, 'shared.bin'))), md5(v2), 'new content after close')
    // Appends and in-place edits on a, closed, then read on b.
    await shOk(`printf 'more' >> ${q(join(a.dir, 'shared.bin'))} && printf 'XY' | dd of=${q(join(a.dir, 'shared.bin'))} bs=1 seek=${MiB - 1} conv=notrunc status=none`)
    const expected = Buffer.concat([v2, Buffer.from('more')])
    expected.write('XY', MiB - 1)
    t.equal(md5(await readFile(join(b.dir, 'shared.bin'))), md5(expected), 'append and in-place edit seen on b')
    // Namespace changes made on b are seen on a.
    await shOk(`mkdir ${q(join(b.dir, 'from-b'))} && mv ${q(join(b.dir, 'shared.bin'))} ${q(join(b.dir, 'from-b', 'moved.bin'))}`)
    t.equal(md5(await readFile(join(a.dir, 'from-b', 'moved.bin'))), md5(expected), 'rename on b seen on a')
  })

  await t.test('a DataServer killed during a large read: the read completes with the right bytes', { timeout: 300_000 }, async t => {
    const size = 48 * MiB
    const local = await mkdtemp(join(tmpdir(), 'hiss-fuse-kill-'))
    t.teardown(() => rm(local, { recursive: true, force: true }))
    await shOk(`head -c ${size} /dev/urandom > ${q(join(local, 'src.bin'))}`)
    await shOk(`cp ${q(join(local, 'src.bin'))} ${q(join(a.dir, 'large.bin'))}`, { timeoutMs: 240_000 })
    const want = createHash('md5').update(await readFile(join(local, 'src.bin'))).digest('hex')
    // Read through b (which never saw this file) in 1 MiB steps; kill one DataServer
    // (no unregister: a crash) a quarter of the way in.
    const fh = await open(join(b.dir, 'large.bin'), 'r')
    const h = createHash('md5')
    const buf = Buffer.alloc(MiB)
    let pos = 0
    let killed = false
    try {
      while (pos < size) {
        if (!killed && pos >= size / 4) {
          await cluster.stopDataServer(0, { unregister: false })
          killed = true
        }
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos)
        if (bytesRead === 0) break
        h.update(buf.subarray(0, bytesRead))
        pos += bytesRead
      }
    } finally {
      await fh.close()
    }
    t.ok(killed, 'a DataServer was killed mid-read')
    t.equal(pos, size, 'read to the end')
    t.equal(h.digest('hex'), want, 'right bytes')
  })

  await t.test('startup failures: one line on stderr, non-zero exit', async t => {
    const dir = await mkdtemp(join(tmpdir(), 'hiss-mnt-full-'))
    await writeFile(join(dir, 'something'), 'x')
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const cases: Array<{ what: string, run: () => Promise<Mount>, expect: RegExp }> = [
      { what: 'non-empty mountpoint', run: () => startMount(t, cluster.cfg, { dir, noWait: true }), expect: /not empty/ },
      { what: 'busy mountpoint', run: () => startMount(t, cluster.cfg, { dir: a.dir, noWait: true }), expect: /busy|already mounted/ },
      {
        what: 'unreachable NameServer',
        run: () => startMount(t, parseConfig({ ...cluster.cfg, 'nameserver.address': '127.0.0.1:1', 'client.timeout.ms': 2000, 'client.retry.ms': 1000 }), { noWait: true }),
        expect: /cannot reach the NameServer/,
      },
    ]
    for (const c of cases) {
      const m = await c.run()
      const r = await exitWithin(m, 30_000)
      t.not(r, 'timeout', `${c.what}: exits`)
      if (r === 'timeout') continue
      t.not(r.code, 0, `${c.what}: non-zero exit`)
      const lines = m.stderr().trim().split('\n')
      t.equal(lines.length, 1, `${c.what}: one line on stderr`)
      t.match(lines[0], c.expect, `${c.what}: says why (${lines[0]})`)
      t.notOk(m.stdout().includes('mounted at'), `${c.what}: never claims to be mounted`)
    }
    t.ok(await isMounted(a.dir), 'the existing mount is untouched')
    // A config that does not exist.
    const bad = await sh(`${q(process.execPath)} ${q(MOUNT_MAIN)} --config /nonexistent/client.json ${q(dir)}`, { timeoutMs: 30_000 })
    t.not(bad.code, 0, 'missing config: non-zero exit')
    t.match(bad.stderr, /^hissdfs-mount: .*config/, 'missing config: says so')
    t.equal(bad.stderr.trim().split('\n').length, 1, 'missing config: one line')
  })

  await t.test('both mounts go away cleanly', async t => {
    for (const m of [a, b]) {
      const r = await m.stop()
      t.equal(r.code, 0, 'exit 0 after SIGTERM')
      t.notOk(await isMounted(m.dir), 'no mount left behind')
    }
    await rmdir(a.dir).catch(() => {})
  })
}

const skip = fuseSkipReason()
if (skip !== undefined) {
  t.comment(`skipping FUSE tests: ${skip}`)
  t.test('FUSE tests', { skip }, async () => {})
} else {
  await t.test('FUSE mounts of one cluster', async t => { await suite(t) })
}
