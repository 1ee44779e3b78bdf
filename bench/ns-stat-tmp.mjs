// NameServer micro-benchmark: starts a NameServer in-process (temp root dir), then times
// N creates and N stats over loopback HTTP with keep-alive from C concurrent clients.
// Usage: npx tsc -p . && node bench/ns-micro.mjs [N=2000] [C=1] [sync=full]
import http from 'node:http'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig } from '../dist/src/common/config.js'
import { NameServer } from '../dist/src/nameserver/nameserver.js'

const N = Number(process.argv[2] ?? 2000)
const C = Number(process.argv[3] ?? 1)
const sync = process.argv[4] ?? 'full'
// NS_ADDR=host:port measures a NameServer already running elsewhere (e.g. its own
// process, so client and server do not share one event loop).
const external = process.env.NS_ADDR
const dir = mkdtempSync(join(tmpdir(), 'ns-micro-'))
const ns = external !== undefined ? undefined : new NameServer(parseConfig({ 'nameserver.address': '127.0.0.1:0', 'nameserver.root.dir': dir, 'nameserver.sync': sync, 'cluster.secret': 'bench-secret-0123456789abcdef0123456789' }))
const addr = external ?? await ns.start()
const [host, port] = addr.split(':')
const agent = new http.Agent({ keepAlive: true, maxSockets: C })
const H = { 'x-hiss-uid': '0', 'x-hiss-gids': '0' }
// A fresh top directory per run, so repeated runs against one external NameServer do
// not collide.
const top = `/m${process.pid}-${Date.now().toString(36)}`

function req (method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body)
    const r = http.request({ host, port, method, path, agent, headers: { ...H, ...(data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}) } }, res => {
      const chunks = []
      res.on('data', c => chunks.push(c))
      res.on('end', () => res.statusCode === 200 ? resolve(JSON.parse(Buffer.concat(chunks))) : reject(new Error(`${res.statusCode} ${Buffer.concat(chunks)}`)))
    })
    r.on('error', reject)
    r.end(data)
  })
}

// NS_PID=<pid> (with NS_ADDR): also report the NameServer process's CPU time per
// operation (user+system from /proc), a figure far less noisy than ops/s on a shared
// machine.
const nsPid = process.env.NS_PID
const tick = 1000 / 100 // ms per clock tick (CLK_TCK is 100 on Linux)
function serverCpuMs () {
  if (nsPid === undefined) return undefined
  const f = readFileSync(`/proc/${nsPid}/stat`, 'utf8')
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * tick
}

async function phase (name, op) {
  let next = 0
  const cpu0 = serverCpuMs()
  const t0 = performance.now()
  await Promise.all(Array.from({ length: C }, async () => { for (let i; (i = next++) < N;) await op(i) }))
  const s = (performance.now() - t0) / 1000
  const cpu = cpu0 === undefined ? '' : `, server CPU ${((serverCpuMs() - cpu0) * 1000 / N).toFixed(0)} us/op`
  console.log(`${name}: ${N} in ${s.toFixed(2)} s = ${(N / s).toFixed(0)}/s (C=${C}, sync=${sync}${cpu})`)
}

try {
  await req('POST', '/v1/ns/mkdir', { path: `${top}/a/b/c`, parents: true })
  // Warm-up (JIT, C keep-alive connections), not reported: the first phase is otherwise
  // measured at half speed.
  const report = console.log
  console.log = () => {}
  await phase('warmup', i => req('POST', '/v1/ns/mkdir', { path: `${top}/w/x${i}`, parents: true }))
  console.log = report
  await phase("create", i => req("POST", "/v1/ns/create", { path: `${top}/a/b/c/f${i % 2000}` }).catch(() => {}))
  await phase('stat', i => req('GET', `/v1/ns/stat?path=${encodeURIComponent(`${top}/a/b/c/f${i % 2000}`)}`))

} finally {
  agent.destroy()
  await ns?.close()
  rmSync(dir, { recursive: true, force: true })
}
