// kill -9 of the NameServer right after acknowledged writes: restarted on the same
// directory, it has every file, and every file reads back identical once the
// DataServers have re-registered and reported their blocks.
import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startCluster } from '../helpers/cluster.js'
import { randomData, sha256, tempDir } from '../helpers/cluster-files.js'

const KiB = 1024

t.test('acknowledged mutations survive kill -9 of the NameServer', async t => {
  const c = await startCluster(t, { dataServers: 3, replication: 2, blockSize: 128 * KiB })
  const local = await tempDir(t)
  const files = new Map<string, Buffer>()
  const sizes = [0, 1, 4096, 128 * KiB, 128 * KiB + 1, 700 * KiB]
  const mk = await c.cli(['mkdir', '-p', '/d/e'])
  t.equal(mk.code, 0)
  for (const [i, size] of sizes.entries()) {
    const remote = i % 2 === 0 ? `/f${i}` : `/d/e/f${i}`
    const data = randomData(size)
    await writeFile(join(local, `f${i}`), data)
    const r = await c.cli(['put', join(local, `f${i}`), remote])
    t.equal(r.code, 0, `put ${remote}: ${r.stderr}`)
    files.set(remote, data)
  }
  // A rename and an overwrite as the last acknowledged mutations before the crash.
  t.equal((await c.cli(['mv', '/f0', '/d/moved'])).code, 0)
  files.set('/d/moved', files.get('/f0') as Buffer)
  files.delete('/f0')
  const last = randomData(200 * KiB)
  await writeFile(join(local, 'last'), last)
  t.equal((await c.cli(['put', join(local, 'last'), '/f2'])).code, 0, 'overwrite acknowledged')
  files.set('/f2', last)

  const status = await c.killNameServer('SIGKILL')
  t.equal(status.signal, 'SIGKILL', 'NameServer killed')
  const down = await c.cli(['ls', '/'], { env: { ...process.env } })
  t.equal(down.code, 1, 'the CLI fails cleanly while the NameServer is down')
  t.notMatch(down.stderr, /\n\s+at /, 'no stack trace')

  await c.restartNameServer()
  await c.waitForLive(3, 60000)

  const listed = (await c.cli(['ls', '-R', '/'])).stdout.toString().trim().split('\n').sort()
  t.same(listed, ['/d', '/d/e', ...files.keys()].sort(), 'every file and directory is listed')
  for (const [p, data] of files) {
    const r = await c.cli(['cat', p])
    t.equal(r.code, 0, `cat ${p}: ${r.stderr}`)
    t.equal(sha256(r.stdout), sha256(data), `${p} reads back identical (${data.length} bytes)`)
  }
  const more = await c.cli(['put', '-', '/after'], { input: 'after restart' })
  t.equal(more.code, 0, `writes work after the restart: ${more.stderr}`)
  t.equal((await c.cli(['cat', '/after'])).stdout.toString(), 'after restart')
})
