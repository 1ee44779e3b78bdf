// A file being written through the mount while its write is interrupted.
// (1) kill -9 of the NameServer: write sessions are stored, so the restarted NameServer
//     still knows the write; close() succeeds and the file holds every byte.
// (2) The mount frozen (SIGSTOP) for longer than the lease: the NameServer ends the write,
//     close() fails with EIO, and the mount drops the changes it can no longer commit and
//     shows the file as the NameServer has it. Before, the file kept its uncommitted size
//     on that mount and every read of it failed with EIO until the mount ended. Afterwards
//     the file can be written again.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { loadConfigFile } from '../../src/common/config.js'
import { fuseSkipReason, startMount, type Mount } from '../helpers/mount.js'
import { startCluster, TEST_TIMINGS, type Cluster } from '../helpers/cluster.js'
import { randomData, tempDir } from '../helpers/cluster-files.js'
import { waitUntil } from '../helpers/wait-until.js'

const KiB = 1024

/** Copies argv[2] into argv[1] (open, write), says so, closes when told and prints how that went. */
const WRITER = `
const fs = require('node:fs')
const fd = fs.openSync(process.argv[1], 'w')
fs.writeSync(fd, fs.readFileSync(process.argv[2]))
process.stdout.write('written\\n')
process.stdin.once('data', () => {
  try { fs.closeSync(fd); process.stdout.write('close ok\\n') } catch (err) { process.stdout.write('close failed ' + err.code + '\\n') }
})
`

/**
 * A writer process with `src` written into `path`, not yet closed. A process of its own:
 * one that holds a file of the mount open cannot start another (the NameServer here)
 * without the kernel flushing that file when the child's exec closes the inherited
 * descriptor, which would commit it then.
 */
async function openWriter (t: Test, path: string, src: string): Promise<{ close: () => Promise<string> }> {
  const writer = spawn(process.execPath, ['-e', WRITER, path, src], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => { writer.kill('SIGKILL') })
  let out = ''
  writer.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
  const exited = new Promise<void>(resolve => { writer.once('exit', () => { resolve() }) })
  await waitUntil(() => out.includes('written') || undefined, { timeoutMs: 30_000, what: 'the writer to write' })
  return {
    close: async () => {
      writer.stdin.end('close\n')
      await exited
      return out.replace('written\n', '').trim()
    },
  }
}

async function openWrites (c: Cluster): Promise<number | undefined> {
  return ((await c.report()) as { openWrites?: number }).openWrites
}

async function suite (t: Test): Promise<void> {
  const c = await startCluster(t, { dataServers: 1, replication: 1, blockSize: 256 * KiB })
  const local = await tempDir(t)
  await writeFile(join(local, 'old'), randomData(100 * KiB))
  t.equal((await c.cli(['put', join(local, 'old'), '/old'])).code, 0, 'a first file is stored')
  const src = join(local, 'src')
  const data = randomData(1024 * KiB + 3)
  await writeFile(src, data)
  const m: Mount = await startMount(t, loadConfigFile(c.configPath))

  await t.test('kill -9 of the NameServer: close succeeds and the file is whole', async t => {
    const w = await openWriter(t, join(m.dir, 'f'), src)
    await c.killNameServer('SIGKILL')
    await c.restartNameServer()
    await c.waitForLive()
    t.equal(await w.close(), 'close ok', 'close succeeds')
    const cat = await c.cli(['cat', '/f'])
    t.equal(cat.code, 0, `cat: ${cat.stderr}`)
    t.ok(cat.stdout.equals(data), `the NameServer has every byte (${cat.stdout.length} of ${data.length})`)
  })

  await t.test('the mount frozen past its lease: EIO at close, then the file as committed', async t => {
    const path = join(m.dir, 'g')
    const w = await openWriter(t, path, src)
    process.kill(m.pid, 'SIGSTOP')
    let stopped = true
    t.teardown(() => { if (stopped) process.kill(m.pid, 'SIGCONT') })
    await waitUntil(async () => (await openWrites(c)) === 0 || undefined, { timeoutMs: 10 * TEST_TIMINGS['lease.timeout.ms'], what: 'the lease to lapse' })
    process.kill(m.pid, 'SIGCONT')
    stopped = false
    t.equal(await w.close(), 'close failed EIO', 'close reports that the write could not be committed')

    const ns = await c.cli(['stat', '--json', '/g'])
    t.equal(ns.code, 0, `the file exists on the NameServer (created at open): ${ns.stderr}`)
    const nsSize = (JSON.parse(ns.stdout.toString()) as { size: number }).size
    // The kernel may keep the old attributes for fuse.attr.timeout.ms: wait that out.
    await waitUntil(async () => (await stat(path)).size === nsSize || undefined, { timeoutMs: 10_000, what: `the mount to show the NameServer's size ${nsSize}` })
    const back = await readFile(path)
    t.equal(back.length, nsSize, `reads work again and give the committed ${nsSize} bytes`)

    const again = randomBytes(300 * KiB + 7)
    await writeFile(path, again)
    t.ok((await readFile(path)).equals(again), 'the file can be written again and reads back')
  })
}

const skip = fuseSkipReason()
if (skip !== undefined) {
  t.comment(`skipping: ${skip}`)
  t.test('FUSE tests', { skip }, async () => {})
} else {
  t.test('writes through the mount across a NameServer restart and a lost lease', { timeout: 180_000 }, async t => { await suite(t) })
}
