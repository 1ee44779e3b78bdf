// NameServer load generator: create, stat, list, rename and delete over loopback HTTP
// (the wire protocol of src/common/protocol.ts) from C concurrent clients, each
// operation type timed as its own phase. Runs as a child process, prints JSON.
// Usage: node ns-load.js '{"address":"127.0.0.1:PORT","base":"/nsload-1","ops":2000,"concurrency":8,"filesPerDir":100}'
import { ROOT_IDENTITY } from './http-json.js'
import { LeanJsonHttp } from './lean-http.js'

// filesPerDir: the files are spread over ceil(ops / filesPerDir) directories, which the
// list phase lists (so a listing's size does not grow with ops).
interface Job { address: string, base: string, ops: number, concurrency: number, filesPerDir: number }
interface Stat { type?: string }


class WrongResult extends Error {}

async function phase (concurrency: number, count: number, op: (i: number) => Promise<void>): Promise<number> {
  let next = 0
  const t0 = process.hrtime.bigint()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (;;) {
      const i = next++
      if (i >= count) return
      await op(i)
    }
  }))
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  return count / seconds
}

async function main (): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '{}') as Job
  const http = new LeanJsonHttp(job.address, job.concurrency, ROOT_IDENTITY)
  const n = job.ops
  const dirs = Math.max(1, Math.ceil(n / job.filesPerDir))
  const dirOf = (i: number): string => `${job.base}/d${i % dirs}`
  const perDir = (d: number): number => Math.floor(n / dirs) + (d < n % dirs ? 1 : 0)
  const result: Record<string, number> = {}
  try {
    await http.ok('POST', '/v1/ns/mkdir', { path: job.base, parents: true })
    await phase(Math.min(job.concurrency, dirs), dirs, async (d) => { await http.ok('POST', '/v1/ns/mkdir', { path: `${job.base}/d${d}` }) })
    // Warm-up, not reported: this process starts cold (JIT, one connection per client
    // opened on first use), and a phase of a few thousand operations lasts well under a
    // second, so without it the first phase measured mostly the generator's start.
    const warm = `${job.base}/warm`
    await http.ok('POST', '/v1/ns/mkdir', { path: warm })
    const warmOps = Math.min(n, 1000)
    await phase(job.concurrency, warmOps, async (i) => { await http.ok('POST', '/v1/ns/create', { path: `${warm}/f${i}` }) })
    await phase(job.concurrency, warmOps, async (i) => { await http.ok('GET', `/v1/ns/stat?path=${encodeURIComponent(`${warm}/f${i}`)}`) })
    await http.ok('POST', '/v1/ns/delete', { path: warm, recursive: true })

    result.create = await phase(job.concurrency, n, async (i) => {
      await http.ok('POST', '/v1/ns/create', { path: `${dirOf(i)}/f${i}` })
    })
    result.stat = await phase(job.concurrency, n, async (i) => {
      const r = await http.ok('GET', `/v1/ns/stat?path=${encodeURIComponent(`${dirOf(i)}/f${i}`)}`) as { stat?: Stat }
      if (r.stat?.type !== 'file') throw new WrongResult(`stat of ${dirOf(i)}/f${i} returned type ${String(r.stat?.type)}`)
    })
    const lists = Math.max(job.concurrency, Math.floor(n / 10))
    result.list = await phase(job.concurrency, lists, async (i) => {
      const d = i % dirs
      const r = await http.ok('GET', `/v1/ns/list?path=${encodeURIComponent(`${job.base}/d${d}`)}`) as { entries?: unknown[] }
      const got = r.entries?.length ?? -1
      if (got !== perDir(d)) throw new WrongResult(`list of ${job.base}/d${d} returned ${got} entries, expected ${perDir(d)}`)
    })
    result.rename = await phase(job.concurrency, n, async (i) => {
      await http.ok('POST', '/v1/ns/rename', { src: `${dirOf(i)}/f${i}`, dst: `${dirOf(i)}/r${i}` })
    })
    result.delete = await phase(job.concurrency, n, async (i) => {
      await http.ok('POST', '/v1/ns/delete', { path: `${dirOf(i)}/r${i}` })
    })
    await phase(Math.min(job.concurrency, dirs), dirs, async (d) => {
      const r = await http.ok('GET', `/v1/ns/list?path=${encodeURIComponent(`${job.base}/d${d}`)}`) as { entries?: unknown[] }
      if ((r.entries?.length ?? -1) !== 0) throw new WrongResult(`${job.base}/d${d} still has ${r.entries?.length ?? -1} entries after deleting every file`)
    })
    await http.ok('POST', '/v1/ns/delete', { path: job.base, recursive: true })
    process.stdout.write(JSON.stringify({ opsPerSec: result }) + '\n')
  } catch (err) {
    const key = err instanceof WrongResult ? 'wrong' : 'error'
    process.stdout.write(JSON.stringify({ [key]: (err as Error).message, opsPerSec: result }) + '\n')
    process.exitCode = 1
  } finally {
    http.close()
  }
}

await main()
