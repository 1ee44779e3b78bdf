// Two mounts of one cluster used at the same time, as two hosts would: both keep their
// attribute caches for a long time here (600 s), so every answer that must not come
// from a cache is seen to come from the NameServer. Appends from both mounts to one file
// all land, each mount's in its order (the second writer waits for the first one's
// lease instead of failing with EBUSY); O_CREAT|O_EXCL has exactly one winner across
// mounts; a name removed on one mount and still cached on the other is created again
// there by `>>` and `>`, and reported missing by `cat`; a handle kept open on a third
// mount (short attribute timeout) reads what was appended elsewhere once its fstat
// shows the new size, as `tail -f` needs.
import t, { type Test } from 'tap'
import { open, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { FUSE_TEST_CONFIG as STABLE, fuseSkipReason, sh, shOk, startMount } from '../helpers/mount.js'
import { startCluster } from '../helpers/inprocess-cluster.js'

const q = (p: string): string => JSON.stringify(p)

async function suite (t: Test): Promise<void> {
  const cluster = await startCluster(t, { config: STABLE, dataServers: 3, replication: 3, blockSize: 1024 * 1024 })
  const cached = { 'fuse.attr.timeout.ms': 600_000 }
  const a = await startMount(t, cluster.cfg, { config: cached })
  const b = await startMount(t, cluster.cfg, { config: cached })

  await t.test('appends from both mounts to one file: none lost, each mount\'s in order', async t => {
    const n = 25
    const loop = (dir: string, tag: string): string => `for i in $(seq 1 ${n}); do echo "${tag}$i" >> ${q(join(dir, 'log'))} || exit 1; done`
    const [ra, rb] = await Promise.all([sh(loop(a.dir, 'a'), { timeoutMs: 120_000 }), sh(loop(b.dir, 'b'), { timeoutMs: 120_000 })])
    t.equal(ra.code, 0, `mount a's appends succeeded ${ra.stderr}`)
    t.equal(rb.code, 0, `mount b's appends succeeded ${rb.stderr}`)
    for (const dir of [a.dir, b.dir]) {
      const lines = (await readFile(join(dir, 'log'), 'utf8')).split('\n').filter(l => l !== '')
      t.equal(lines.length, 2 * n, 'every line is there')
      for (const tag of ['a', 'b']) {
        t.same(lines.filter(l => l.startsWith(tag)), Array.from({ length: n }, (_v, i) => `${tag}${i + 1}`), `${tag}'s lines in order`)
      }
    }
  })

  await t.test('O_CREAT|O_EXCL on both mounts at once: exactly one winner', async t => {
    for (let round = 0; round < 10; round++) {
      const results = await Promise.allSettled([a.dir, b.dir].map(async dir => { await (await open(join(dir, `lock${round}`), 'wx')).close() }))
      const won = results.filter(r => r.status === 'fulfilled').length
      const lost = results.filter(r => r.status === 'rejected' && (r.reason as NodeJS.ErrnoException).code === 'EEXIST').length
      t.same([won, lost], [1, 1], `round ${round}: one created, the other got EEXIST`)
    }
  })

  await t.test('a name removed on one mount, cached on the other', async t => {
    await writeFile(join(a.dir, 'gone'), 'first')
    t.equal(await readFile(join(b.dir, 'gone'), 'utf8'), 'first', 'b has it (and caches the name)')
    await shOk(`rm ${q(join(a.dir, 'gone'))}`)
    const cat = await sh(`cat ${q(join(b.dir, 'gone'))}`)
    t.not(cat.code, 0, 'cat on b fails')
    t.match(cat.stderr, /No such file or directory/, 'with ENOENT')

    await writeFile(join(a.dir, 'again'), 'old')
    t.equal(await readFile(join(b.dir, 'again'), 'utf8'), 'old')
    await shOk(`rm ${q(join(a.dir, 'again'))}`)
    await shOk(`echo appended >> ${q(join(b.dir, 'again'))}`)
    t.equal(await readFile(join(a.dir, 'again'), 'utf8'), 'appended\n', '>> on b created it anew')

    await shOk(`rm ${q(join(a.dir, 'again'))}`)
    await shOk(`echo replaced > ${q(join(b.dir, 'again'))}`)
    t.equal(await readFile(join(a.dir, 'again'), 'utf8'), 'replaced\n', '> on b created it anew')
  })

  await t.test('a handle kept open on one mount reads what another mount appended (tail -f)', async t => {
    // A third mount with a short attribute timeout: its fstat sees the new size soon.
    const c = await startMount(t, cluster.cfg, { config: { 'fuse.attr.timeout.ms': 200 } })
    await writeFile(join(a.dir, 'grow'), 'a'.repeat(10))
    const fh = await open(join(c.dir, 'grow'), 'r')
    try {
      const buf = Buffer.alloc(64)
      t.equal((await fh.read(buf, 0, 64, 0)).bytesRead, 10, 'c reads the first 10 bytes')
      await shOk(`printf bbbbb >> ${q(join(a.dir, 'grow'))}`)
      let size = 10
      for (let i = 0; i < 50 && size === 10; i++) {
        await new Promise(resolve => setTimeout(resolve, 100))
        size = (await fh.stat()).size
      }
      t.equal(size, 15, 'fstat on c shows the new size')
      const r = await fh.read(buf, 0, 64, 10)
      t.equal(buf.subarray(0, r.bytesRead).toString(), 'bbbbb', 'and a read past the old end returns the appended bytes')
      await writeFile(join(a.dir, 'grow'), 'ccc')
      for (let i = 0; i < 50 && size !== 3; i++) {
        await new Promise(resolve => setTimeout(resolve, 100))
        size = (await fh.stat()).size
      }
      const again = await fh.read(buf, 0, 64, 0)
      t.equal(buf.subarray(0, again.bytesRead).toString(), 'ccc', 'a rewrite elsewhere shows through the same handle')
    } finally {
      await fh.close()
    }
  })

  await t.test('a rename on one mount: the other opens the new name, not the old', async t => {
    await writeFile(join(a.dir, 'before'), 'moving')
    t.equal(await readFile(join(b.dir, 'before'), 'utf8'), 'moving')
    await rename(join(a.dir, 'before'), join(a.dir, 'after'))
    await t.rejects(readFile(join(b.dir, 'before'), 'utf8'), { code: 'ENOENT' }, 'the old name is gone on b')
    t.equal(await readFile(join(b.dir, 'after'), 'utf8'), 'moving', 'the new name has the content on b')
  })
}

const skip = fuseSkipReason()
if (skip !== undefined) {
  t.test('FUSE tests', { skip }, async () => {})
} else {
  t.test('two mounts of one cluster at once', async t => { await suite(t) })
}
