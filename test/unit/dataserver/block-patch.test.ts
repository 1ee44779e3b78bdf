// Block patches on one DataServer (POST /v1/blocks/:id/patch): applying ranges in place
// and moving the replica to a new generation; refusals that change nothing; and crash
// recovery from the files a killed process leaves (complete journal: re-applied; torn
// journal: dropped, replica untouched).
import t from 'tap'
import http from 'node:http'
import { open, readdir, readFile, readlink, realpath, rename, stat, truncate, unlink, writeFile } from 'node:fs/promises'
import { signBlockToken } from '../../../src/common/auth.js'
import { StorageLayout } from '../../../src/dataserver/storage-layout.js'
import { BlockLocks } from '../../../src/dataserver/block-locks.js'
import { encodeJournalHeader, journalTrailer, parseRanges, touchedChunks, type JournalHeader } from '../../../src/dataserver/block-patch.js'
import { crc32c } from '@node-rs/crc32'
import { TEST_SECRET, bytes, deadAddress, errorCode, getBlock, putBlock, request, startDataServer, token, waitFor, type Teardown, type RawReply } from './helpers.js'

const CHUNK = 512

function updateToken (id: number, gen: number, from: number[], secret = TEST_SECRET): string {
  return signBlockToken(secret, { b: id, g: gen, a: 'w', e: Date.now() + 600000, f: from })
}

interface Range { offset: number, data: Buffer }

function patchBlock (addr: string, id: number, gen: number, length: number, ranges: Range[], headers: Record<string, string> = {}, from = [1]): Promise<RawReply> {
  const body = Buffer.concat(ranges.map(r => r.data))
  return request(addr, {
    method: 'POST',
    path: `/v1/blocks/${id}/patch?gen=${gen}&length=${length}`,
    headers: {
      'x-hiss-token': updateToken(id, gen, from),
      'x-hiss-patch-ranges': ranges.map(r => `${r.offset}+${r.data.length}`).join(','),
      'content-type': 'application/octet-stream',
      'content-length': String(body.length),
      ...headers,
    },
    body,
  })
}

/** The model: `base` with the ranges applied, grown with zeros to `length`. */
function applied (base: Buffer, length: number, ranges: Range[]): Buffer {
  const out = Buffer.alloc(Math.max(length, base.length))
  base.copy(out)
  for (const r of ranges) r.data.copy(out, r.offset)
  return out.subarray(0, length)
}

async function startDs (t: Teardown, root: string): Promise<{ ds: Awaited<ReturnType<typeof startDataServer>>['ds'], addr: string }> {
  return startDataServer(t, root, await deadAddress(), { 'checksum.chunk.bytes': CHUNK })
}

async function files (root: string, id: number): Promise<string[]> {
  const sub = new StorageLayout(root).subdir(id)
  return (await readdir(sub)).sort()
}

t.test('ranges: parsed strictly', async t => {
  t.same(parseRanges('0+10,20+5', 100), [{ offset: 0, length: 10 }, { offset: 20, length: 5 }])
  t.throws(() => parseRanges('', 100), { code: 'BAD_REQUEST' })
  t.throws(() => parseRanges('10+5,12+5', 100), { code: 'BAD_REQUEST' }, 'overlap')
  t.throws(() => parseRanges('20+5,0+5', 100), { code: 'BAD_REQUEST' }, 'descending')
  t.throws(() => parseRanges('0+0', 100), { code: 'BAD_REQUEST' }, 'empty')
  t.throws(() => parseRanges('95+10', 100), { code: 'ERANGE' }, 'past the end')
  t.throws(() => parseRanges('-1+5', 100), { code: 'BAD_REQUEST' })
  t.throws(() => parseRanges('1e3+5', 10000), { code: 'BAD_REQUEST' })
  t.throws(() => parseRanges(Array.from({ length: 1025 }, (_, i) => `${i * 2}+1`).join(','), 10000), { code: 'BAD_REQUEST' })
})

t.test('touched chunks: ranges and the grown tail, merged', async t => {
  t.same(touchedChunks({ ranges: [{ offset: 0, length: 1 }, { offset: 1500, length: 10 }], oldLength: 3000, newLength: 3000 }, 512), [[0, 0], [2, 2]])
  t.same(touchedChunks({ ranges: [{ offset: 600, length: 1000 }], oldLength: 3000, newLength: 3000 }, 512), [[1, 3]])
  t.same(touchedChunks({ ranges: [{ offset: 100, length: 1 }, { offset: 3200, length: 300 }], oldLength: 3000, newLength: 3500 }, 512), [[0, 0], [5, 6]])
  t.same(touchedChunks({ ranges: [{ offset: 2600, length: 1 }], oldLength: 2600, newLength: 2601 }, 512), [[5, 5]])
})

t.test('locks: readers share, a patch waits for them and goes before later readers', async t => {
  const l = new BlockLocks()
  const order: string[] = []
  const r1 = await l.shared(1)
  const w = l.exclusive(1).then(rel => { order.push('w'); return rel })
  const r2 = l.shared(1).then(rel => { order.push('r2'); return rel })
  const other = await l.exclusive(2)
  order.push('other')
  await new Promise(resolve => setImmediate(resolve))
  t.same(order, ['other'], 'the patch waits for the reader; a later reader waits for the patch')
  r1()
  const wr = await w
  t.same(order, ['other', 'w'])
  wr()
  ;(await r2)()
  other()
  t.same(order, ['other', 'w', 'r2'])
  t.equal(l.size, 0, 'no lock state left behind')
})

t.test('patch applies in place and moves the replica to the new generation', async t => {
  const root = t.testdir()
  const { ds, addr } = await startDs(t, root)
  const base = bytes(3000, 3)
  t.equal((await putBlock(addr, 7, 1, base)).status, 200)

  const ranges: Range[] = [
    { offset: 100, data: bytes(50, 4) },
    { offset: 2000, data: bytes(600, 5) },
    { offset: 3200, data: bytes(300, 6) },
  ]
  const r = await patchBlock(addr, 7, 5, 3500, ranges)
  t.equal(r.status, 200, r.body.toString())
  t.same(JSON.parse(r.body.toString()), { id: 7, gen: 5, length: 3500, stored: [ds.id], failed: [] })
  const want = applied(base, 3500, ranges)
  const got = await getBlock(addr, 7, 5)
  t.equal(got.status, 200)
  t.ok(got.body.equals(want), 'new generation reads as the old bytes with the ranges (zeros in the gap)')
  t.equal(errorCode(await getBlock(addr, 7, 1)), 'ENOENT', 'the old generation is gone')
  t.same(await files(root, 7), ['blk_7_5', 'blk_7_5.meta'])
  const jdir = new StorageLayout(root).journalDir
  await waitFor(async () => (await readdir(jdir)).length === 0, 5000, 'the checkpoint to remove the journal')
  t.pass('journal removed once the patch is durable in place')
  t.same((await ds.scanNow()).corrupt, 0, 'every checksum matches')

  // A second patch on top, covering whole chunks and the last partial one.
  const more: Range[] = [{ offset: 0, data: bytes(1024, 7) }, { offset: 3400, data: bytes(100, 8) }]
  const r2 = await patchBlock(addr, 7, 9, 3500, more, {}, [5])
  t.equal(r2.status, 200, r2.body.toString())
  t.ok((await getBlock(addr, 7, 9)).body.equals(applied(want, 3500, more)))
  const part = await getBlock(addr, 7, 9, '&offset=1000&length=1200')
  t.ok(part.body.equals(applied(want, 3500, more).subarray(1000, 2200)), 'ranged read of the patched replica')

  // The patched replica survives a restart as it is.
  await ds.close({ unregister: false })
  const again = await startDs(t, root)
  t.ok((await getBlock(again.addr, 7, 9)).body.equals(applied(want, 3500, more)))
  t.same((await again.ds.scanNow()).corrupt, 0)
})

/** What this process holds open under `root` (paths from /proc/self/fd). */
async function fdsUnder (root: string): Promise<string[]> {
  const out: string[] = []
  for (const fd of await readdir('/proc/self/fd')) {
    try {
      const target = await readlink(`/proc/self/fd/${fd}`)
      if (target.startsWith(root + '/')) out.push(target.slice(root.length + 1))
    } catch {}
  }
  return out.sort()
}

t.test('patches in a row leave no handle open but the kept directory handles, and close drops those', async t => {
  const root = await realpath(t.testdir())
  const { ds, addr } = await startDs(t, root)
  let model = bytes(4000, 1)
  t.equal((await putBlock(addr, 11, 1, model)).status, 200)
  let gen = 1
  for (let i = 0; i < 30; i++) {
    const r: Range = { offset: (i * 337) % 3900, data: bytes(64, 100 + i) }
    const res = await patchBlock(addr, 11, gen + 1, 4000, [r], {}, [gen])
    t.equal(res.status, 200, res.body.toString())
    gen++
    model = applied(model, 4000, [r])
  }
  const layout = new StorageLayout(root)
  await waitFor(async () => (await readdir(layout.journalDir)).length === 0, 5000, 'the checkpoints to remove the journals')
  t.ok((await getBlock(addr, 11, gen)).body.equals(model), 'the last generation holds every patch')
  const held = await fdsUnder(root)
  const dirs = [layout.journalDir, layout.subdir(11)].map(d => d.slice(root.length + 1)).sort()
  t.same(held.filter(p => !dirs.includes(p)), [], 'no replica or journal file left open')
  t.ok(held.length <= dirs.length, `at most one kept handle per directory (${held.join(', ')})`)

  // A replica whose checksum file went missing under the DataServer: the patch is refused,
  // and the data file it opened side by side is closed again.
  await unlink(layout.metaPath(11, gen))
  const lost = await patchBlock(addr, 11, gen + 1, 4000, [{ offset: 0, data: bytes(64, 7) }], {}, [gen])
  t.ok(lost.status >= 400, `refused without its checksum file: ${lost.status} ${lost.body.toString()}`)
  t.same(await readdir(layout.journalDir), [], 'no journal left by the refused patch')
  t.same((await fdsUnder(root)).filter(p => !dirs.includes(p)), [], 'the refused patch left no file open')
  await ds.close({ unregister: false })
  t.same(await fdsUnder(root), [], 'close drops the kept directory handles')
})

t.test('refusals change nothing', async t => {
  const root = t.testdir()
  const { addr } = await startDs(t, root)
  const base = bytes(3000, 9)
  t.equal((await putBlock(addr, 8, 2, base)).status, 200)
  const one: Range[] = [{ offset: 10, data: bytes(20, 1) }]
  const unchanged = async (what: string): Promise<void> => {
    const g = await getBlock(addr, 8, 2)
    t.ok(g.status === 200 && g.body.equals(base), `${what}: replica unchanged`)
    t.same(await files(root, 8), ['blk_8_2', 'blk_8_2.meta'], `${what}: same files`)
    t.same(await readdir(new StorageLayout(root).journalDir), [], `${what}: no journal left`)
  }

  let r = await patchBlock(addr, 8, 6, 3000, one, {}, [1])
  t.equal(r.status, 410)
  t.equal(errorCode(r), 'STALE_REPLICA', 'replica at another generation than the token allows')
  t.match(r.body.toString(), /generation 2/)
  await unchanged('wrong generation')

  r = await patchBlock(addr, 8, 2, 3000, one, {}, [2])
  t.equal(errorCode(r), 'EEXIST', 'already at that generation')
  r = await patchBlock(addr, 9, 6, 3000, one, {}, [2])
  t.equal(r.status, 404, 'no such block')

  for (const [what, headers] of [
    ['no token', { 'x-hiss-token': '' }],
    ['a write token, not an update token', { 'x-hiss-token': token(8, 6, 'w') }],
    ['a read token', { 'x-hiss-token': signBlockToken(TEST_SECRET, { b: 8, g: 6, a: 'r', e: Date.now() + 60000, f: [2] }) }],
    ['token for another generation', { 'x-hiss-token': updateToken(8, 7, [2]) }],
    ['token for another block', { 'x-hiss-token': updateToken(9, 6, [2]) }],
    ['forged token', { 'x-hiss-token': updateToken(8, 6, [2], 'another-secret-0123456789') }],
    ['expired token', { 'x-hiss-token': signBlockToken(TEST_SECRET, { b: 8, g: 6, a: 'w', e: Date.now() - 1000, f: [2] }) }],
  ] as const) {
    r = await patchBlock(addr, 8, 6, 3000, one, headers, [2])
    t.equal(r.status, 403, what)
    t.equal(errorCode(r), 'BAD_TOKEN', what)
  }
  await unchanged('bad tokens')

  r = await patchBlock(addr, 8, 6, 3000, [{ offset: 2990, data: bytes(20, 1) }], {}, [2])
  t.equal(errorCode(r), 'ERANGE', 'range past the new length')
  r = await patchBlock(addr, 8, 6, 2000, [{ offset: 10, data: bytes(20, 1) }], {}, [2])
  t.equal(errorCode(r), 'BAD_REQUEST', 'a patch cannot shrink the block')
  r = await patchBlock(addr, 8, 6, 3000, [{ offset: 10, data: bytes(20, 1) }, { offset: 20, data: bytes(20, 1) }], {}, [2])
  t.equal(errorCode(r), 'BAD_REQUEST', 'overlapping ranges')
  r = await patchBlock(addr, 8, 6, 3000, one, { 'x-hiss-patch-ranges': '10+21' }, [2])
  t.equal(errorCode(r), 'BAD_REQUEST', 'content length differs from the ranges')
  r = await patchBlock(addr, 8, 6, 2 ** 33, one, {}, [2])
  t.equal(errorCode(r), 'TOO_LARGE', 'beyond the largest block')
  r = await patchBlock(addr, 8, 1, 3000, one, {}, [2])
  t.equal(errorCode(r), 'BAD_REQUEST', 'new generation not above the held one')
  await unchanged('bad ranges and lengths')

  // A corrupt chunk that the patch overwrites only in part is found first: the patch is
  // refused, and the replica quarantined rather than blessed with a fresh checksum.
  const data = new StorageLayout(root).dataPath(8, 2)
  const fh = await open(data, 'r+')
  await fh.write(Buffer.from([0xff ^ base[700]!]), 0, 1, 700)
  await fh.close()
  r = await patchBlock(addr, 8, 6, 3000, [{ offset: 520, data: bytes(10, 1) }], {}, [2])
  t.equal(errorCode(r), 'CHECKSUM_MISMATCH', 'corrupt chunk under a partial overwrite')
  t.equal(errorCode(await getBlock(addr, 8, 2)), 'CHECKSUM_MISMATCH', 'replica quarantined')
  t.same(await readdir(new StorageLayout(root).journalDir), [])
})

/** Build the journal a patch writes, as a killed DataServer would leave it. */
function journalBytes (h: JournalHeader, data: Buffer): Buffer {
  return Buffer.concat([encodeJournalHeader(h), data, journalTrailer(crc32c(data))])
}

t.test('recovery: a complete journal is re-applied at start, whatever state the replica files are in', async t => {
  for (const state of ['untouched', 'data-written', 'meta-renamed', 'renamed', 'replica-deleted'] as const) {
    await t.test(state, async t => {
      const root = t.testdir()
      const L = new StorageLayout(root)
      const first = await startDs(t, root)
      const base = bytes(3000, 11)
      t.equal((await putBlock(first.addr, 21, 3, base)).status, 200)
      await first.ds.close({ unregister: false })

      const ranges: Range[] = [{ offset: 500, data: bytes(700, 12) }, { offset: 3100, data: bytes(50, 13) }]
      const h: JournalHeader = { id: 21, from: 3, to: 8, oldLength: 3000, newLength: 3150, ranges: ranges.map(r => ({ offset: r.offset, length: r.data.length })) }
      await writeFile(L.journalPath(21, 3, 8), journalBytes(h, Buffer.concat(ranges.map(r => r.data))))
      const want = applied(base, 3150, ranges)
      if (state !== 'untouched' && state !== 'replica-deleted') {
        // The killed process had written some bytes in place (old checksums: a torn mix).
        const fh = await open(L.dataPath(21, 3), 'r+')
        await fh.write(ranges[0]!.data, 0, 300, 500)
        await fh.close()
      }
      if (state === 'meta-renamed' || state === 'renamed') await rename(L.metaPath(21, 3), L.metaPath(21, 8))
      if (state === 'renamed') {
        await rename(L.dataPath(21, 3), L.dataPath(21, 8))
        await truncate(L.dataPath(21, 8), 3150)
      }
      if (state === 'replica-deleted') {
        await rename(L.dataPath(21, 3), L.corruptDataPath(21, 3)).then(() => rename(L.metaPath(21, 3), L.corruptMetaPath(21, 3)))
      }

      const second = await startDs(t, root)
      t.same(await readdir(L.journalDir), [], 'journal gone')
      if (state === 'replica-deleted') {
        t.same(await files(root, 21), [], 'nothing to re-apply to: the journal is dropped')
        return
      }
      const g = await getBlock(second.addr, 21, 8)
      t.equal(g.status, 200)
      t.ok(g.body.equals(want), 'the new generation, complete')
      t.same(await files(root, 21), ['blk_21_8', 'blk_21_8.meta'])
      t.same((await second.ds.scanNow()).corrupt, 0, 'checksums match')
    })
  }
})

t.test('recovery: a torn journal is dropped and the replica is untouched', async t => {
  const root = t.testdir()
  const L = new StorageLayout(root)
  const first = await startDs(t, root)
  const base = bytes(3000, 14)
  t.equal((await putBlock(first.addr, 22, 3, base)).status, 200)
  t.equal((await putBlock(first.addr, 23, 3, base)).status, 200)
  await first.ds.close({ unregister: false })

  const ranges: Range[] = [{ offset: 100, data: bytes(900, 15) }]
  const h: JournalHeader = { id: 22, from: 3, to: 8, oldLength: 3000, newLength: 3000, ranges: [{ offset: 100, length: 900 }] }
  const full = journalBytes(h, ranges[0]!.data)
  // Killed while writing the journal: cut in the bytes, or before the trailer.
  await writeFile(L.journalPath(22, 3, 8), full.subarray(0, 500))
  await writeFile(L.journalPath(23, 3, 8), full.subarray(0, full.length - 8))
  // Complete in size but damaged (the bytes' CRC in the trailer does not match).
  const bad = Buffer.from(journalBytes({ ...h, id: 23, to: 9 }, ranges[0]!.data))
  bad[bad.length - 20] = bad[bad.length - 20]! ^ 0xff
  await writeFile(L.journalPath(23, 3, 9), bad)

  const second = await startDs(t, root)
  t.same(await readdir(L.journalDir), [], 'torn journals dropped')
  for (const id of [22, 23]) {
    const g = await getBlock(second.addr, id, 3)
    t.ok(g.status === 200 && g.body.equals(base), `block ${id}: old generation intact`)
  }
  t.same((await second.ds.scanNow()).corrupt, 0)
  t.equal((await stat(L.dataPath(22, 3))).size, 3000)
  t.ok((await readFile(L.dataPath(22, 3))).equals(base))
})

t.test('a read of the old generation in progress never returns a mix of generations', async t => {
  const root = t.testdir()
  const { addr } = await startDs(t, root)
  const base = bytes(6 * 1024 * 1024, 31)
  t.equal((await putBlock(addr, 40, 1, base)).status, 200)
  const port = Number(addr.slice(addr.lastIndexOf(':') + 1))
  // Start reading and stop consuming after the first bytes: the DataServer is then
  // waiting for the socket to drain, between two verified batches.
  const got: Buffer[] = []
  let res: http.IncomingMessage | undefined
  const done = new Promise<boolean>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/v1/blocks/40?gen=1', headers: { 'x-hiss-token': token(40, 1, 'r') }, agent: false }, r => {
      res = r
      r.once('data', (c: Buffer) => { got.push(c); r.pause() })
      r.on('end', () => resolve(r.complete))
      r.on('aborted', () => resolve(false))
      r.on('error', () => resolve(false))
    })
    req.on('error', reject)
  })
  await waitFor(() => got.length > 0, 10000, 'the first bytes of the read')
  const edits: Range[] = [{ offset: 5 * 1024 * 1024, data: bytes(4096, 32) }]
  const r = await patchBlock(addr, 40, 2, base.length, edits)
  t.equal(r.status, 200, 'the patch does not wait for the slow reader')
  res!.on('data', (c: Buffer) => got.push(c))
  res!.resume()
  const complete = await done
  const body = Buffer.concat(got)
  t.ok(body.length <= base.length)
  t.ok(body.equals(base.subarray(0, body.length)), 'every byte the reader got is the old generation')
  t.ok(!complete || body.length === base.length, 'a cut read is reported as cut (fewer bytes than announced)')
  t.ok((await getBlock(addr, 40, 2)).body.equals(applied(base, base.length, edits)), 'the new generation reads whole')
})
