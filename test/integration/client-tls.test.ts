// With TLS configured, every call of the client (metadata and block data) goes over
// https and verifies the servers against the configured CA.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { buffer as readAll } from 'node:stream/consumers'
import { parseConfig } from '../../src/common/config.js'
import { createClient } from '../../src/client/index.js'
import { startCluster } from '../helpers/inprocess-cluster.js'

function makeCert (dir: string): { cert: string, key: string } | undefined {
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore', timeout: 30000 })
    return { cert, key }
  } catch {
    return undefined
  }
}

const dir = mkdtempSync(join(tmpdir(), 'hiss-tls-'))
t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
const pair = makeCert(dir)

t.test('put and read over https', { skip: pair === undefined ? 'openssl is not available' : false }, async t => {
  const { cert, key } = pair!
  const c = await startCluster(t, { dataServers: 2, replication: 2, blockSize: 64 * 1024, config: { 'tls.cert': cert, 'tls.key': key, 'tls.ca': cert } })
  const data = Buffer.alloc(200_000, 'hiss')
  await c.client.put('/tls', Readable.from([data]))
  const back = await readAll(c.client.createReadStream('/tls', { start: 60_000, length: 100_000 }))
  t.ok(back.equals(data.subarray(60_000, 160_000)), 'bytes over https')

  // Without the CA the server's certificate is refused (an error, not a hang).
  const plain = createClient(parseConfig({ 'nameserver.address': c.nameServerAddress, 'tls.cert': cert, 'client.retry.ms': 200 }))
  t.teardown(() => plain.close())
  await t.rejects(plain.stat('/tls'), { code: 'EIO' })
})
