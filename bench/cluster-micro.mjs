// Small-file and streaming-read micro-benchmark on an in-process cluster (NameServer +
// 3 DataServers on loopback, temp dirs, nameserver.sync=full, replication 3).
//   small: N sequential 4 KiB files the way the FUSE mount writes them
//          (create, openWrite by ino, storeBlock, commit) - files/s
//   cat:   write then stream back an M MiB file (createReadStream) - MB/s
// Usage: npx tsc -p . && node bench/cluster-micro.mjs [N=100] [M=64] [C=1 concurrent small-file writers]
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { startCluster } from '../dist/test/helpers/inprocess-cluster.js'

const N = Number(process.argv[2] ?? 100)
const M = Number(process.argv[3] ?? 64)
const C = Number(process.argv[4] ?? 1)
const teardowns = []
const c = await startCluster({ teardown: fn => teardowns.push(fn) }, { dataServers: 3, replication: 3, blockSize: 64 * 1024 * 1024, config: { 'nameserver.sync': 'full' } })
try {
  const fs = c.client
  await fs.mkdir('/small')
  const data = randomBytes(4096)
  let t0 = performance.now()
  let next = 0
  await Promise.all(Array.from({ length: C }, async () => { for (let i; (i = next++) < N;) {
    const st = await fs.create(`/small/f${i}`, { mode: 0o644, exclusive: true })
    const w = await fs.openWrite({ ino: st.ino })
    const b = await w.storeBlock(data, data.length)
    await w.commit([b])
  } }))
  let s = (performance.now() - t0) / 1000
  console.log(`small: ${N} x 4 KiB files in ${s.toFixed(2)} s = ${(N / s).toFixed(1)} files/s (C=${C})`)

  const size = M * 1024 * 1024
  const chunk = randomBytes(1024 * 1024)
  await fs.put('/big', Readable.from((function * () { for (let i = 0; i < M; i++) yield chunk })()))
  t0 = performance.now()
  let got = 0
  for await (const b of fs.createReadStream('/big')) got += b.length
  s = (performance.now() - t0) / 1000
  if (got !== size) throw new Error(`read ${got} of ${size} bytes`)
  console.log(`cat: ${M} MiB in ${s.toFixed(2)} s = ${(size / 1e6 / s).toFixed(1)} MB/s`)
} finally {
  for (const fn of teardowns.reverse()) await fn()
  await c.close()
}
