// A DataServer whose disk fills up: its directory is a 4 MiB tmpfs, one of 3
// DataServers at replication 3. A put larger than that disk either succeeds or fails
// cleanly (then nothing is visible), and no acknowledged byte is lost: every earlier
// file reads back, even from the full DataServer alone.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm, statfs, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { startCluster } from '../helpers/cluster.js'
import { randomData, sha256, tempDir } from '../helpers/cluster-files.js'

const KiB = 1024
const MiB = 1024 * KiB

function mountTmpfs (dir: string): string | undefined {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir], { encoding: 'utf8' })
  return r.status === 0 ? undefined : (r.stderr || r.error?.message || `mount exited ${String(r.status)}`).trim()
}

function unmount (dir: string): void {
  if (spawnSync('umount', [dir]).status !== 0) spawnSync('umount', ['-l', dir])
}

async function whyNot (): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'not root: cannot mount a tmpfs'
  const probe = await mkdtemp(join(tmpdir(), 'hiss-tmpfs-probe-'))
  try {
    const err = mountTmpfs(probe)
    if (err !== undefined) return `cannot mount a tmpfs here: ${err}`
    unmount(probe)
    return undefined
  } finally {
    await rm(probe, { recursive: true, force: true })
  }
}

const reason = await whyNot()
if (reason !== undefined) t.comment(`skipping the full-disk test: ${reason}`)

t.test('a DataServer on a full disk', { skip: reason ?? false }, async t => {
  let mounted: string | undefined
  // Registered first, so it runs last (tap runs teardowns in reverse): after the
  // cluster's processes are gone, so the tmpfs is no longer busy.
  t.teardown(async () => {
    if (mounted === undefined) return
    unmount(mounted)
    await rm(dirname(mounted), { recursive: true, force: true })
  })
  const c = await startCluster(t, {
    dataServers: 3,
    replication: 3,
    blockSize: MiB,
    prepareDataServerDir: (i, dir) => {
      if (i !== 0) return
      const err = mountTmpfs(dir)
      if (err !== undefined) throw new Error(`mount tmpfs on ${dir}: ${err}`)
      mounted = dir
    },
  })
  const local = await tempDir(t)

  const earlier = new Map<string, Buffer>()
  for (let i = 0; i < 3; i++) {
    const data = randomData(300 * KiB + i)
    await writeFile(join(local, `e${i}`), data)
    const r = await c.cli(['put', join(local, `e${i}`), `/e${i}`])
    t.equal(r.code, 0, `earlier put /e${i}: ${r.stderr}`)
    earlier.set(`/e${i}`, data)
  }
  // Wait until the small DataServer holds its replica of every earlier file.
  const full = c.dataServers[0]
  if (full === undefined) throw new Error('no dataserver')
  const waitOn = async (): Promise<void> => {
    for (let tries = 0; tries < 100; tries++) {
      const f = await c.fsck('/')
      if (f.entries.every(e => e.blocks.every(b => b.replicas.some(r => r.dataserver === full.id && r.state === 'live')))) return
      await new Promise(resolve => setTimeout(resolve, 200))
    }
    throw new Error('the tmpfs DataServer never got replicas of the earlier files')
  }
  await waitOn()

  const big = randomData(6 * MiB)
  await writeFile(join(local, 'big'), big)
  const r = await c.cli(['put', join(local, 'big'), '/big'], { timeoutMs: 120000 })
  const fsStat = await statfs(full.dir)
  t.comment(`tmpfs after the large put: ${(fsStat.bavail * fsStat.bsize / KiB).toFixed(0)} KiB free of 4096 KiB`)
  if (r.code === 0) {
    t.pass('the large put succeeded despite the full DataServer')
    t.equal(sha256((await c.cli(['cat', '/big'])).stdout), sha256(big), 'and reads back')
  } else {
    t.equal(r.code, 1, 'the large put failed cleanly (exit 1)')
    t.match(r.stderr, /^hissdfs: put: \/big: [^\n]+\n$/, `one clear line: ${r.stderr.trim()}`)
    t.equal((await c.cli(['exists', '/big'])).code, 1, 'nothing visible at /big')
  }
  for (const [p, data] of earlier) {
    t.equal(sha256((await c.cli(['cat', p])).stdout), sha256(data), `${p} reads back`)
  }
  const after = await c.cli(['put', '-', '/after'], { input: 'still writable' })
  t.equal(after.code, 0, `small writes still work: ${after.stderr}`)

  // The full DataServer's own replicas of acknowledged files are intact: read with it alone.
  await c.killDataServer(1)
  await c.killDataServer(2)
  for (const [p, data] of earlier) {
    const rr = await c.cli(['cat', p], { timeoutMs: 60000 })
    t.equal(rr.code, 0, `${p} from the full DataServer alone: ${rr.stderr}`)
    t.equal(sha256(rr.stdout), sha256(data), `${p} is intact on the full DataServer`)
  }
})
