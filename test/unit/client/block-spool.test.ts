// The put's spool: one unlinked file per slot, rewritten for each block. Nothing shows in
// the temp directory while it is in use, a slot reads back exactly its latest block (a
// shorter block does not read a longer one's tail), and slots are independent.
import t from 'tap'
import { readdir } from 'node:fs/promises'
import { buffer as readAll } from 'node:stream/consumers'
import { silentLogger } from '../../../src/common/log.js'
import { BlockSpool } from '../../../src/client/block-spool.js'

const bytes = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_v, i) => (i * 31 + seed) & 0xff))

t.test('slots are unlinked files that read back their latest block', async t => {
  const dir = t.testdir()
  const spool = await BlockSpool.create(dir, silentLogger, 2)
  t.ok(spool !== undefined, 'created')
  t.teardown(() => spool!.dispose())
  t.same(await readdir(dir), [], 'no file in the temp directory')

  /** Write one block into `slot` in pieces, as a put does. */
  const fill = async (slot: number, ...pieces: Buffer[]): Promise<boolean> => {
    const w = spool!.begin(slot)
    for (const p of pieces) await w.write(p)
    await w.finish()
    return w.ok
  }
  const long = bytes(200_000, 1)
  t.equal(await fill(0, long.subarray(0, 150_000), long.subarray(150_000)), true, 'every byte reached the spool')
  const other = bytes(5_000, 2)
  await fill(1, other)
  t.ok((await readAll(spool!.open(0))).equals(long), 'slot 0 reads back its block')
  t.ok((await readAll(spool!.open(1))).equals(other), 'slot 1 its own')

  // Slot 0 again, with a shorter block: exactly the new bytes.
  const short = bytes(1_000, 3)
  await fill(0, short)
  t.ok((await readAll(spool!.open(0))).equals(short), 'the shorter block, without the longer one\'s tail')
  t.ok((await readAll(spool!.open(0))).equals(short), 'and again (a second retry reads it from the start)')
  t.same(await readdir(dir), [], 'still nothing in the temp directory')
})

t.test('no spool when its files cannot be made: the put goes on without retries', async t => {
  const spool = await BlockSpool.create('/nonexistent-hissdfs-dir', silentLogger, 2)
  t.equal(spool, undefined)
})
