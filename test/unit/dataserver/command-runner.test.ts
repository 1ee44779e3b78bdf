// The DataServer's heartbeat commands, run against a real block store: a 'zero' command
// stores a block of zeros made from nothing and reports it; one already held is
// reported as it is; a malformed one is skipped and changes nothing; one that cannot be
// stored (a full disk, a newer generation held) reports nothing, so the NameServer asks
// again after its pending timeout.
import t from 'tap'
import { readdir, stat } from 'node:fs/promises'
import { silentLogger } from '../../../src/common/log.js'
import type { DataServerCommand, ReplicaTuple } from '../../../src/common/protocol.js'
import { BlockStore, type FsSpace } from '../../../src/dataserver/block-store.js'
import { CommandRunner } from '../../../src/dataserver/command-runner.js'

/** The whole replica through the store's verified read (checksums checked per chunk). */
async function readAllVerified (store: BlockStore, id: number, gen: number): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const c of store.openRead(id, gen).chunks) parts.push(c)
  return Buffer.concat(parts)
}

function setup (t: { testdir: () => string }, statfs?: () => Promise<FsSpace>): { store: BlockStore, runner: CommandRunner, received: ReplicaTuple[] } {
  const store = new BlockStore(t.testdir(), { chunkBytes: 512, log: silentLogger, ...(statfs === undefined ? {} : { statfs }) })
  const received: ReplicaTuple[] = []
  const runner = new CommandRunner({
    store,
    replicator: { enqueue: async () => { throw new Error('no replication in this test') } },
    reportDeleted: () => {},
    reportReceived: r => { received.push(r) },
    requestFullReport: async () => {},
    log: silentLogger,
  })
  return { store, runner, received }
}

t.test('a zero command stores the block of zeros, sparse, and reports it', async t => {
  const { store, runner, received } = setup(t)
  await store.open()
  t.teardown(() => store.close())
  runner.run([{ type: 'zero', block: { id: 7, gen: 1003, length: 100_000 } }])
  await runner.idle()
  t.same(received, [[7, 1003, 100_000]], 'reported to the NameServer')
  t.same(store.index.get(7), { gen: 1003, length: 100_000 }, 'indexed')
  const st = await stat(store.layout.dataPath(7, 1003))
  t.equal(st.size, 100_000, 'the data file has the block\'s length')
  t.ok(st.blocks * 512 < 16 * 1024, `sparse on disk (${st.blocks * 512} bytes allocated)`)
  const bytes = await readAllVerified(store, 7, 1003)
  t.ok(bytes.equals(Buffer.alloc(100_000)), 'reads back as zeros, checksums verified')

  // Asked again (the report was lost): reported as held, nothing rewritten.
  received.length = 0
  runner.run([{ type: 'zero', block: { id: 7, gen: 1003, length: 100_000 } }])
  await runner.idle()
  t.same(received, [[7, 1003, 100_000]], 'the replica already held is reported')

  // A malformed command is skipped; the good one after it still runs.
  received.length = 0
  runner.run([{ type: 'zero', block: { id: -1, gen: 1, length: 10 } } as unknown as DataServerCommand, { type: 'zero', block: { id: 8, gen: 1001, length: 512 } }])
  await runner.idle()
  t.same(received, [[8, 1001, 512]], 'only the good command ran')
  t.equal(store.index.get(-1), undefined, 'nothing stored for the malformed one')
})

t.test('a zero command that cannot be stored reports nothing and leaves nothing', async t => {
  let free = 0
  const statfs = async (): Promise<FsSpace> => ({ blocks: 2 ** 28, bsize: 4096, bavail: Math.floor(free / 4096) })
  const { store, runner, received } = setup(t, statfs)
  await store.open()
  t.teardown(() => store.close())

  // A full disk: refused before anything is written.
  runner.run([{ type: 'zero', block: { id: 9, gen: 1002, length: 100_000 } }])
  await runner.idle()
  t.same(received, [], 'nothing reported on a full disk')
  t.equal(store.index.get(9), undefined, 'nothing stored')
  t.same(await readdir(store.layout.tmpDir), [], 'no temp file left')

  // Room again: the NameServer's next command succeeds.
  free = 2 ** 40
  runner.run([{ type: 'zero', block: { id: 9, gen: 1002, length: 100_000 } }])
  await runner.idle()
  t.same(received, [[9, 1002, 100_000]], 'stored and reported once there is room')

  // A newer generation is held here: the older block of zeros is not made.
  received.length = 0
  runner.run([{ type: 'zero', block: { id: 9, gen: 1001, length: 100_000 } }])
  await runner.idle()
  t.same(received, [], 'nothing reported for an older generation')
  t.same(store.index.get(9), { gen: 1002, length: 100_000 }, 'the newer replica stays')
})
