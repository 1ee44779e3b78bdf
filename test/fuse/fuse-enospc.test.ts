// A full cluster seen through the mount: writing more than the DataServers can hold
// fails with ENOSPC ("No space left on device"), never a hang, and files written before
// stay intact. Every DataServer's directory is a small tmpfs the test mounts (as root).
import t from 'tap'
import { join } from 'node:path'
import { open } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { FUSE_TEST_CONFIG as STABLE, fuseSkipReason, sh, shOk, startMount } from '../helpers/mount.js'
import { startCluster } from '../helpers/inprocess-cluster.js'

const q = (p: string): string => JSON.stringify(p)
const TMPFS_BYTES = 3 * 1024 * 1024

const skip = fuseSkipReason()
if (skip !== undefined) t.comment(`skipping FUSE ENOSPC test: ${skip}`)

t.test('a full cluster gives ENOSPC through the mount', { skip: skip ?? false }, async t => {
  const cluster = await startCluster(t, { dataServers: 2, replication: 1, blockSize: 1024 * 1024, config: STABLE })
  // Swap each DataServer's directory for a tiny tmpfs (stop, mount over, start again).
  for (let i = 0; i < 2; i++) {
    await cluster.stopDataServer(i)
    const dir = cluster.dataServerDirs[i]!
    await shOk(`mount -t tmpfs -o size=${TMPFS_BYTES} tmpfs ${q(dir)}`)
    t.teardown(async () => { await sh(`umount -l ${q(dir)}`) })
    await cluster.restartDataServer(i)
  }
  await cluster.waitForLive(2)
  const mount = await startMount(t, cluster.cfg)
  const M = mount.dir

  await shOk(`head -c 100000 /dev/urandom > ${q(join(M, 'small'))}`)
  const before = await shOk(`sha256sum < ${q(join(M, 'small'))}`)

  // 2 x 3 MiB of space: 16 MiB cannot fit, whatever the placement.
  const big = await sh(`dd if=/dev/urandom of=${q(join(M, 'big'))} bs=1M count=16 conv=fsync status=none`, { timeoutMs: 120_000 })
  t.not(big.code, 0, 'the oversized write fails')
  t.match(big.stderr, /No space left on device/, `with ENOSPC: ${big.stderr.trim()}`)

  t.equal(await shOk(`sha256sum < ${q(join(M, 'small'))}`), before, 'the earlier file reads back identical')

  // Writes after a handle's first are answered by the mount's addon before they run
  // (fuse-fs asyncWrite): the error of one of those must still reach the program, at a
  // later write or at close.
  const errs: string[] = []
  const fh = await open(join(M, 'pieces'), 'w')
  const piece = randomBytes(128 * 1024)
  try {
    for (let off = 0; off < 16 * 1024 * 1024 && errs.length === 0; off += piece.length) {
      await fh.write(piece, 0, piece.length, off).catch((err: NodeJS.ErrnoException) => { errs.push(`write at ${off}: ${err.code ?? err.message}`) })
    }
  } finally {
    await fh.close().catch((err: NodeJS.ErrnoException) => { errs.push(`close: ${err.code ?? err.message}`) })
  }
  t.ok(errs.length > 0 && errs.every(e => e.endsWith('ENOSPC')), `16 MiB in 128 KiB writes: ENOSPC reached the program (${errs.join('; ')})`)

  const df = await sh(`df ${q(M)}`)
  t.equal(df.code, 0, 'the mount still answers')
})
