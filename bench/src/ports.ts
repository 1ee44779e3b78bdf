// Free TCP ports on 127.0.0.1, for daemons that need a fixed port in their config.
// All servers stay open until every port is chosen, so the ports are distinct.
import { createServer, type Server } from 'node:net'

export async function freePorts (n: number): Promise<number[]> {
  const servers: Server[] = []
  const ports: number[] = []
  try {
    for (let i = 0; i < n; i++) {
      const s = createServer()
      servers.push(s)
      await new Promise<void>((resolve, reject) => { s.once('error', reject); s.listen(0, '127.0.0.1', resolve) })
      const addr = s.address()
      if (addr === null || typeof addr === 'string') throw new Error('no port')
      ports.push(addr.port)
    }
  } finally {
    await Promise.all(servers.map(async (s) => { await new Promise<void>((resolve) => s.close(() => { resolve() })) }))
  }
  return ports
}
