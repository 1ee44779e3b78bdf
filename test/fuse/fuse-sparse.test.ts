// Holes through the mount: a file grown by truncate, or by a write past its end, stores
// its zero blocks sparse (HEADER_ZERO_LENGTH: no bytes on the wire, next to nothing on
// the DataServers' disks) and still reads back as zeros, checksummed and fully
// replicated. Every step is done the same way to a local file, which is the oracle
// (`cmp`). All I/O on the mount goes through shell tools in child processes: this test
// process hosts the servers and must not block on the mount.
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { FUSE_TEST_CONFIG as STABLE, fuseSkipReason, sh, shOk, startMount } from '../helpers/mount.js'
import { startCluster } from '../helpers/inprocess-cluster.js'

const MiB = 1024 * 1024
const q = (p: string): string => JSON.stringify(p)

/** Bytes allocated on disk under `dirs` (du), in KiB. */
async function allocatedKiB (dirs: string[]): Promise<number> {
  const out = await shOk(`du -sk ${dirs.map(q).join(' ')}`)
  return out.trim().split('\n').reduce((n, l) => n + Number(l.split('\t')[0]), 0)
}

async function suite (t: Test): Promise<void> {
  const cluster = await startCluster(t, { config: STABLE, dataServers: 3, replication: 3, blockSize: MiB })
  const m = await startMount(t, cluster.cfg)
  const local = t.testdir()
  /** Run `cmd` with F set to the local file, then to the mounted one. */
  const both = async (name: string, cmd: string): Promise<void> => {
    await shOk(`F=${q(join(local, name))}; ${cmd}`)
    await shOk(`F=${q(join(m.dir, name))}; ${cmd}`)
  }
  const same = async (t: Test, name: string, what: string): Promise<void> => {
    const r = await sh(`cmp ${q(join(local, name))} ${q(join(m.dir, name))}`, { timeoutMs: 120_000 })
    t.equal(r.code, 0, `${what}: the same bytes as the local file ${r.stdout}${r.stderr}`)
  }

  await t.test('truncate -s 64M: zeros, three replicas of each block, almost nothing on disk', async t => {
    const before = await allocatedKiB(cluster.dataServerDirs)
    await both('grown', 'truncate -s 64M "$F"')
    t.equal((await shOk(`stat -c %s ${q(join(m.dir, 'grown'))}`)).trim(), String(64 * MiB), 'its size')
    await same(t, 'grown', 'content')
    const grew = await allocatedKiB(cluster.dataServerDirs) - before
    // 3 x 64 MiB if the zeros were stored; each sparse replica is a data inode and a
    // small checksum file.
    t.ok(grew < 8 * 1024, `the DataServers' disks grew by ${grew} KiB, not 3 x 64 MiB`)
    const f = await cluster.client.fsck('/grown')
    t.equal(f.entries[0]!.blocks.length, 64, '64 blocks')
    t.ok(f.healthy && f.entries[0]!.blocks.every(b => b.replicas.filter(r => r.state === 'live').length === 3), 'each with three live replicas')
    // Its blocks of zeros hold no space, and st_blocks (du) says so, as on a local disk.
    t.equal((await shOk(`stat -c %b ${q(join(m.dir, 'grown'))}`)).trim(), '0', 'st_blocks 0')
    t.equal((await shOk(`du -k ${q(join(m.dir, 'grown'))}`)).split('\t')[0], '0', 'du: 0 KiB')
    t.equal((await cluster.client.stat('/grown')).allocated, 0, 'FileStat.allocated 0')
  })

  await t.test('writes into a hole and past the end, read back through the mount and the CLI', async t => {
    await shOk(`head -c 300000 /dev/urandom > ${q(join(local, 'src'))}`)
    const src = q(join(local, 'src'))
    await both('grown', `dd if=${src} of="$F" bs=1000 count=300 seek=10000 conv=notrunc status=none`)
    await same(t, 'grown', 'after a write into the hole')
    // Blocks of 1 MiB: the one holding the write is counted whole, the rest of the hole not.
    t.equal(Number((await shOk(`stat -c %b ${q(join(m.dir, 'grown'))}`)).trim()), MiB / 512, 'st_blocks: the block written into')
    await both('past', `printf start > "$F" && dd if=${src} of="$F" bs=4096 count=10 seek=5000 conv=notrunc status=none`)
    t.equal((await shOk(`stat -c %s ${q(join(m.dir, 'past'))}`)).trim(), String(5010 * 4096), 'a write past the end sets the size')
    await same(t, 'past', 'after a write 20 MB past the end')
    // The first block (with "start") and the last one (with the write) are stored, the 18
    // blocks of the hole between them are zeros: 1 MiB + 598,016 bytes, not 20 MB.
    t.equal(Number((await shOk(`stat -c %b ${q(join(m.dir, 'past'))}`)).trim()), (MiB + (5010 * 4096 - 19 * MiB)) / 512, 'st_blocks of a file with a hole in the middle')
    await both('shrunk', `cp ${src} "$F" && truncate -s 100000 "$F" && truncate -s 5M "$F"`)
    await same(t, 'shrunk', 'shrunk and grown again (the cut tail reads as zeros)')
    const viaCli = join(local, 'via-cli')
    const r = await sh(`node ${q(join(process.cwd(), 'dist/src/cli/main.js'))} --config ${q(m.configFile)} cat /past > ${q(viaCli)} && cmp ${q(viaCli)} ${q(join(local, 'past'))}`, { timeoutMs: 120_000 })
    t.equal(r.code, 0, `hissdfs cat reads the same bytes ${r.stderr}`)
  })

  await t.test('blocks of zeros are read without the DataServers', async t => {
    await both('holes', 'truncate -s 8M "$F"')
    const plan = await cluster.client.getBlocks({ path: '/holes' })
    t.ok(plan.blocks.length === 8 && plan.blocks.every(b => b.zero === true), 'the read plan says each block is zeros')
    // Every DataServer gone: nothing else could give these bytes.
    for (let i = 0; i < cluster.dataServers.length; i++) await cluster.stopDataServer(i)
    const out = join(local, 'holes-via-cli')
    const r = await sh(`node ${q(join(process.cwd(), 'dist/src/cli/main.js'))} --config ${q(m.configFile)} cat /holes > ${q(out)} && cmp ${q(out)} ${q(join(local, 'holes'))}`, { timeoutMs: 120_000 })
    t.equal(r.code, 0, `hissdfs cat gives the 8 MiB of zeros ${r.stderr}`)
    await same(t, 'holes', 'and so does the mount')
  })
}

const skip = fuseSkipReason()
if (skip !== undefined) {
  t.test('FUSE tests', { skip }, async () => {})
} else {
  t.test('sparse files through the mount', async t => { await suite(t) })
}
