import { Readable } from 'node:stream'
import { startCluster } from './dist/test/helpers/inprocess-cluster.js'
const teardowns = []
const c = await startCluster({ teardown: fn => teardowns.push(fn) }, { dataServers: 3, replication: 3, config: { 'nameserver.sync': 'full' } })
const fs = c.client; const N = 300
await fs.mkdir('/d')
const data = Buffer.alloc(4096, 5)
for (let i = 0; i < N; i++) await fs.put(`/d/f${i}`, Readable.from([data]))
for (let i = 0; i < N; i++) await fs.create(`/d/e${i}`)
await new Promise(r => setTimeout(r, 1000))
for (const pre of ['f', 'e']) {
  const c0 = process.cpuUsage(); const t0 = performance.now()
  for (let i = 0; i < N; i++) await fs.delete(`/d/${pre}${i}`, { parent: true })
  const u = process.cpuUsage(c0)
  console.log(pre, ((performance.now() - t0) / N).toFixed(3), 'ms/delete', ((u.user + u.system) / N).toFixed(0), 'us cpu (all in-process)')
}
for (const fn of teardowns.reverse()) await fn()
