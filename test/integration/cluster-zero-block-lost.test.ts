// A block of zeros whose every replica is lost is made again from nothing: the
// replication monitor has no source to copy from, so it sends 'zero' commands and the
// DataServers store the block anew (sparse). A lost block of written bytes next to it
// stays missing: fsck must go on saying so, the remedy is only for zeros.
import t from 'tap'
import { rm, stat } from 'node:fs/promises'
import { buffer as readAll } from 'node:stream/consumers'
import { describeFsck } from '../../src/cli/commands/fsck.js'
import type { FsckReply } from '../../src/common/protocol.js'
import { startCluster } from '../helpers/inprocess-cluster.js'
import { findBlockFiles } from '../helpers/cluster-files.js'
import { Rng } from '../helpers/rng.js'
import { waitUntil } from '../helpers/wait-until.js'

const MiB = 1024 * 1024

type FsckBlock = FsckReply['entries'][number]['blocks'][number]
const liveOf = (b: FsckBlock): number => b.replicas.filter(r => r.state === 'live').length

t.test('a block of zeros with no replica left is stored anew; a lost data block stays missing', async t => {
  const c = await startCluster(t, { dataServers: 3, replication: 2, blockSize: 4 * MiB })
  const data = new Rng(11).bytes(50_000)
  const s = await c.client.openWrite({ path: '/holes' }, { create: true })
  const refs = [await s.storeZeros(4 * MiB), await s.storeBlock(data)]
  await s.commit(refs)
  const [zeroId, dataId] = [refs[0]!.id, refs[1]!.id]

  const fsckWhen = async (what: string, ok: (f: FsckReply) => boolean): Promise<FsckReply> => {
    let last: FsckReply | undefined
    await waitUntil(async () => {
      last = await c.client.fsck('/holes')
      return ok(last) ? true : undefined
    }, { timeoutMs: 30_000, intervalMs: 200, what })
    return last!
  }
  const blockOf = (f: FsckReply, id: number): FsckBlock => f.entries[0]!.blocks.find(b => b.id === id)!
  await fsckWhen('both blocks with two live replicas', f => f.healthy && f.entries[0]!.blocks.every(b => liveOf(b) === 2))

  // Lose every replica: stop the DataServers, delete their block files, start them again.
  for (let i = 0; i < 3; i++) await c.stopDataServer(i, { unregister: false })
  let removed = 0
  for (const dir of c.dataServerDirs) {
    for (const file of await findBlockFiles(dir)) {
      if (file.id !== zeroId && file.id !== dataId) continue
      await rm(file.path)
      await rm(`${file.path}.meta`, { force: true })
      removed++
    }
  }
  t.equal(removed, 4, 'the four replicas (two per block) were on disk and are gone')
  for (let i = 0; i < 3; i++) await c.restartDataServer(i)
  await c.waitForLive(3)

  const lost = await c.client.fsck('/holes')
  t.equal(blockOf(lost, zeroId).zero, true, 'fsck marks the hole as a block of zeros')
  t.equal(blockOf(lost, dataId).zero, undefined, 'and not the data block')
  const f = await fsckWhen('the block of zeros with two live replicas again', f => liveOf(blockOf(f, zeroId)) === 2)
  t.equal(liveOf(blockOf(f, dataId)), 0, 'the data block has no replica')
  t.equal(f.missing, 1, 'fsck counts the data block missing, and only it')
  t.equal(f.healthy, false, 'the file is not healthy')
  const text = describeFsck(f).join('\n')
  t.match(text, new RegExp(`block ${dataId} gen \\d+ \\(50000 bytes\\): MISSING`), 'the CLI text names the lost data block')
  t.notMatch(text, new RegExp(`block ${zeroId} `), 'and not the block of zeros, which has its replicas')

  // The new replicas are real files on the DataServers, sized and sparse.
  let made = 0
  for (const dir of c.dataServerDirs) {
    for (const file of await findBlockFiles(dir)) {
      if (file.id !== zeroId) continue
      made++
      const st = await stat(file.path)
      t.equal(st.size, 4 * MiB, `${file.rel}: the block's length`)
      t.ok(st.blocks * 512 < 64 * 1024, `${file.rel}: sparse on disk (${st.blocks * 512} bytes allocated)`)
    }
  }
  t.equal(made, 2, 'two replica files of the block of zeros')
  // Still missing a while later: nothing pretends to restore written bytes.
  await new Promise(resolve => setTimeout(resolve, 1000))
  const later = await c.client.fsck('/holes')
  t.equal(liveOf(blockOf(later, dataId)), 0, 'the data block is still without a replica')
  t.equal(liveOf(blockOf(later, zeroId)), 2, 'and the block of zeros keeps two (no extra copies)')

  // Putting the data block's bytes back is the operator's remedy; here: rewrite the file.
  const w = await c.client.openWrite({ path: '/holes' }, { overwrite: true })
  await w.commit([await w.storeZeros(4 * MiB), await w.storeBlock(data)])
  await fsckWhen('the rewritten file healthy', f => f.healthy)
  t.ok((await readAll(c.client.createReadStream('/holes'))).equals(Buffer.concat([Buffer.alloc(4 * MiB), data])), 'the rewritten file reads back')
})
