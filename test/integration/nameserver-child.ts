// A NameServer in its own process, for the kill -9 durability test: started on the
// directory given as argv[2], it prints "listening <host:port>" and serves until killed.
import { parseConfig } from '../../src/common/config.js'
import { NameServer } from '../../src/nameserver/nameserver.js'

const dir = process.argv[2]
if (dir === undefined) throw new Error('usage: nameserver-child <root dir>')
const ns = new NameServer(parseConfig({
  'nameserver.address': '127.0.0.1:0',
  'nameserver.root.dir': dir,
  'nameserver.sync': 'full',
  'security.insecure': true,
  'log.level': 'error',
}))
const addr = await ns.start()
process.stdout.write(`listening ${addr}\n`)
