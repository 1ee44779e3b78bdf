// kill -9 of hissdfs-mount: what close() acknowledged is on the cluster, a file still
// open (never closed) is not half-visible, the dead mountpoint is released with
// fusermount -u -z, and a new mount on the same directory reads everything back.
import t from 'tap'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { FUSE_TEST_CONFIG as STABLE, fuseSkipReason, isMounted, sh, shOk, startFuseCluster, startMount } from '../helpers/mount.js'

const q = (p: string): string => JSON.stringify(p)

const skip = fuseSkipReason()
if (skip !== undefined) t.comment(`skipping FUSE kill -9 test: ${skip}`)

t.test('kill -9 of the mount loses nothing that close() acknowledged', { skip: skip ?? false }, async t => {
  const { cluster, mount } = await startFuseCluster(t, { config: STABLE, dataServers: 2, replication: 2, blockSize: 1024 * 1024 })
  const M = mount.dir
  await shOk(`head -c 3000000 /dev/urandom > ${q(join(M, 'closed.bin'))}`)
  const want = await shOk(`sha256sum < ${q(join(M, 'closed.bin'))}`)
  // A writer that never closes (one process holding one descriptor: no close, so no
  // FUSE flush): its bytes were never acknowledged.
  const script = `import os, sys, time\nf = open(sys.argv[1], 'wb', buffering=0)\nf.write(os.urandom(2000000))\nprint('written', flush=True)\ntime.sleep(60)\n`
  const writer = spawn('python3', ['-c', script, join(M, 'open.bin')], { stdio: ['ignore', 'pipe', 'ignore'] })
  t.teardown(() => { writer.kill('SIGKILL') })
  await new Promise<void>((resolve, reject) => {
    writer.stdout.on('data', () => resolve())
    writer.on('exit', code => reject(new Error(`writer exited early (${code})`)))
  })

  process.kill(mount.pid, 'SIGKILL')
  const gone = await mount.exited
  t.equal(gone.signal, 'SIGKILL', 'the mount process died')
  writer.kill('SIGKILL')
  const unmount = await sh(`fusermount -u -z ${q(M)}`, { timeoutMs: 10_000 })
  t.equal(unmount.code, 0, 'the dead mountpoint can be released')
  t.notOk(await isMounted(M), 'nothing left mounted there')

  const again = await startMount(t, cluster.cfg, { dir: M })
  t.equal(await shOk(`sha256sum < ${q(join(again.dir, 'closed.bin'))}`), want, 'the closed file reads back identical')
  const open = await sh(`stat -c %s ${q(join(again.dir, 'open.bin'))}`)
  t.ok(open.code !== 0 || open.stdout.trim() === '0', `the never-closed file is absent or empty, never partial (${open.stdout.trim() || 'absent'})`)
})
