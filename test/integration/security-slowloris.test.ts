// Slowloris: 200 connections to a DataServer and 200 to the NameServer, each sending
// its request headers one byte every 200 ms and never finishing them. Meanwhile a
// normal put and read of a few MiB through the client must complete in bounded time,
// and the servers must drop the slow connections on their own (headers timeout)
// instead of holding them forever.
import t, { type Test } from 'tap'
import net from 'node:net'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { buffer as readAll } from 'node:stream/consumers'
import { splitHostPort } from '../../src/common/config.js'
import { sha256 } from '../helpers/cluster-files.js'
import { startCluster } from '../helpers/inprocess-cluster.js'

const PER_SERVER = 200
const BYTE_EVERY_MS = 200
/** The normal traffic must finish within this, attack or not. */
const OPS_BOUND_MS = 30000
/**
 * Servers check header deadlines periodically (Node: headersTimeout 10 s, checked every
 * 30 s by default), so a slow connection may live up to ~40 s; allow a little more.
 */
const DROP_BOUND_MS = 45000

interface Slow { sock: net.Socket, closedByServer: boolean, closedAt: number, reply: string }

function openSlow (address: string, n: number, opened: number): Slow[] {
  const { host, port } = splitHostPort(address)
  const out: Slow[] = []
  for (let i = 0; i < n; i++) {
    const s: Slow = { sock: net.connect({ host, port }), closedByServer: false, closedAt: 0, reply: '' }
    s.sock.setNoDelay(true)
    s.sock.on('data', (d: Buffer) => { if (s.reply.length < 200) s.reply += d.toString('latin1') })
    s.sock.on('error', () => {})
    s.sock.on('close', () => { if (s.closedAt === 0) { s.closedByServer = true; s.closedAt = Date.now() - opened } })
    out.push(s)
  }
  return out
}

t.test('slow headers on 400 connections do not stop normal traffic', async t => {
  const c = await startCluster(t, { dataServers: 3, replication: 3, blockSize: 1024 * 1024 })
  const ds0 = c.dataServers[0]!.address
  const opened = Date.now()
  const slow = [...openSlow(ds0, PER_SERVER, opened), ...openSlow(c.nameServerAddress, PER_SERVER, opened)]
  // The same request head for everyone, sent one byte per tick per connection, never
  // reaching the blank line; then header lines of junk forever.
  const head = 'GET /v1/ping HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\n'
  const pos = new Array<number>(slow.length).fill(0)
  let round = 0
  // Spread the writes over the period instead of 400 at once.
  const SLICES = 10
  const tick = setInterval(() => {
    const slice = round++ % SLICES
    for (let i = slice; i < slow.length; i += SLICES) {
      const s = slow[i]!
      if (s.sock.destroyed || s.closedByServer || s.sock.connecting) continue
      const p = pos[i]!
      const ch = p < head.length ? head[p]! : 'X-a: b\r\n'[(p - head.length) % 8]!
      pos[i] = p + 1
      s.sock.write(ch)
    }
  }, BYTE_EVERY_MS / SLICES)
  t.teardown(() => {
    clearInterval(tick)
    for (const s of slow) { s.closedAt ||= -1; s.sock.destroy() }
  })
  const openNow = (): number => slow.filter(s => !s.closedByServer).length
  t.ok(openNow() > 0.9 * slow.length, `the slow connections are open (${openNow()})`)

  const roundTrip = async (t: Test, path: string): Promise<void> => {
    const data = randomBytes(4 * 1024 * 1024 + 333)
    const started = Date.now()
    await c.client.put(path, Readable.from([data]))
    const back = await readAll(c.client.createReadStream(path))
    const took = Date.now() - started
    t.equal(sha256(back), sha256(data), `${path}: the bytes read back are the bytes written`)
    t.ok(took < OPS_BOUND_MS, `${path}: put + read took ${took} ms (bound ${OPS_BOUND_MS} ms)`)
    const live = slow.filter(s => !s.closedByServer).length
    // Informational: a server that drops them sooner is only better.
    t.comment(`${live} slow connections were still held open when it finished (${Date.now() - opened} ms in)`)
  }

  await t.test('a put and a read of 4 MiB complete during the attack', async t => {
    await roundTrip(t, '/under-attack')
    // Again once the slow connections have been held for a while (their headers are
    // half sent, well before any server timeout).
    while (Date.now() - opened < 8000) await new Promise(resolve => setTimeout(resolve, 200))
    await roundTrip(t, '/under-attack-later')
    const fsck = await c.client.fsck('/under-attack')
    t.ok(fsck.entries[0]?.blocks.every(b => b.replicas.some(r => r.dataserver === c.dataServers[0]!.id)), 'the attacked DataServer took part in every block\'s pipeline')
  })

  await t.test('the servers drop the slow connections themselves', async t => {
    const deadline = opened + DROP_BOUND_MS
    while (Date.now() < deadline && openNow() > 0) await new Promise(resolve => setTimeout(resolve, 250))
    const left = slow.filter(s => !s.closedByServer)
    t.equal(left.length, 0, `every slow connection was closed by its server within ${DROP_BOUND_MS} ms (${left.length} left)`)
    const times = slow.filter(s => s.closedByServer).map(s => s.closedAt).sort((a, b) => a - b)
    if (times.length > 0) t.comment(`closed between ${times[0]} and ${times[times.length - 1]} ms after opening`)
    t.ok(slow.filter(s => s.closedByServer).every(s => s.reply === '' || /^HTTP\/1\.1 408/.test(s.reply)), 'answered with 408 Request Timeout or just closed')
    t.ok(slow.filter(s => s.closedByServer).every(s => s.closedAt >= 5000), 'and not before they had a fair chance')
    // Still serving normally afterwards.
    t.equal((await c.client.ping()).ok, true, 'the NameServer answers')
    t.equal((await readAll(c.client.createReadStream('/under-attack', { start: 0, length: 10 }))).length, 10, 'reads still work')
  })
})
