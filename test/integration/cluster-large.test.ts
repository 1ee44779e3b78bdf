// 1 GiB through `put -` and `cat`, streamed end to end: generated on the fly, hashed on
// the fly, never held in memory by anyone. The daemons' resident memory (VmRSS from
// /proc) must stay within idle + 200 MiB the whole time.
import t from 'tap'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { pipeline } from 'node:stream/promises'
import { startCluster } from '../helpers/cluster.js'
import { generatedStream } from '../helpers/cluster-files.js'

const MiB = 1024 * 1024
const TOTAL = 1024 * MiB
const HEADROOM = 200 * MiB

async function rss (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status)
  return m === null ? 0 : Number(m[1]) * 1024
}

t.test('1 GiB put and cat with flat daemon memory', async t => {
  const c = await startCluster(t, { dataServers: 3, replication: 3, blockSize: 64 * MiB, logLevel: 'warn' })
  // Warm up the code paths, then take the idle baseline.
  const warm = await c.cli(['put', '-', '/warm'], { input: Buffer.alloc(2 * MiB, 7) })
  t.equal(warm.code, 0, 'warm-up put')
  t.equal((await c.cli(['cat', '/warm'])).stdout.length, 2 * MiB, 'warm-up cat')
  const daemons = [{ name: 'nameserver', pid: c.nameServer.pid }, ...c.dataServers.map(d => ({ name: `dataserver-${d.index}`, pid: d.pid }))]
  const idle = new Map<number, number>()
  for (const d of daemons) idle.set(d.pid, await rss(d.pid))
  const peak = new Map<number, number>(idle)
  const sampler = setInterval(() => {
    for (const d of daemons) {
      rss(d.pid).then(v => { if (v > (peak.get(d.pid) ?? 0)) peak.set(d.pid, v) }).catch(() => {})
    }
  }, 250)
  t.teardown(() => clearInterval(sampler))

  const started = Date.now()
  const gen = generatedStream(TOTAL)
  const writer = c.spawnCli(['put', '-', '/big'])
  let putErr = ''
  writer.stderr?.on('data', (d: Buffer) => { putErr += d.toString() })
  const putExit = once(writer, 'exit')
  await pipeline(gen.stream, writer.stdin as NodeJS.WritableStream)
  const [putCode] = await putExit as [number | null]
  t.equal(putCode, 0, `put - of 1 GiB: ${putErr.trim()}`)
  const putSecs = (Date.now() - started) / 1000
  t.comment(`put: ${(TOTAL / MiB / putSecs).toFixed(0)} MiB/s`)

  const stat = JSON.parse((await c.cli(['stat', '/big', '--json'])).stdout.toString()) as { size: number }
  t.equal(stat.size, TOTAL, 'size is 1 GiB')

  const catStart = Date.now()
  const reader = c.spawnCli(['cat', '/big'])
  reader.stdin?.end()
  let catErr = ''
  reader.stderr?.on('data', (d: Buffer) => { catErr += d.toString() })
  const catExit = once(reader, 'exit')
  const h = createHash('sha256')
  let got = 0
  for await (const chunk of reader.stdout as AsyncIterable<Buffer>) { h.update(chunk); got += chunk.length }
  const [catCode] = await catExit as [number | null]
  t.equal(catCode, 0, `cat: ${catErr.trim()}`)
  t.comment(`cat: ${(TOTAL / MiB / ((Date.now() - catStart) / 1000)).toFixed(0)} MiB/s`)
  t.equal(got, TOTAL, 'cat returns 1 GiB')
  t.equal(h.digest('hex'), gen.hash(), 'sha256 equal')

  clearInterval(sampler)
  for (const d of daemons) {
    const base = idle.get(d.pid) ?? 0
    const top = peak.get(d.pid) ?? 0
    t.ok(top < base + HEADROOM, `${d.name}: VmRSS idle ${(base / MiB).toFixed(0)} MiB, peak ${(top / MiB).toFixed(0)} MiB (limit idle + ${HEADROOM / MiB} MiB)`)
  }
})
