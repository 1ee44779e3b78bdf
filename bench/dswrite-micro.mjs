// Per-phase latency of small-file writes on an in-process cluster (NameServer + 3
// DataServers, replication 3, nameserver.sync=full): N files of 4 KiB written as the
// mount writes them (create, openWrite by ino, storeBlock, commit). Prints the median,
// p90 and mean of each phase in ms, and of the whole file.
// With a build that pushes [name, ms] pairs to globalThis.__tr (a temporary trace
// patch), it also prints those, grouped by name.
// Usage: npx tsc -p . && node bench/dswrite-micro.mjs [N=200] [warmup=20]
import { randomBytes } from 'node:crypto'
import { startCluster } from '../dist/test/helpers/inprocess-cluster.js'

const N = Number(process.argv[2] ?? 200)
const W = Number(process.argv[3] ?? 20)
const teardowns = []
const c = await startCluster({ teardown: fn => teardowns.push(fn) }, { dataServers: 3, replication: 3, blockSize: 64 * 1024 * 1024, config: { 'nameserver.sync': 'full' } })
const phases = { create: [], open: [], store: [], commit: [], file: [] }
try {
  const fs = c.client
  await fs.mkdir('/small')
  const data = randomBytes(4096)
  let cpu0
  for (let i = 0; i < N + W; i++) {
    if (i === W) cpu0 = process.cpuUsage()
    const t0 = performance.now()
    const st = await fs.create(`/small/f${i}`, { mode: 0o644, exclusive: true })
    const t1 = performance.now()
    const w = await fs.openWrite({ ino: st.ino })
    const t2 = performance.now()
    const b = await w.storeBlock(data, data.length)
    const t3 = performance.now()
    await w.commit([b])
    const t4 = performance.now()
    if (i < W) continue
    phases.create.push(t1 - t0); phases.open.push(t2 - t1); phases.store.push(t3 - t2); phases.commit.push(t4 - t3); phases.file.push(t4 - t0)
  }
  const u = process.cpuUsage(cpu0)
  globalThis.__cpu = (u.user + u.system) / 1000 / N
} finally {
  for (const fn of teardowns.reverse()) await fn()
  await c.close()
}
const q = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))] }
const f = x => x.toFixed(2).padStart(7)
console.log(`phase     median     p90    mean  (ms, N=${N})`)
for (const [k, a] of Object.entries(phases)) console.log(`${k.padEnd(7)} ${f(q(a, 0.5))} ${f(q(a, 0.9))} ${f(a.reduce((x, y) => x + y, 0) / a.length)}`)
console.log(`cpu ms/file (whole process: client, NameServer, 3 DataServers): ${globalThis.__cpu.toFixed(2)}`)
console.log(`files/s from mean: ${(1000 / (phases.file.reduce((x, y) => x + y, 0) / N)).toFixed(1)}`)
if (globalThis.__tr) {
  const by = new Map()
  for (const [k, v] of globalThis.__tr) { if (!by.has(k)) by.set(k, []); by.get(k).push(v) }
  for (const [k, a] of [...by].sort()) console.log(`${k.padEnd(24)} ${f(q(a, 0.5))} ${f(q(a, 0.9))} ${f(a.reduce((x, y) => x + y, 0) / a.length)}`)
}
