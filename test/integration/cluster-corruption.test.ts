// Bit rot: flipped bytes in replica files on disk. Readers still get the right bytes
// (the checksum catches it and the client fails over), the NameServer shows the
// corrupt replicas, and replaces them: eventually 3 good replicas each and no bad
// file left.
import t from 'tap'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FsckReply, ReportReply } from '../../src/common/protocol.js'
import { cliToFile, startCluster } from '../helpers/cluster.js'
import { findBlockFiles, flipByte, randomData, sha256, tempDir, type BlockFile } from '../helpers/cluster-files.js'
import { waitUntil } from '../helpers/wait-until.js'

const KiB = 1024
const BLOCK = 256 * KiB

t.test('corrupt replicas are never served and get replaced', async t => {
  // The scanner runs every few seconds here as a backstop: which replica a reader
  // tries first is the NameServer's choice (load, locality), so the test cannot force
  // every corrupt replica to be met by a read.
  const c = await startCluster(t, { dataServers: 3, replication: 3, blockSize: BLOCK, extra: { 'scanner.interval.ms': 4000 } })
  const local = await tempDir(t)
  const data = randomData(4 * BLOCK)
  await writeFile(join(local, 'f'), data)
  t.equal((await c.cli(['put', join(local, 'f'), '/f'])).code, 0, 'put')
  const f0 = await waitUntil(async () => { const f = await c.fsck('/'); return f.healthy && f.underReplicated === 0 ? f : undefined }, { timeoutMs: 20000, what: 'healthy' })
  const blocks = f0.entries[0]?.blocks ?? []
  t.equal(blocks.length, 4, '4 blocks')

  // Blocks 0, 1 and 2 each get one bad replica, each on a different DataServer: a
  // whole-file read meets at least one of them whatever order the replicas come in,
  // as long as readers prefer the same server for every block.
  const victims: Array<{ ds: number, file: BlockFile, expected: Buffer }> = []
  for (let i = 0; i < 3; i++) {
    const b = blocks[i]
    const ds = c.dataServers[i]
    if (b === undefined || ds === undefined) throw new Error('missing block or dataserver')
    const file = (await findBlockFiles(ds.dir)).find(x => x.id === b.id && x.gen === b.gen)
    if (file === undefined) throw new Error(`dataserver-${i} has no replica of block ${b.id}`)
    const expected = data.subarray(i * BLOCK, (i + 1) * BLOCK)
    t.equal(sha256(await readFile(file.path)), sha256(expected), `block ${i}: the replica file holds exactly the block bytes`)
    await flipByte(file.path, 1000 + i * 7919)
    t.not(sha256(await readFile(file.path)), sha256(expected), `block ${i}: the replica on dataserver-${i} is now corrupt`)
    victims.push({ ds: i, file, expected })
  }
  const victimIds = new Set(victims.map(v => v.file.id))

  // The NameServer repairs a corrupt replica within a second or two, quicker than a
  // CLI process starts on a busy machine, so a watcher polls the admin API (the very
  // JSON that `report --json` and `fsck --json` print) for the transient state.
  let seen = ''
  let watching = true
  const headers = { 'x-hiss-uid': '0', 'x-hiss-gids': '0' }
  const watcher = (async () => {
    while (watching && seen === '') {
      try {
        const [rep, f] = await Promise.all([
          fetch(`http://${c.nsAddress}/v1/admin/report`, { headers }).then(async x => await x.json() as ReportReply),
          fetch(`http://${c.nsAddress}/v1/admin/fsck?path=%2F`, { headers }).then(async x => await x.json() as FsckReply),
        ])
        const inFsck = f.entries.some(e => e.blocks.some(b => victimIds.has(b.id) && b.replicas.some(x => x.state === 'corrupt')))
        if (rep.blocks.corrupt > 0 || f.corrupt > 0 || inFsck) seen = `report.blocks.corrupt=${rep.blocks.corrupt} fsck.corrupt=${f.corrupt} replica state corrupt=${String(inFsck)} healthy=${String(f.healthy)}`
      } catch {}
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  })()
  t.teardown(() => { watching = false })

  // Readers get the right bytes, every time, while corrupt replicas are on disk.
  for (let i = 0; i < 3; i++) {
    const r = await c.cli(['cat', '/f'])
    t.equal(r.code, 0, `cat ${i + 1}: ${r.stderr}`)
    t.equal(sha256(r.stdout), sha256(data), `cat ${i + 1} returns the right bytes`)
  }
  // cat into a file reads straight into its buffer (HissFs.readInto), as get does.
  const toFile = await cliToFile(c, join(local, 'cat-out'), ['cat', '/f'])
  t.equal(toFile.code, 0, `cat into a file: ${toFile.stderr}`)
  t.equal(sha256(await readFile(join(local, 'cat-out'))), sha256(data), 'cat into a file returns the right bytes')
  const get = await c.cli(['get', '/f', join(local, 'back')])
  t.equal(get.code, 0, 'get')
  t.equal(sha256(await readFile(join(local, 'back'))), sha256(data), 'get returns the right bytes')

  await waitUntil(() => seen !== '' || undefined, { timeoutMs: 20000, intervalMs: 50, what: 'the corruption to show in report/fsck' }).catch(() => {})
  watching = false
  await watcher
  t.ok(seen !== '', `the corruption showed in report/fsck: ${seen}`)

  // Repaired: 3 live replicas per block, nothing corrupt, and no bad bytes left on disk.
  await waitUntil(async () => {
    const f = await c.fsck('/')
    const good = f.healthy && f.corrupt === 0 && f.underReplicated === 0 &&
      (f.entries[0]?.blocks ?? []).every(b => b.replicas.filter(r => r.state === 'live').length === 3)
    return good || undefined
  }, { timeoutMs: 40000, intervalMs: 500, what: 'every block repaired to 3 good replicas' })
  t.pass('every block has 3 good replicas again')
  await waitUntil(async () => {
    // Each corrupt file is either gone or replaced by a good copy of its block.
    for (const v of victims) {
      const ds = c.dataServers[v.ds]
      if (ds === undefined) return undefined
      for (const copy of (await findBlockFiles(ds.dir)).filter(b => b.id === v.file.id)) {
        const bytes = await readFile(copy.path).catch(() => undefined)
        if (bytes !== undefined && sha256(bytes) !== sha256(v.expected)) return undefined
      }
    }
    return true
  }, { timeoutMs: 40000, intervalMs: 500, what: 'the corrupt replica files to disappear' })
  t.pass('no corrupt copy of any block is left on disk')
  const rep = await c.report()
  t.equal(rep.blocks.corrupt, 0, 'report: no corrupt blocks')
  t.equal(sha256((await c.cli(['cat', '/f'])).stdout), sha256(data), 'reads back after the repair')
})
