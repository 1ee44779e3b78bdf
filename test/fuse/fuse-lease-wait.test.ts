// A writer that keeps a file open on one mount holds its write lease for as long as the
// file is open (renewing it), and a write to that file from another mount waits for
// the lease up to client.retry.ms: it succeeds, in order after the holder's data, when
// the holder closes in time, and fails with EBUSY, changing nothing, when it does not.
// While it waits, reads of the file on the waiting mount go on.
// The cluster runs as separate processes, and so does the holder (a Node child writing
// with write(2) on one descriptor, no dup, so no FUSE flush ends its write early): a
// test process that hosts servers and also blocks on the mount could starve its own
// thread pool.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { once } from 'node:events'
import { loadConfigFile } from '../../src/common/config.js'
import { startCluster, TEST_TIMINGS } from '../helpers/cluster.js'
import { fuseSkipReason, sh, startMount } from '../helpers/mount.js'

const q = (p: string): string => JSON.stringify(p)
const LEASE_MS = TEST_TIMINGS['lease.timeout.ms']

/**
 * A child process that appends `first` to `file` on one descriptor, reports "written",
 * then on each line of its stdin appends that line (a line "close" closes the file and
 * exits 0). Killed at teardown if still running.
 */
function holder (t: Test, file: string, first: string): { written: (n: number) => Promise<void>, send: (line: string) => void, exit: Promise<number | null> } {
  const code = `
    const fs = require('node:fs'); const rl = require('node:readline')
    const fd = fs.openSync(process.argv[1], 'a')
    fs.writeSync(fd, process.argv[2]); process.stdout.write('written\\n')
    rl.createInterface({ input: process.stdin }).on('line', l => {
      if (l === 'close') { fs.closeSync(fd); process.exit(0) }
      fs.writeSync(fd, l + '\\n'); process.stdout.write('written\\n')
    })`
  const child = spawn(process.execPath, ['-e', code, file, first], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const exit = once(child, 'exit').then(([c]) => c as number | null)
  let out = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d })
  /** Resolves once the child has reported `n` writes in all. */
  const written = async (n: number): Promise<void> => {
    for (let i = 0; i < 300; i++) {
      if (out.split('written').length - 1 >= n) return
      if (child.exitCode !== null) throw new Error(`holder exited (${String(child.exitCode)}) after ${out.split('written').length - 1} writes`)
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    throw new Error(`holder did not report ${n} writes in 30 s`)
  }
  return { written, send: line => { child.stdin!.write(line + '\n') }, exit }
}

async function suite (t: Test): Promise<void> {
  const cluster = await startCluster(t, { dataServers: 3, replication: 3 })
  const cfg = loadConfigFile(cluster.configPath)
  // a: the holder's mount, and a waiter with a budget longer than the hold.
  // b: a waiter that gives up after 1.5 s.
  const a = await startMount(t, cfg, { config: { 'client.retry.ms': 8000 } })
  const b = await startMount(t, cfg, { config: { 'client.retry.ms': 1500 } })

  await t.test('the other mount gives up with EBUSY while the holder writes on', async t => {
    await writeFile(join(a.dir, 'held'), 'base\n')
    const h = holder(t, join(a.dir, 'held'), 'a1\n')
    await h.written(1)

    const started = Date.now()
    const r = await sh(`echo b1 >> ${q(join(b.dir, 'held'))}`, { timeoutMs: 30_000 })
    const waited = Date.now() - started
    t.not(r.code, 0, 'the append on b fails')
    t.match(r.stderr, /Device or resource busy/, 'with EBUSY')
    t.ok(waited >= 1000, `b waited for the lease before giving up (${waited} ms)`)
    t.equal(await readFile(join(b.dir, 'held'), 'utf8'), 'base\n', 'b changed nothing; a\'s write is not committed yet')

    // touch opens O_WRONLY only to set times: no lease needed, so no wait and no EBUSY.
    // (touch falls back to utimensat when its open fails, so its exit code alone cannot
    // tell: an open that waited for the lease shows as touch taking b's whole budget.)
    const touchStart = Date.now()
    const touch = await sh(`touch ${q(join(b.dir, 'held'))}`, { timeoutMs: 30_000 })
    const touchMs = Date.now() - touchStart
    t.equal(touch.code, 0, `touch on b succeeds while a writes ${touch.stderr}`)
    t.ok(touchMs < 1500, `without waiting for the lease (${touchMs} ms, b's budget is 1500 ms)`)

    // The CLI cannot replace the file under the writer either (it does not wait).
    const put = await cluster.cli(['put', '-', '/held'], { input: 'replaced\n' })
    t.not(put.code, 0, 'hissdfs put over the held file fails')
    t.match(put.stderr, /being written by another client/, 'saying the file is being written')
    t.equal(await readFile(join(b.dir, 'held'), 'utf8'), 'base\n', 'and changes nothing')

    // Hold on past two lease timeouts: the holder's lease is renewed, not lost.
    await new Promise(resolve => setTimeout(resolve, 2 * LEASE_MS + 500))
    const again = await sh(`echo b2 >> ${q(join(b.dir, 'held'))}`, { timeoutMs: 30_000 })
    t.match(again.stderr, /Device or resource busy/, `after ${2 * LEASE_MS + 500} ms the lease is still the holder's`)

    h.send('a2')
    await h.written(2)
    h.send('close')
    t.equal(await h.exit, 0, 'the holder\'s writes and close succeed')
    t.equal(await readFile(join(b.dir, 'held'), 'utf8'), 'base\na1\na2\n', 'b reads the holder\'s data, and nothing of its own failed appends')
    const after = await sh(`echo b3 >> ${q(join(b.dir, 'held'))}`, { timeoutMs: 30_000 })
    t.equal(after.code, 0, `with the holder gone b appends at once ${after.stderr}`)
    t.equal(await readFile(join(a.dir, 'held'), 'utf8'), 'base\na1\na2\nb3\n', 'a reads b\'s append after its own data')
  })

  await t.test('a waiter whose budget outlasts the hold appends after the holder\'s data', async t => {
    await writeFile(join(b.dir, 'queued'), 'base\n')
    const h = holder(t, join(b.dir, 'queued'), 'b1\n')
    await h.written(1)
    // a's append starts while b holds the lease; b closes about a second later.
    let appendDone = false
    const append = sh(`echo a1 >> ${q(join(a.dir, 'queued'))}`, { timeoutMs: 30_000 }).finally(() => { appendDone = true })
    await new Promise(resolve => setTimeout(resolve, 500))
    // Meanwhile the file reads on a as committed, and the reader's close does not wait
    // for the lease either (it used to: the wait held the file's lock).
    const cat = await sh(`cat ${q(join(a.dir, 'queued'))}`, { timeoutMs: 30_000 })
    t.same([cat.code, cat.stdout], [0, 'base\n'], 'cat on a reads the committed content while a\'s append waits')
    t.equal(appendDone, false, 'and finishes before the waiting append does')
    await new Promise(resolve => setTimeout(resolve, 500))
    h.send('b2')
    await h.written(2)
    h.send('close')
    t.equal(await h.exit, 0, 'the holder closes cleanly')
    const r = await append
    t.equal(r.code, 0, `a's append waited and succeeded ${r.stderr}`)
    t.equal(await readFile(join(b.dir, 'queued'), 'utf8'), 'base\nb1\nb2\na1\n', 'a\'s line lands after everything b wrote')
  })
}

const skip = fuseSkipReason()
if (skip !== undefined) {
  t.test('FUSE tests', { skip }, async () => {})
} else {
  t.test('a writer holding a file open on one mount, writes from another', async t => { await suite(t) })
}
