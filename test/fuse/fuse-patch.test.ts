// Small changes to existing blocks through a real mount: random 4 KiB writes, each
// followed by fsync, into a multi-block file are sent as in-place patches (the file keeps
// its block ids, only generations move), and the content matches a local model with cmp,
// through the same mount, another mount, and after a remount. Past the patch bounds
// (too many changed bytes or ranges before one close, a shrink) the block is stored
// anew, still correct.
import t, { type Test } from 'tap'
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buffer as readAll } from 'node:stream/consumers'
import { FUSE_TEST_CONFIG as STABLE, fuseSkipReason, sh, shOk, startFuseCluster, startMount } from '../helpers/mount.js'
import { Rng } from '../helpers/rng.js'
import { waitUntil } from '../helpers/wait-until.js'

const MiB = 1024 * 1024
const KiB = 1024

async function main (): Promise<void> {
  await t.test('FUSE block patches', async t => { await suite(t) })
}

async function suite (t: Test): Promise<void> {
  const { cluster, mount } = await startFuseCluster(t, { config: STABLE, dataServers: 3, replication: 3, blockSize: MiB })
  const local = await mkdtemp(join(tmpdir(), 'hiss-fuse-patch-'))
  t.teardown(() => rm(local, { recursive: true, force: true }))
  const q = (p: string): string => JSON.stringify(p)
  const rng = new Rng(42)
  const blocksOf = async (path: string): Promise<Array<[number, number, number]>> =>
    (await cluster.client.getBlocks({ path })).blocks.map(b => [b.id, b.gen, b.length])

  // 4.5 MiB: four full blocks and a half one.
  let model = rng.bytes(4 * MiB + 512 * KiB)
  const twin = join(local, 'twin.bin')
  const file = join(mount.dir, 'f.bin')
  await writeFile(twin, model)
  await shOk(`cp ${q(twin)} ${q(file)}`)
  const before = await blocksOf('/f.bin')
  t.equal(before.length, 5)

  await t.test('random 4 KiB writes with an fsync after each are patches', async t => {
    const fh = await open(file, 'r+')
    try {
      for (let i = 0; i < 40; i++) {
        // Mostly inside the file, some straddling a block boundary, some past the end
        // (the last block grows, with a hole of zeros before the write).
        const kind = i % 8
        const off = kind === 6
          ? 2 * MiB - 1000
          : kind === 7
            ? model.length + rng.below(20 * KiB)
            : rng.below(model.length - 4 * KiB)
        const data = rng.bytes(4 * KiB)
        await fh.write(data, 0, data.length, off)
        await fh.sync()
        if (off + data.length > model.length) {
          const grown = Buffer.alloc(Math.min(off + data.length, 5 * MiB))
          model.copy(grown)
          model = grown
        }
        data.copy(model, off)
      }
    } finally {
      await fh.close()
    }
    await writeFile(twin, model)
    t.equal((await sh(`cmp ${q(twin)} ${q(file)}`)).code, 0, 'cmp equal through the mount')
    const after = await blocksOf('/f.bin')
    t.same(after.map(b => b[0]), before.map(b => b[0]), 'same block ids: patched in place, not stored anew')
    t.ok(after.some((b, i) => b[1] !== before[i]![1]), 'generations moved')
    t.ok((await readAll(cluster.client.createReadStream('/f.bin'))).equals(model), 'the client library reads the same')
    await waitUntil(async () => {
      const f = await cluster.client.fsck('/f.bin')
      return f.healthy && f.underReplicated === 0 ? true : undefined
    }, { timeoutMs: 30000, intervalMs: 200, what: 'fsck healthy' })
    t.pass('every block fully replicated and healthy')
  })

  await t.test('another mount, and a remount, read the same', async t => {
    const other = await startMount(t, cluster.cfg, { config: STABLE })
    t.equal((await sh(`cmp ${q(twin)} ${q(join(other.dir, 'f.bin'))}`)).code, 0, 'cmp equal through another mount')
    await other.stop()
    await mount.stop()
    const again = await startMount(t, cluster.cfg, { config: STABLE })
    t.equal((await sh(`cmp ${q(twin)} ${q(join(again.dir, 'f.bin'))}`)).code, 0, 'cmp equal after a remount')

    // Too many scattered changes before one close: stored anew, still equal. Block 1
    // gets more changed bytes than a patch carries (a quarter block), block 2 more ranges.
    const path = join(again.dir, 'f.bin')
    const fh = await open(path, 'r+')
    try {
      const change = async (off: number, n: number): Promise<void> => {
        const data = rng.bytes(n)
        await fh.write(data, 0, data.length, off)
        data.copy(model, off)
      }
      for (let i = 0; i < 60; i++) await change(MiB + i * 16 * KiB, 8 * KiB)
      for (let i = 0; i < 1100; i++) await change(2 * MiB + i * 900, 10)
      // A shrink of a patched block also stores it anew.
      const w = rng.bytes(8 * KiB)
      await fh.write(w, 0, w.length, 3 * MiB + 10)
      w.copy(model, 3 * MiB + 10)
      await fh.truncate(4 * MiB + 100 * KiB)
      model = model.subarray(0, 4 * MiB + 100 * KiB)
    } finally {
      await fh.close()
    }
    await writeFile(twin, model)
    t.equal((await sh(`cmp ${q(twin)} ${q(path)}`)).code, 0, 'cmp equal after many small writes and a shrink')
    const now = await blocksOf('/f.bin')
    t.not(now[1]![0], before[1]![0], 'the block with too many changed bytes was stored anew')
    t.not(now[2]![0], before[2]![0], 'the block with too many changed ranges was stored anew')
    t.equal(now[0]![0], before[0]![0], 'block 0 (only ever patched) keeps its id')
    await again.stop()
    const last = await startMount(t, cluster.cfg, { config: STABLE })
    t.equal((await sh(`cmp ${q(twin)} ${q(join(last.dir, 'f.bin'))}`)).code, 0, 'cmp equal after another remount')
  })
}

const skip = fuseSkipReason()
if (skip !== undefined) {
  t.comment(`skipping FUSE tests: ${skip}`)
  t.test('FUSE tests', { skip }, async () => {})
} else {
  await main()
}
