// Hostile and broken input straight at the servers' HTTP APIs (this test speaks HTTP
// itself because it tests the servers, not the client): path tricks in block ids,
// malformed JSON, oversized headers and bodies. Every one gets a 4xx, nothing outside a
// DataServer's directory is touched, and both servers keep serving.
import t from 'tap'
import http from 'node:http'
import { readdir } from 'node:fs/promises'
import { splitHostPort } from '../../src/common/config.js'
import { startCluster } from '../helpers/cluster.js'
import { findBlockFiles } from '../helpers/cluster-files.js'

interface Reply { status: number, body: string }

function request (address: string, method: string, path: string, opts: { headers?: Record<string, string>, body?: string | Buffer } = {}): Promise<Reply> {
  const { host, port } = splitHostPort(address)
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path, headers: opts.headers, agent: false, timeout: 10000 }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { if (body.length < 100000) body += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)))
    req.on('error', reject)
    req.end(opts.body)
  })
}

t.test('bad input to the servers', async t => {
  const c = await startCluster(t, { dataServers: 3, replication: 2 })
  const ds = c.dataServers[0]
  if (ds === undefined) throw new Error('no dataserver')
  const put = await c.cli(['put', '-', '/present'], { input: 'some bytes' })
  t.equal(put.code, 0, 'a file exists')
  const rootBefore = (await readdir(c.root)).sort()
  const blocksBefore = (await findBlockFiles(ds.dir)).map(b => b.rel).sort()

  await t.test('block ids that try to leave the storage directory', async t => {
    const attempts = [
      '/v1/blocks/..%2F..%2Fetc%2Fpasswd?gen=1',
      '/v1/blocks/../../etc/passwd?gen=1',
      '/v1/blocks/%2e%2e%2f%2e%2e%2fetc%2fpasswd?gen=1',
      '/v1/blocks/1?gen=..%2F..%2Fetc%2Fpasswd',
      '/v1/blocks/1e3?gen=1',
      '/v1/blocks/-1?gen=1',
      '/v1/blocks/99999999999999999999?gen=1',
      '/v1/blocks/1?gen=1&offset=-5',
      '/v1/blocks/id?gen=1',
    ]
    for (const path of attempts) {
      const r = await request(ds.address, 'GET', path)
      t.ok(r.status >= 400 && r.status < 500, `GET ${path}: ${r.status}`)
      t.notMatch(r.body, /root:/, 'nothing of /etc/passwd is read')
    }
    for (const path of ['/v1/blocks/..%2F..%2Fevil?gen=1', '/v1/blocks/1?gen=..%2Fevil', '/v1/blocks/1?gen=1']) {
      const r = await request(ds.address, 'PUT', path, { body: 'evil bytes', headers: { 'content-type': 'application/octet-stream' } })
      t.ok(r.status >= 400 && r.status < 500, `PUT ${path} without a valid token: ${r.status}`)
    }
    const forged = await request(ds.address, 'GET', '/v1/blocks/1?gen=1', { headers: { 'x-hiss-token': 'eyJiIjoxLCJnIjoxLCJhIjoiciIsImUiOjk5OTk5OTk5OTk5OTl9.forged' } })
    t.equal(forged.status, 403, 'a forged block token is refused')
  })

  await t.test('malformed JSON, wrong types, bad paths', async t => {
    const json = { 'content-type': 'application/json', 'x-hiss-uid': '0', 'x-hiss-gids': '0' }
    const bad = await request(c.nsAddress, 'POST', '/v1/ns/mkdir', { headers: json, body: '{"path": ' })
    t.equal(bad.status, 400, 'NameServer: malformed JSON is 400')
    t.match(JSON.parse(bad.body), { error: { code: 'BAD_REQUEST' } })
    const wrongType = await request(c.nsAddress, 'POST', '/v1/ns/mkdir', { headers: json, body: '{"path": 42}' })
    t.ok(wrongType.status >= 400 && wrongType.status < 500, `NameServer: wrong field type is 4xx (${wrongType.status})`)
    const relative = await request(c.nsAddress, 'GET', '/v1/ns/stat?path=..%2F..%2Fetc%2Fpasswd', { headers: json })
    t.ok(relative.status >= 400 && relative.status < 500, `NameServer: relative path is 4xx (${relative.status})`)
    const dotdot = await request(c.nsAddress, 'POST', '/v1/ns/mkdir', { headers: json, body: '{"path": "/a/../../b"}' })
    t.equal(dotdot.status, 400, 'NameServer: ".." components are refused')
    const huge = await request(c.nsAddress, 'POST', '/v1/ns/mkdir', { headers: json, body: '{"path": "/' + 'a'.repeat(5 * 1024 * 1024) + '"}' }).catch(() => ({ status: 413, body: '' }))
    t.ok(huge.status === 413 || huge.status === 414 || huge.status === 400, `NameServer: a 5 MiB body is refused (${huge.status})`)
    const noAuth = await request(c.nsAddress, 'POST', '/v1/ds/register', { headers: json, body: '{}' })
    t.equal(noAuth.status, 401, 'NameServer: DataServer API without cluster auth is 401')
    const dsJson = await request(ds.address, 'PUT', '/v1/blocks/1?gen=1', { headers: { 'content-type': 'application/json' }, body: '{"not json' })
    t.ok(dsJson.status >= 400 && dsJson.status < 500, `DataServer: malformed JSON body is 4xx (${dsJson.status})`)
    const dsUnknown = await request(ds.address, 'POST', '/v1/whatever', { headers: { 'content-type': 'application/json' }, body: '{' })
    t.ok(dsUnknown.status >= 400 && dsUnknown.status < 500, `DataServer: unknown endpoint is 4xx (${dsUnknown.status})`)
  })

  await t.test('oversized headers', async t => {
    for (const [name, address] of [['NameServer', c.nsAddress], ['DataServer', ds.address]] as const) {
      const r = await request(address, 'GET', '/v1/ping', { headers: { 'x-junk': 'j'.repeat(64 * 1024) } }).catch((err: Error) => ({ status: 0, body: err.message }))
      t.ok(r.status === 431 || r.status === 400, `${name}: 64 KiB of headers is refused (${r.status} ${r.body.slice(0, 80)})`)
      const many: Record<string, string> = {}
      for (let i = 0; i < 2000; i++) many[`x-h${i}`] = 'v'
      const r2 = await request(address, 'GET', '/v1/ping', { headers: many }).catch((err: Error) => ({ status: 0, body: err.message }))
      t.ok(r2.status >= 400 && r2.status < 500, `${name}: 2000 headers are refused (${r2.status})`)
    }
  })

  await t.test('both servers keep running and nothing changed', async t => {
    const ping = await c.cli(['ping'])
    t.equal(ping.code, 0, 'NameServer still answers (hissdfs ping)')
    for (const d of c.dataServers) {
      const r = await request(d.address, 'GET', '/v1/ping')
      t.equal(r.status, 200, `DataServer ${d.index} still answers`)
    }
    t.equal((await c.cli(['cat', '/present'])).stdout.toString(), 'some bytes', 'data intact')
    t.same((await c.cli(['ls', '/'])).stdout.toString(), 'present\n', 'namespace unchanged')
    t.same((await readdir(c.root)).sort(), rootBefore, 'no file appeared beside the DataServer directories')
    t.same((await findBlockFiles(ds.dir)).map(b => b.rel).sort(), blocksBefore, 'no replica appeared')
    const rep = await c.report()
    t.equal(rep.dataservers.filter(d => d.state === 'live').length, 3, 'all DataServers live')
  })
})
