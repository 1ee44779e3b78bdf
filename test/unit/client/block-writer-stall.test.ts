// An upload whose first DataServer stops taking bytes without closing the connection (a
// hung process: the kernel accepts the connection, nobody reads) fails with ETIMEDOUT
// after client.timeout.ms without progress, instead of waiting forever; an upload that
// only waits for its own slow source is never cut for that.
import t from 'tap'
import net from 'node:net'
import { Readable } from 'node:stream'
import { parseConfig } from '../../../src/common/config.js'
import { HttpClient } from '../../../src/client/http.js'
import { sendBlock } from '../../../src/client/block-writer.js'
import { fakeServer, json } from '../../helpers/fake-http.js'

const TIMEOUT_MS = 500

function client (t: { teardown: (fn: () => void) => void }): HttpClient {
  const http = new HttpClient(parseConfig({ 'nameserver.address': '127.0.0.1:1', 'client.timeout.ms': TIMEOUT_MS }))
  t.teardown(() => { http.close() })
  return http
}

/** An endless body of 1 MiB chunks (stops when destroyed). */
function endless (): Readable {
  const chunk = Buffer.alloc(1024 * 1024, 7)
  return new Readable({ read () { this.push(chunk) } })
}

t.test('a DataServer that takes no bytes: the upload fails after client.timeout.ms', { timeout: 30_000 }, async t => {
  const sockets: net.Socket[] = []
  const server = net.createServer(s => { sockets.push(s); s.pause() })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close() })
  const address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`
  const http = client(t)
  const alloc = { block: { id: 1, gen: 1 }, targets: [{ id: 'hung', address }], token: 'tok' }
  const t0 = Date.now()
  await t.rejects(sendBlock(http, alloc, endless()), { code: 'ETIMEDOUT' }, 'fails with ETIMEDOUT')
  const ms = Date.now() - t0
  t.ok(ms >= TIMEOUT_MS && ms < TIMEOUT_MS * 10, `after about client.timeout.ms (${ms} ms)`)
})

t.test('an upload waiting for its own slow source is not cut', async t => {
  const ds = await fakeServer(t, (req, res) => {
    json(res, 200, { id: 2, gen: 1, length: req.body.length, stored: ['ds'], failed: [] })
  })
  const http = client(t)
  const alloc = { block: { id: 2, gen: 1 }, targets: [{ id: 'ds', address: ds.address }], token: 'tok' }
  // Three pieces with pauses of 3 x client.timeout.ms between them.
  const body = Readable.from((async function * () {
    for (let i = 0; i < 3; i++) {
      yield Buffer.alloc(1000, i)
      await new Promise(resolve => setTimeout(resolve, 3 * TIMEOUT_MS))
    }
  })())
  const reply = await sendBlock(http, alloc, body)
  t.equal(reply.length, 3000, 'the whole slow body went through')
})
