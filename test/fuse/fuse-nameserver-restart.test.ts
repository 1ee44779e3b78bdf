// kill -9 of the NameServer while a file is being written through the mount. Write
// sessions live in the NameServer's memory, so the restarted one has forgotten this one:
// close() fails (EIO), and what was written can never be committed. The mount must then
// drop those changes and show the file as the NameServer has it; before, the file kept
// its uncommitted size on this mount and every read of it failed with EIO until the
// mount ended. Afterwards the file can be written again.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { loadConfigFile } from '../../src/common/config.js'
import { fuseSkipReason, startMount } from '../helpers/mount.js'
import { startCluster } from '../helpers/cluster.js'
import { randomData, tempDir } from '../helpers/cluster-files.js'
import { waitUntil } from '../helpers/wait-until.js'

const KiB = 1024

/** Opens argv[1], writes 1 MiB, says so, and closes it when told; prints how close went. */
const WRITER = `
const fs = require('node:fs')
const fd = fs.openSync(process.argv[1], 'w')
fs.writeSync(fd, require('node:crypto').randomBytes(1024 * 1024))
process.stdout.write('written\\n')
process.stdin.once('data', () => {
  try { fs.closeSync(fd); process.stdout.write('close ok\\n') } catch (err) { process.stdout.write('close failed ' + err.code + '\\n') }
})
`

async function suite (t: Test): Promise<void> {
  const c = await startCluster(t, { dataServers: 1, replication: 1, blockSize: 256 * KiB })
  const local = await tempDir(t)
  await writeFile(join(local, 'old'), randomData(100 * KiB))
  t.equal((await c.cli(['put', join(local, 'old'), '/old'])).code, 0, 'a first file is stored')
  const m = await startMount(t, loadConfigFile(c.configPath))
  const path = join(m.dir, 'f')

  // The writer is a process of its own: a process that holds a file of the mount open
  // cannot start another (the NameServer here) without the kernel flushing that file
  // when the child's exec closes the inherited descriptor, which would commit it then.
  const writer = spawn(process.execPath, ['-e', WRITER, path], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => { writer.kill('SIGKILL') })
  let out = ''
  writer.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
  const exited = new Promise<void>(resolve => { writer.once('exit', () => { resolve() }) })
  await waitUntil(() => out.includes('written') || undefined, { timeoutMs: 30_000, what: 'the writer to write' })
  await c.killNameServer('SIGKILL')
  await c.restartNameServer()
  await c.waitForLive()
  writer.stdin.end('close\n')
  await exited
  t.match(out, /close failed EIO/, `close reports that the write could not be committed (${out.trim()})`)

  const ns = await c.cli(['stat', '--json', '/f'])
  t.equal(ns.code, 0, `the file exists on the NameServer (created at open): ${ns.stderr}`)
  const nsSize = (JSON.parse(ns.stdout.toString()) as { size: number }).size
  // The kernel may keep the old attributes for fuse.attr.timeout.ms: wait that out.
  await waitUntil(async () => (await stat(path)).size === nsSize || undefined, { timeoutMs: 10_000, what: `the mount to show the NameServer's size ${nsSize}` })
  const back = await readFile(path)
  t.equal(back.length, nsSize, `reads work again and give the committed ${nsSize} bytes`)

  const again = randomBytes(300 * KiB + 7)
  await writeFile(path, again)
  t.ok((await readFile(path)).equals(again), 'the file can be written again and reads back')
}

const skip = fuseSkipReason()
if (skip !== undefined) {
  t.comment(`skipping: ${skip}`)
  t.test('FUSE tests', { skip }, async () => {})
} else {
  t.test('a NameServer restart during a write through the mount', { timeout: 180_000 }, async t => { await suite(t) })
}
