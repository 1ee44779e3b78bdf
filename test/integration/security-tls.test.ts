// TLS end to end with real processes: a NameServer and three DataServers started by the
// CLI with a certificate for 127.0.0.1 signed by a test CA (not self-signed), the CLI
// and the client library trusting that CA. Data crosses every hop over verified TLS
// (client -> DataServer, the DataServer pipeline, DataServer -> NameServer); a client
// that does not trust the CA, or speaks plain HTTP, gets a clear error and no data; a
// DataServer that cannot verify the NameServer never joins.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { buffer as readAll } from 'node:stream/consumers'
import { parseConfig, type HissConfigInput } from '../../src/common/config.js'
import { createLogger } from '../../src/common/log.js'
import { DataServer } from '../../src/dataserver/dataserver.js'
import { createClient } from '../../src/client/index.js'
import { makeCerts, opensslMissing } from '../helpers/certs.js'
import { TEST_SECRET, startCluster } from '../helpers/cluster.js'
import { findBlockFiles, sha256, tempDir } from '../helpers/cluster-files.js'
import { rawExchange } from '../helpers/fuzz.js'

const BLOCK = 256 * 1024

t.test('a whole cluster over TLS', { skip: opensslMissing() ?? false }, async t => {
  const certDir = await tempDir(t, 'hiss-sec-tls-')
  const good = makeCerts(certDir, 'cluster')
  const other = makeCerts(certDir, 'other')
  const tls = { 'tls.cert': good.cert, 'tls.key': good.key, 'tls.ca': good.ca }
  const c = await startCluster(t, { dataServers: 3, replication: 3, blockSize: BLOCK, extra: tls, logLevel: 'warn' })
  // startCluster already ran `hissdfs report --json` over TLS to see all three live.

  const data = randomBytes(5 * BLOCK + 12345)
  const local = join(certDir, 'data.bin')
  await writeFile(local, data)

  await t.test('put and read back through the CLI and the client library', async t => {
    t.equal((await c.cli(['mkdir', '/tls'])).code, 0, 'hissdfs mkdir over TLS')
    const put = await c.cli(['put', local, '/tls/data.bin'], { timeoutMs: 60000 })
    t.equal(put.code, 0, `hissdfs put over TLS ${put.stderr}`)
    const cat = await c.cli(['cat', '/tls/data.bin'], { timeoutMs: 60000 })
    t.equal(cat.code, 0, `hissdfs cat over TLS ${cat.stderr}`)
    t.equal(sha256(cat.stdout), sha256(data), 'the CLI reads back the same bytes')

    const client = createClient(parseConfig({ 'nameserver.address': c.nsAddress, 'tls.ca': good.ca, 'client.timeout.ms': 5000, 'client.retry.ms': 8000 }), { log: createLogger('client', 'error', () => {}) })
    t.teardown(() => client.close())
    const more = randomBytes(2 * BLOCK + 7)
    await client.put('/tls/lib.bin', Readable.from([more]))
    t.equal(sha256(await readAll(client.createReadStream('/tls/lib.bin'))), sha256(more), 'the library reads back what it wrote')
    const range = await readAll(client.createReadStream('/tls/data.bin', { start: BLOCK - 100, length: BLOCK + 200 }))
    t.ok(range.equals(data.subarray(BLOCK - 100, 2 * BLOCK + 100)), 'a ranged read across blocks')

    // Every block on all three DataServers: the pipeline forwarded over TLS too.
    const fsck = await c.fsck('/')
    t.ok(fsck.healthy, 'fsck: healthy')
    t.equal(fsck.blocks, 6 + 3, 'nine blocks')
    for (const e of fsck.entries) {
      for (const b of e.blocks) t.equal(b.replicas.filter(r => r.state === 'live').length, 3, `${e.path} block ${b.id}: three live replicas`)
    }
    for (const d of c.dataServers) t.equal((await findBlockFiles(d.dir)).length, 9, `DataServer ${d.index} stores every block`)
  })

  await t.test('clients that do not trust the CA get a clear error and no data', async t => {
    const quiet = createLogger('client', 'error', () => {})
    const base: Partial<HissConfigInput> = { 'nameserver.address': c.nsAddress, 'client.timeout.ms': 3000, 'client.retry.ms': 1000 }
    const cases: Array<[string, Partial<HissConfigInput>, string[]]> = [
      ['the server certificate but not the CA', { 'tls.cert': good.cert }, ['EIO']],
      ['another CA', { 'tls.ca': other.ca }, ['EIO']],
      // A plain-HTTP client against a TLS port: the connection is reset, never answered.
      ['no TLS at all', {}, ['EIO', 'EAGAIN', 'ETIMEDOUT']],
    ]
    for (const [what, extra, codes] of cases) {
      const client = createClient(parseConfig({ ...base, ...extra }), { log: quiet })
      t.teardown(() => client.close())
      const started = Date.now()
      let err: { code?: string, message?: string } | undefined
      try {
        await client.stat('/tls/data.bin')
      } catch (e) {
        err = e as { code?: string, message?: string }
      }
      t.ok(err !== undefined && codes.includes(err.code ?? ''), `${what}: refused with ${err?.code ?? 'nothing'} (${err?.message ?? ''})`)
      t.ok(Date.now() - started < 15000, `${what}: refused within bounded time (${Date.now() - started} ms)`)
    }
    // Through the CLI: one line, exit 1.
    const cfg = join(certDir, 'untrusting.json')
    await writeFile(cfg, JSON.stringify({ ...base, 'tls.ca': other.ca }))
    const cat = await c.cli(['cat', '/tls/data.bin', '--config', cfg], { noConfig: true, timeoutMs: 30000 })
    t.equal(cat.code, 1, 'hissdfs cat with another CA exits 1')
    t.equal(cat.stdout.length, 0, 'and prints no data')
    t.match(cat.stderr, /certificate/i, `says the certificate is the problem: ${cat.stderr.trim()}`)
  })

  await t.test('the servers do not speak plain HTTP', async t => {
    const plain = Buffer.from('GET /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n')
    t.equal(await rawExchange(c.nsAddress, plain, 10000), 0, 'NameServer: no HTTP reply on its TLS port')
    for (const d of c.dataServers) t.equal(await rawExchange(d.address, plain, 10000), 0, `DataServer ${d.index}: no HTTP reply on its TLS port`)
  })

  await t.test('a DataServer that cannot verify the NameServer never joins', async t => {
    const dir = await tempDir(t, 'hiss-sec-tls-ds-')
    const lines: string[] = []
    const ds = new DataServer(parseConfig({
      'nameserver.address': c.nsAddress,
      'dataserver.address': '127.0.0.1:0',
      'dataserver.root.dir': dir,
      'cluster.secret': TEST_SECRET,
      'heartbeat.interval.ms': 200,
      'tls.cert': other.cert,
      'tls.key': other.key,
      'tls.ca': other.ca,
    }), { log: createLogger('ds-untrusting', 'debug', l => { lines.push(l) }) })
    t.teardown(() => ds.close({ unregister: false }))
    await ds.start()
    // Several registration attempts go by (backoff starts small) ...
    const deadline = Date.now() + 3000
    while (Date.now() < deadline && !lines.some(l => /certificate/i.test(l))) await new Promise(resolve => setTimeout(resolve, 100))
    t.ok(lines.some(l => /certificate/i.test(l)), 'it logs that the NameServer\'s certificate does not verify')
    t.notOk(ds.registered, 'not registered')
    const rep = await c.report()
    t.notOk(rep.dataservers.some(d => d.id === ds.id), 'absent from the report')
  })
})
