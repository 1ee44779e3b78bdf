// A full disk: a DataServer whose storage directory is a 2 MiB tmpfs. Writes that do
// not fit fail with ENOSPC (HTTP 507), leave no temp file and no partial replica, and
// the server keeps serving what it has. Needs root (mount); skipped otherwise.
import t from 'tap'
import http from 'node:http'
import { execFileSync } from 'node:child_process'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { StorageLayout } from '../../src/dataserver/storage-layout.js'
import { bytes, deadAddress, errorCode, getBlock, putBlock, request, startDataServer, token } from '../unit/dataserver/helpers.js'

function chunkedPut (addr: string, id: number, data: Buffer): Promise<{ status: number, body: string }> {
  const [host, port] = addr.split(':')
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port: Number(port), method: 'PUT', path: `/v1/blocks/${id}?gen=1`, headers: { 'x-hiss-token': token(id, 1, 'w') } }, res => {
      let body = ''
      res.on('data', (d: Buffer) => { body += d.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    for (let off = 0; off < data.length; off += 65536) req.write(data.subarray(off, off + 65536))
    req.end()
  })
}

async function mountTmpfs (): Promise<{ dir: string, unmount: () => Promise<void> } | string> {
  if (process.getuid?.() !== 0) return 'needs root to mount a small tmpfs'
  const dir = await mkdtemp(join(tmpdir(), 'hiss-enospc-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir], { stdio: 'pipe' })
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    return `cannot mount tmpfs: ${(err as Error).message.split('\n')[0]}`
  }
  return {
    dir,
    unmount: async () => {
      try { execFileSync('umount', [dir], { stdio: 'pipe' }) } catch { execFileSync('umount', ['-l', dir], { stdio: 'pipe' }) }
      await rm(dir, { recursive: true, force: true })
    },
  }
}

const mounted = await mountTmpfs()
if (typeof mounted !== 'string') t.teardown(mounted.unmount)

t.test('a full disk fails writes cleanly and keeps serving', { skip: typeof mounted === 'string' ? mounted : false }, async t => {
  if (typeof mounted === 'string') return
  const m = mounted
  // Closed at the end of this test, before the file-level teardown unmounts.
  const { ds, addr } = await startDataServer(t, m.dir, await deadAddress())
  const layout = new StorageLayout(m.dir)

  const first = bytes(1024 * 1024, 1)
  t.equal((await putBlock(addr, 1, 1, first)).status, 200, '1 MiB fits')

  const big = bytes(1536 * 1024, 2)
  const streamed = await chunkedPut(addr, 2, big)
  t.equal(streamed.status, 507, 'disk full in the middle of a streamed block')
  t.equal(JSON.parse(streamed.body).error.code, 'ENOSPC')
  t.same(await readdir(layout.tmpDir), [], 'no temp file left')
  t.same(await readdir(layout.subdir(2)), [], 'no partial replica')

  const announced = await putBlock(addr, 3, 1, big)
  t.equal(announced.status, 507, 'refused up front when the length is known')
  t.equal(errorCode(announced), 'ENOSPC')
  t.same(await readdir(layout.tmpDir), [])

  t.equal((await request(addr, { method: 'GET', path: '/v1/ping' })).status, 200, 'still up')
  t.ok((await getBlock(addr, 1, 1)).body.equals(first), 'existing block intact')
  const small = bytes(100 * 1024, 3)
  t.equal((await putBlock(addr, 4, 1, small)).status, 200, 'a block that fits is still accepted')
  t.ok((await getBlock(addr, 4, 1)).body.equals(small))
  const s = await ds.storageReport()
  t.equal(s.used, first.length + small.length)
  t.ok(s.capacity <= 2 * 1024 * 1024 && s.remaining < 1024 * 1024)
})
