import t from 'tap'
import { crc32c } from '@node-rs/crc32'
import { ChunkChecksummer, META_HEADER_BYTES, decodeMetaHeader, encodeMetaHeader, metaFileBytes, verifyChunks, zeroMetaBytes } from '../../../src/dataserver/checksum.js'
import { bytes } from './helpers.js'

function expectedCrcs (data: Buffer, chunk: number): number[] {
  const out: number[] = []
  for (let off = 0; off < data.length; off += chunk) out.push(crc32c(data.subarray(off, off + chunk)) >>> 0)
  return out
}

t.test('CRCs do not depend on how the stream is cut into pieces', async t => {
  const data = bytes(5000, 3)
  for (const piece of [1, 7, 512, 513, 4096, 5000]) {
    const sum = new ChunkChecksummer(512)
    for (let off = 0; off < data.length; off += piece) sum.update(data.subarray(off, off + piece))
    const meta = sum.finish()
    t.equal(sum.length, 5000)
    t.equal(meta.length, metaFileBytes(5000, 512), `meta size with pieces of ${piece}`)
    const got: number[] = []
    for (let o = META_HEADER_BYTES; o < meta.length; o += 4) got.push(meta.readUInt32BE(o))
    t.same(got, expectedCrcs(data, 512), `pieces of ${piece}`)
    t.same(decodeMetaHeader(meta), { chunkBytes: 512, length: 5000 })
  }
})

t.test('an empty block has a header and no CRCs; exact multiples have no short chunk', async t => {
  const empty = new ChunkChecksummer(512).finish()
  t.equal(empty.length, META_HEADER_BYTES)
  t.same(decodeMetaHeader(empty), { chunkBytes: 512, length: 0 })
  const s = new ChunkChecksummer(512)
  s.update(bytes(1024))
  t.equal(s.finish().length, META_HEADER_BYTES + 8)
})

t.test('header damage is refused', async t => {
  const h = encodeMetaHeader({ chunkBytes: 4096, length: 123456 })
  t.same(decodeMetaHeader(h), { chunkBytes: 4096, length: 123456 })
  for (let i = 0; i < META_HEADER_BYTES; i++) {
    const bad = Buffer.from(h)
    bad[i] = bad[i]! ^ 0x10
    t.throws(() => decodeMetaHeader(bad), { code: 'CHECKSUM_MISMATCH' }, `byte ${i} flipped`)
  }
  t.throws(() => decodeMetaHeader(h.subarray(0, 10)), { code: 'CHECKSUM_MISMATCH' })
})

t.test('verifyChunks reports how far the data is good', async t => {
  const data = bytes(2000, 9)
  const crcs = Buffer.alloc(16)
  expectedCrcs(data, 512).forEach((c, i) => crcs.writeUInt32BE(c, i * 4))
  t.equal(verifyChunks(data, crcs, 512), 2000)
  const bad = Buffer.from(data)
  bad[1300] = bad[1300]! ^ 1
  t.equal(verifyChunks(bad, crcs, 512), 1024, 'stops at the start of the damaged chunk')
  bad[0] = bad[0]! ^ 1
  t.equal(verifyChunks(bad, crcs, 512), 0)
  t.equal(verifyChunks(data, crcs.subarray(0, 8), 512), 1024, 'missing CRCs do not verify')
})

t.test('zeroMetaBytes is what ChunkChecksummer makes of zeros', async t => {
  for (const chunk of [512, 4096]) {
    for (const length of [0, 1, chunk - 1, chunk, chunk + 1, 3 * chunk, 3 * chunk + 5]) {
      const sum = new ChunkChecksummer(chunk)
      sum.update(Buffer.alloc(length))
      t.ok(zeroMetaBytes(length, chunk).equals(sum.finish()), `chunk ${chunk}, length ${length}`)
    }
  }
})
