// Patching blocks in place through the client library against a real in-process
// cluster (NameServer + 3 DataServers, replication 3): the patch goes through the
// replica pipeline, the commit moves the block to its new generation, every replica
// ends up byte-identical and readable; a dead DataServer in the pipeline; refusals.
import t from 'tap'
import { readFile } from 'node:fs/promises'
import { buffer as readAll } from 'node:stream/consumers'
import { Readable } from 'node:stream'
import type { LocatedBlock } from '../../src/common/protocol.js'
import type { HissWriteSession } from '../../src/client/write-session.js'
import { startCluster, type Cluster } from '../helpers/inprocess-cluster.js'
import { findBlockFiles } from '../helpers/cluster-files.js'
import { Rng } from '../helpers/rng.js'
import { waitUntil } from '../helpers/wait-until.js'
import { writeAt } from '../helpers/model.js'

const KiB = 1024
const BLOCK = 256 * KiB
const bytes = (len: number, seed: number): Buffer => new Rng(seed).bytes(len)

interface Edit { offset: number, data: Buffer }

/** Patch block `idx` of the session's file with `edits` (block offsets), growing it to `length`. */
async function patch (s: HissWriteSession, block: LocatedBlock, edits: Edit[], length = block.length): Promise<LocatedBlock> {
  return s.patchBlock(block, {
    length,
    ranges: edits.map(e => ({ offset: e.offset, length: e.data.length })),
    body: () => Readable.from([Buffer.concat(edits.map(e => e.data))]),
  })
}

function apply (model: Buffer, base: number, edits: Edit[]): Buffer {
  let out = model
  for (const e of edits) out = writeAt(out, e.data, base + e.offset)
  return out
}

/** Every DataServer's replica of block `id` (the newest generation each holds). */
async function replicas (c: Cluster, id: number): Promise<Array<{ gen: number, data: Buffer }>> {
  const out: Array<{ gen: number, data: Buffer }> = []
  for (const dir of c.dataServerDirs) {
    const files = (await findBlockFiles(dir)).filter(f => f.id === id && f.rel.startsWith('current/'))
    for (const f of files) out.push({ gen: f.gen, data: await readFile(f.path) })
  }
  return out
}

async function healthy (c: Cluster, path: string, replication = 3): Promise<void> {
  await waitUntil(async () => {
    const f = await c.client.fsck(path)
    const ok = f.healthy && f.underReplicated === 0 && f.entries.every(e => e.blocks.every(b => b.replicas.filter(r => r.state === 'live').length === replication))
    return ok ? true : undefined
  }, { timeoutMs: 30000, intervalMs: 200, what: `${path} fully replicated` })
}

t.test('block patches through the pipeline', async t => {
  const c = await startCluster(t, { dataServers: 3, replication: 3, blockSize: BLOCK })
  const client = c.client

  await t.test('patch, commit, read back; every replica equal', async t => {
    let model = bytes(2 * BLOCK + 1000, 1)
    await client.put('/a', Readable.from([model]))
    const s = await client.openWrite({ path: '/a' }) as HissWriteSession
    const blocks = [...s.baseBlocks]
    const edits: Edit[] = [{ offset: 5, data: bytes(4096, 2) }, { offset: 100000, data: bytes(10, 3) }]
    const b1 = await patch(s, blocks[1]!, edits)
    t.equal(b1.id, blocks[1]!.id, 'same block id')
    t.ok(b1.gen > blocks[1]!.gen, 'new generation')
    t.equal(b1.locations.length, 3, 'every replica in the pipeline stored it')
    model = apply(model, BLOCK, edits)
    // The last block grows (a write past its end), with a hole of zeros before it.
    const tail: Edit[] = [{ offset: 3000, data: bytes(500, 4) }]
    const b2 = await patch(s, blocks[2]!, tail, 3500)
    model = apply(model, 2 * BLOCK, tail)
    const stat = await s.commit([blocks[0]!, b1, b2])
    t.equal(stat.size, model.length)
    t.ok((await readAll(client.createReadStream('/a'))).equals(model), 'reads back as the model')
    await healthy(c, '/a')
    for (const [b, from] of [[b1, BLOCK], [b2, 2 * BLOCK]] as const) {
      const reps = await replicas(c, b.id)
      t.equal(reps.length, 3, `block ${b.id}: three replicas on disk`)
      for (const r of reps) {
        t.equal(r.gen, b.gen, 'at the new generation')
        t.ok(r.data.equals(model.subarray(from, from + b.length)), 'byte-identical to the model')
      }
    }
    // Blocks that were not touched keep their generation.
    const now = await client.getBlocks({ path: '/a' })
    t.same(now.blocks.map(b => [b.id, b.gen, b.length]), [[blocks[0]!.id, blocks[0]!.gen, BLOCK], [b1.id, b1.gen, BLOCK], [b2.id, b2.gen, 3500]])
  })

  await t.test('a patch over FAN_OUT_MAX_BYTES goes along the chain, a small one to every hop at once: both reach every replica', async t => {
    const big = 1024 * KiB
    let model = bytes(big, 11)
    await client.put('/big', Readable.from([model]), { blockSize: big })
    await healthy(c, '/big')
    const s = await client.openWrite({ path: '/big' }) as HissWriteSession
    const base = s.baseBlocks[0]!
    // 300 KiB of changed bytes: over FAN_OUT_MAX_BYTES (256 KiB), so the chain.
    const large: Edit[] = [{ offset: 1000, data: bytes(300 * KiB, 12) }]
    const b1 = await patch(s, base, large)
    t.equal(b1.locations.length, 3, 'the large patch reached all three replicas')
    model = apply(model, 0, large)
    await s.commit([b1], { keepOpen: true })
    const small: Edit[] = [{ offset: 900 * KiB, data: bytes(100, 13) }]
    const b2 = await patch(s, b1, small)
    t.equal(b2.locations.length, 3, 'the small patch reached all three replicas')
    model = apply(model, 0, small)
    await s.commit([b2])
    t.ok((await readAll(client.createReadStream('/big'))).equals(model), 'reads back as the model')
    const reps = await replicas(c, b2.id)
    t.equal(reps.length, 3, 'three replicas on disk')
    for (const r of reps) t.ok(r.gen === b2.gen && r.data.equals(model), 'each at the last generation, byte-identical')
  })

  await t.test('refusals', async t => {
    await client.put('/r', Readable.from([bytes(1000, 5)]))
    const s = await client.openWrite({ path: '/r' }) as HissWriteSession
    const b = s.baseBlocks[0]!
    await t.rejects(patch(s, b, [{ offset: 900, data: bytes(200, 1) }]), { code: 'EINVAL' }, 'range past the length')
    await t.rejects(patch(s, b, [{ offset: 0, data: bytes(10, 1) }], 500), { code: 'EINVAL' }, 'shrinking')
    await t.rejects(patch(s, { ...b, gen: b.gen + 1 }, [{ offset: 0, data: bytes(10, 1) }]), { code: 'EINVAL' }, 'unknown generation')
    const b1 = await patch(s, b, [{ offset: 0, data: bytes(10, 1) }])
    // A commit of the block at a generation never handed out, or too long, is refused.
    await t.rejects(s.commit([{ ...b1, gen: b1.gen + 1 }], { keepOpen: true }), { code: 'EINVAL' })
    await t.rejects(s.commit([{ ...b1, length: 999 }], { keepOpen: true }), { code: 'EINVAL' })
    // Another client cannot patch the block meanwhile (it cannot even open the file).
    await t.rejects(c.newClient().openWrite({ path: '/r' }), { code: 'LEASE_HELD' })
    await s.commit([b1])
  })

  await t.test('a dead DataServer inside the pipeline', async t => {
    let model = bytes(BLOCK, 6)
    await client.put('/d', Readable.from([model]))
    await healthy(c, '/d')
    const f = await client.fsck('/d')
    const order = f.entries[0]!.blocks[0]!.replicas.map(r => r.dataserver)
    // Crash the middle of the pipeline (the NameServer still believes it is live).
    const victim = c.indexOf(order[1]!)
    await c.stopDataServer(victim, { unregister: false })
    const s = await client.openWrite({ path: '/d' }) as HissWriteSession
    const edits: Edit[] = [{ offset: 70000, data: bytes(4096, 7) }]
    const b = await patch(s, s.baseBlocks[0]!, edits)
    // A small patch goes to every hop at once: the dead middle one does not cut off the last.
    t.equal(b.locations.length, 2, `stored on the two live replicas (${b.locations.length})`)
    t.notOk(b.locations.some(l => l.id === order[1]), 'the dead one is not a location')
    await s.commit([b])
    model = apply(model, 0, edits)
    t.ok((await readAll(client.createReadStream('/d'))).equals(model), 'reads the patch')
    // It comes back holding the old generation: that stale replica is replaced.
    await c.restartDataServer(victim)
    await healthy(c, '/d')
    const reps = await replicas(c, b.id)
    t.equal(reps.length, 3)
    for (const r of reps) t.ok(r.gen === b.gen && r.data.equals(model), 'every replica at the new generation, equal')
  })
})
