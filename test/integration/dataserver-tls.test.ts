// TLS: DataServers with tls.cert/tls.key serve HTTPS, and forward down the pipeline
// over HTTPS verified against tls.ca. A hop whose certificate does not verify counts as
// failed. Certificates are made with the openssl CLI; skipped when it is missing.
import t from 'tap'
import https from 'node:https'
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { bytes, deadAddress, startDataServer, token } from '../unit/dataserver/helpers.js'

function haveOpenssl (): boolean {
  try { execFileSync('openssl', ['version'], { stdio: 'pipe' }); return true } catch { return false }
}

/** A CA and a certificate for 127.0.0.1 signed by it. */
function makeCerts (dir: string, name: string): { ca: string, cert: string, key: string } {
  const p = (f: string): string => join(dir, `${name}-${f}`)
  const run = (args: string[]): void => { execFileSync('openssl', args, { stdio: 'pipe' }) }
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '1', '-subj', `/CN=${name}-test-ca`])
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', p('key.pem'), '-out', p('csr.pem'), '-subj', '/CN=127.0.0.1'])
  writeFileSync(p('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n')
  run(['x509', '-req', '-in', p('csr.pem'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('cert.pem'), '-days', '1', '-extfile', p('ext.cnf')])
  return { ca: p('ca.pem'), cert: p('cert.pem'), key: p('key.pem') }
}

function httpsRequest (addr: string, ca: string, o: { method: string, path: string, headers?: Record<string, string>, body?: Buffer }): Promise<{ status: number, body: Buffer }> {
  const i = addr.lastIndexOf(':')
  return new Promise((resolve, reject) => {
    const req = https.request({ host: addr.slice(0, i), port: Number(addr.slice(i + 1)), method: o.method, path: o.path, headers: o.headers, ca: readFileSync(ca), agent: false }, res => {
      const parts: Buffer[] = []
      res.on('data', (c: Buffer) => parts.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }))
    })
    req.on('error', reject)
    req.setTimeout(10000, () => req.destroy(new Error('timed out')))
    req.end(o.body)
  })
}

const skip = haveOpenssl() ? false : 'openssl CLI not installed'

t.test('an HTTPS pipeline', { skip }, async t => {
  const dir = t.testdir()
  const good = makeCerts(dir, 'good')
  const other = makeCerts(dir, 'other')
  const ns = await deadAddress()
  const tls = (c: { ca: string, cert: string, key: string }) => ({ 'tls.cert': c.cert, 'tls.key': c.key, 'tls.ca': c.ca })
  const a = await startDataServer(t, join(dir, 'a'), ns, tls(good))
  const b = await startDataServer(t, join(dir, 'b'), ns, tls(good))
  // c's certificate is signed by a CA that a and b do not trust.
  const c = await startDataServer(t, join(dir, 'c'), ns, tls(other))

  const data = bytes(5000, 21)
  const put = await httpsRequest(a.addr, good.ca, {
    method: 'PUT',
    path: '/v1/blocks/1?gen=1',
    headers: { 'x-hiss-token': token(1, 1, 'w'), 'x-hiss-pipeline': `${b.addr},${c.addr}`, 'x-hiss-pipeline-ids': `${b.ds.id},${c.ds.id}` },
    body: data,
  })
  t.equal(put.status, 200, put.body.toString())
  const reply = JSON.parse(put.body.toString()) as { stored: string[], failed: string[] }
  t.same(reply.stored, [a.ds.id, b.ds.id], 'forwarded over verified HTTPS')
  t.same(reply.failed, [c.ds.id], 'an untrusted certificate fails the hop')
  const got = await httpsRequest(b.addr, good.ca, { method: 'GET', path: '/v1/blocks/1?gen=1', headers: { 'x-hiss-token': token(1, 1, 'r') } })
  t.equal(got.status, 200)
  t.ok(got.body.equals(data))
  await t.rejects(httpsRequest(c.addr, good.ca, { method: 'GET', path: '/v1/ping' }), 'clients verify the server too')
})
