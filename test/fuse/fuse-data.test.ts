// File data through a real mount, driven by real tools: a 100 MiB cp in and out,
// cat/head/tail/dd on a multi-block file (1 MiB blocks), truncate up and down, >>
// appends, holes, random reads and writes checked against a local twin, and an unlinked
// file that stays readable through its open handle.
import t, { type Test } from 'tap'
import { randomBytes, createHash } from 'node:crypto'
import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FUSE_TEST_CONFIG as STABLE, fuseSkipReason, isMounted, sh, shOk, startFuseCluster } from '../helpers/mount.js'
import { Rng } from '../helpers/rng.js'


/** rnd(n) is an integer in [0, n), from a seeded generator. */
function prng (seed: number): (n: number) => number {
  const r = new Rng(seed)
  return (n: number): number => r.below(n)
}

const MiB = 1024 * 1024

function md5 (b: Buffer): string {
  return createHash('md5').update(b).digest('hex')
}

async function main (): Promise<void> {
  await t.test('FUSE data path', async t => { await suite(t) })
}

async function suite (t: Test): Promise<void> {
  const { mount } = await startFuseCluster(t, { config: STABLE, dataServers: 3, blockSize: MiB })
  const M = mount.dir
  const local = await mkdtemp(join(tmpdir(), 'hiss-fuse-local-'))
  t.teardown(() => rm(local, { recursive: true, force: true }))
  const q = (p: string): string => JSON.stringify(p)

  await t.test('cp of a 100 MiB file in and out, cmp equal', { timeout: 300_000 }, async t => {
    const src = join(local, 'big.bin')
    await shOk(`head -c ${100 * MiB} /dev/urandom > ${q(src)}`)
    await shOk(`cp ${q(src)} ${q(join(M, 'big.bin'))}`, { timeoutMs: 240_000 })
    t.equal((await stat(join(M, 'big.bin'))).size, 100 * MiB, 'size through the mount')
    t.equal((await sh(`cmp ${q(src)} ${q(join(M, 'big.bin'))}`, { timeoutMs: 240_000 })).code, 0, 'cmp equal in the mount')
    const back = join(local, 'back.bin')
    await shOk(`cp ${q(join(M, 'big.bin'))} ${q(back)}`, { timeoutMs: 240_000 })
    t.equal((await sh(`cmp ${q(src)} ${q(back)}`)).code, 0, 'cmp equal after copying out')
    await rm(back)
    await rm(src)
  })

  // A 3.5 MiB file (4 blocks, the last partial) and its local twin.
  const twin = join(local, 'twin.bin')
  const file = join(M, 'multi.bin')
  const content = randomBytes(3.5 * MiB)
  await writeFile(twin, content)
  await shOk(`cp ${q(twin)} ${q(file)}`)

  await t.test('cat, head -c, tail -c on a multi-block file', async t => {
    t.equal((await sh(`cmp ${q(twin)} ${q(file)}`)).code, 0, 'cat/cmp equal')
    for (const n of [1, 4096, MiB - 1, MiB, MiB + 1, 3 * MiB + 17]) {
      const a = await shOk(`head -c ${n} ${q(file)} | md5sum`)
      const b = await shOk(`head -c ${n} ${q(twin)} | md5sum`)
      t.equal(a, b, `head -c ${n}`)
      const c = await shOk(`tail -c ${n} ${q(file)} | md5sum`)
      const d = await shOk(`tail -c ${n} ${q(twin)} | md5sum`)
      t.equal(c, d, `tail -c ${n}`)
    }
  })

  await t.test('dd with skip and seek across block boundaries', async t => {
    // Read ranges that straddle blocks.
    for (const [bs, skipN, count] of [[1000, 1040, 100], [4096, 255, 3], [65536, 15, 20]] as const) {
      const a = await shOk(`dd if=${q(file)} bs=${bs} skip=${skipN} count=${count} status=none | md5sum`)
      const b = await shOk(`dd if=${q(twin)} bs=${bs} skip=${skipN} count=${count} status=none | md5sum`)
      t.equal(a, b, `dd skip=${skipN} bs=${bs}`)
    }
    // Overwrite in place, straddling the first block boundary, without truncating.
    const patch = join(local, 'patch.bin')
    await writeFile(patch, randomBytes(300_000))
    for (const target of [file, twin]) await shOk(`dd if=${q(patch)} of=${q(target)} bs=1000 seek=900 conv=notrunc status=none`)
    t.equal((await sh(`cmp ${q(twin)} ${q(file)}`)).code, 0, 'dd seek conv=notrunc')
    // Write past the end: a hole up to the new data.
    for (const target of [file, twin]) await shOk(`dd if=${q(patch)} of=${q(target)} bs=1000 seek=6000 conv=notrunc status=none`)
    t.equal((await stat(file)).size, 6_300_000, 'size after a write past the end')
    t.equal((await sh(`cmp ${q(twin)} ${q(file)}`)).code, 0, 'hole reads as zeros')
  })

  await t.test('truncate -s up and down, >> appends', async t => {
    for (const size of [8 * MiB + 5, 2 * MiB, 1234567, 0, 300]) {
      await shOk(`truncate -s ${size} ${q(file)} && truncate -s ${size} ${q(twin)}`)
      t.equal((await stat(file)).size, size, `size after truncate -s ${size}`)
      t.equal((await sh(`cmp ${q(twin)} ${q(file)}`)).code, 0, `content after truncate -s ${size}`)
    }
    for (let i = 0; i < 5; i++) {
      await shOk(`echo "line ${i}" >> ${q(file)} && echo "line ${i}" >> ${q(twin)}`)
    }
    await shOk(`head -c ${2 * MiB + 3} /dev/urandom > ${q(join(local, 'chunk'))}`)
    await shOk(`cat ${q(join(local, 'chunk'))} >> ${q(file)} && cat ${q(join(local, 'chunk'))} >> ${q(twin)}`)
    t.equal((await sh(`cmp ${q(twin)} ${q(file)}`)).code, 0, 'appends (small and multi-block) match')
    // Appending to a new file.
    await shOk(`printf abc >> ${q(join(M, 'new-append'))} && printf def >> ${q(join(M, 'new-append'))}`)
    t.equal(await readFile(join(M, 'new-append'), 'utf8'), 'abcdef')
  })

  await t.test('random reads and writes on one handle match a local twin', { timeout: 300_000 }, async t => {
    const fm = await open(join(M, 'random.bin'), 'w+')
    const fl = await open(join(local, 'random.bin'), 'w+')
    const rnd = prng(42)
    let mismatches = 0
    try {
      for (let i = 0; i < 200; i++) {
        const op = rnd(10)
        if (op < 5) {
          const data = randomBytes(1 + rnd(300_000))
          const pos = rnd(5 * MiB)
          await fm.write(data, 0, data.length, pos)
          await fl.write(data, 0, data.length, pos)
        } else if (op < 8) {
          const n = 1 + rnd(600_000)
          const pos = rnd(6 * MiB)
          const a = Buffer.alloc(n)
          const b = Buffer.alloc(n)
          const ra = await fm.read(a, 0, n, pos)
          const rb = await fl.read(b, 0, n, pos)
          if (ra.bytesRead !== rb.bytesRead || !a.equals(b)) mismatches++
        } else if (op < 9) {
          const size = rnd(6 * MiB)
          await fm.truncate(size)
          await fl.truncate(size)
        } else {
          await fm.sync()
        }
        if ((await fm.stat()).size !== (await fl.stat()).size) mismatches++
      }
    } finally {
      await fm.close()
      await fl.close()
    }
    t.equal(mismatches, 0, 'every read and size matched')
    t.equal((await sh(`cmp ${q(join(local, 'random.bin'))} ${q(join(M, 'random.bin'))}`)).code, 0, 'content matches after close')
  })

  await t.test('two handles on one file see each other\'s writes', async t => {
    const p = join(M, 'shared.bin')
    const a = await open(p, 'w+')
    const b = await open(p, 'r+')
    try {
      await a.write(Buffer.from('hello world'), 0, 11, 0)
      const buf = Buffer.alloc(11)
      await b.read(buf, 0, 11, 0)
      t.equal(buf.toString(), 'hello world', 'b reads what a wrote before any close')
      await b.write(Buffer.from('W'), 0, 1, 6)
      const buf2 = Buffer.alloc(11)
      await a.read(buf2, 0, 11, 0)
      t.equal(buf2.toString(), 'hello World', 'a reads what b wrote')
    } finally {
      await a.close()
      await b.close()
    }
    t.equal(await readFile(p, 'utf8'), 'hello World')
  })

  await t.test('an unlinked open file stays readable through its handle', async t => {
    const p = join(M, 'doomed.bin')
    const data = randomBytes(2.5 * MiB)
    await writeFile(p, data)
    const fh = await open(p, 'r')
    try {
      await shOk(`rm ${q(p)}`)
      await t.rejects(stat(p), { code: 'ENOENT' }, 'the name is gone')
      const buf = Buffer.alloc(data.length)
      let off = 0
      while (off < data.length) {
        const { bytesRead } = await fh.read(buf, off, Math.min(MiB, data.length - off), off)
        if (bytesRead === 0) break
        off += bytesRead
      }
      t.equal(md5(buf), md5(data), 'content read through the handle')
    } finally {
      await fh.close()
    }
  })

  await t.test('df shows the cluster capacity', async t => {
    const out = await shOk(`df -B1 --output=source,size,avail ${q(M)} | tail -1`)
    const [source, size, avail] = out.trim().split(/\s+/)
    t.equal(source, 'hissdfs')
    t.ok(Number(size) > 0, 'size > 0')
    t.ok(Number(avail) > 0 && Number(avail) <= Number(size), 'avail within size')
  })

  await t.test('SIGTERM unmounts and exits 0', async t => {
    const r = await mount.stop()
    t.equal(r.code, 0, 'exit code 0')
    t.notOk(await isMounted(M), 'no mount left behind')
  })
}

const skip = fuseSkipReason()
if (skip !== undefined) {
  t.comment(`skipping FUSE tests: ${skip}`)
  t.test('FUSE tests', { skip }, async () => {})
} else {
  await main()
}
