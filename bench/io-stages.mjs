// Stage timings of the data path against a running cluster (see io-micro.sh HOLD=1):
//   node bench/io-stages.mjs CLIENT_CONFIG SRC_FILE
// put with and without spool, whole-file read to nowhere, one block via the client and
// via a bare http.get (same token), each timed alone. MB = 10^6 bytes.
import { createReadStream, statSync } from 'node:fs'
import http from 'node:http'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { loadConfigFile as loadConfig } from '../dist/src/common/config.js'
import { createClient } from '../dist/src/client/index.js'

const [cfgPath, src] = process.argv.slice(2)
const cfg = loadConfig(cfgPath)
const size = statSync(src).size
const only = (process.env.STAGES ?? 'put,putnospool,read,block,rawblock').split(',')
const sink = () => new Writable({ write (c, e, cb) { cb() }, writev (c, cb) { cb() } })
const mbs = (bytes, t0) => (bytes / 1e6 / ((performance.now() - t0) / 1000)).toFixed(1)
async function timed (name, bytes, fn) {
  if (!only.includes(name)) return
  const t0 = performance.now()
  await fn()
  console.log(`${name.padEnd(11)} ${mbs(bytes, t0)} MB/s`)
}
const c = createClient(cfg)
const c2 = createClient(cfg, { spoolDir: false })
await timed('put', size, () => c.put('/stage', createReadStream(src, { highWaterMark: 1 << 20 }), { overwrite: true }))
await timed('putnospool', size, () => c2.put('/stage', createReadStream(src, { highWaterMark: 1 << 20 }), { overwrite: true }))
await timed('read', size, () => pipeline(c.createReadStream('/stage'), sink()))
const { blocks } = await c.getBlocks({ path: '/stage' })
const b = blocks[0]
await timed('block', b.length, () => pipeline(c.readBlock(b, 0, b.length), sink()))
await timed('rawblock', b.length, () => new Promise((resolve, reject) => {
  const loc = b.locations[0]
  const [host, port] = [loc.address.slice(0, loc.address.lastIndexOf(':')), Number(loc.address.slice(loc.address.lastIndexOf(':') + 1))]
  http.get({ host, port, path: `/v1/blocks/${b.id}?gen=${b.gen}`, headers: { 'x-hiss-token': b.token } }, res => {
    if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`))
    res.on('data', () => {}); res.on('end', resolve); res.on('error', reject)
  }).on('error', reject)
}))
await c.close(); await c2.close()
