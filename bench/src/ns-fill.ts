// NameServer memory load: create N empty files (POST /v1/ns/create, visible at once)
// in directories of D entries from C concurrent keep-alive HTTP clients, printing
// progress to stderr; then check the result: a random sample of the files stat as
// files, a few directories list exactly D entries, a name that was never created is
// ENOENT, and du counts every file. Runs as a child process, prints one JSON line.
// Usage: node ns-fill.js '{"address":"127.0.0.1:PORT","base":"/nsfill","files":1000000,"dirSize":1000,"concurrency":32,"verify":1000}'
import { ROOT_IDENTITY } from './http-json.js'
import { LeanJsonHttp } from './lean-http.js'

interface Job { address: string, base: string, files: number, dirSize: number, concurrency: number, verify: number }
interface Stat { type?: string }

class WrongResult extends Error {}

function fillDirName (base: string, d: number): string { return `${base}/d${String(d).padStart(5, '0')}` }
function fillFileName (base: string, i: number, dirSize: number): string {
  return `${fillDirName(base, Math.floor(i / dirSize))}/f${String(i % dirSize).padStart(5, '0')}`
}

/** A small deterministic generator, so a failing sample can be reproduced. */
function* sample (n: number, count: number): Generator<number> {
  let x = 0x9e3779b9
  for (let k = 0; k < count; k++) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    yield x % n
  }
}

async function main (): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '{}') as Job
  const http = new LeanJsonHttp(job.address, job.concurrency, ROOT_IDENTITY)
  const dirs = Math.ceil(job.files / job.dirSize)
  const out: Record<string, number | string> = {}
  const progress = (msg: string): void => { process.stderr.write(`ns-fill: ${msg}\n`) }
  try {
    await http.ok('POST', '/v1/ns/mkdir', { path: job.base, parents: true })
    for (let d = 0; d < dirs; d++) await http.ok('POST', '/v1/ns/mkdir', { path: fillDirName(job.base, d) })

    let next = 0
    let done = 0
    const t0 = process.hrtime.bigint()
    const elapsed = (): number => Number(process.hrtime.bigint() - t0) / 1e9
    let lastDone = 0
    let lastAt = 0
    const ticker = setInterval(() => {
      const now = elapsed()
      const rate = (done - lastDone) / (now - lastAt)
      lastDone = done
      lastAt = now
      const eta = rate > 0 ? ` ETA ${Math.round((job.files - done) / rate)} s` : ''
      progress(`${done.toLocaleString('en-US')} / ${job.files.toLocaleString('en-US')} files, ${Math.round(rate).toLocaleString('en-US')} creates/s now, ${Math.round(done / now).toLocaleString('en-US')}/s overall${eta}`)
    }, 10000)
    try {
      await Promise.all(Array.from({ length: job.concurrency }, async () => {
        for (;;) {
          const i = next++
          if (i >= job.files) return
          await http.ok('POST', '/v1/ns/create', { path: fillFileName(job.base, i, job.dirSize), exclusive: true })
          done++
        }
      }))
    } finally {
      clearInterval(ticker)
    }
    const seconds = elapsed()
    out.seconds = seconds
    out.createsPerSec = job.files / seconds
    progress(`${job.files.toLocaleString('en-US')} files in ${seconds.toFixed(1)} s; checking`)

    // Checks (untimed).
    for (const i of sample(job.files, job.verify)) {
      const p = fillFileName(job.base, i, job.dirSize)
      const r = await http.ok('GET', `/v1/ns/stat?path=${encodeURIComponent(p)}`) as { stat?: Stat }
      if (r.stat?.type !== 'file') throw new WrongResult(`stat of ${p} returned type ${String(r.stat?.type)}`)
    }
    const never = `${fillDirName(job.base, 0)}/never-created`
    const missing = await http.call('GET', `/v1/ns/stat?path=${encodeURIComponent(never)}`)
    if (missing.status !== 404) throw new WrongResult(`stat of ${never} returned HTTP ${missing.status}, expected 404`)
    for (const d of new Set([0, dirs - 1, ...sample(dirs, 3)])) {
      const expected = Math.min(job.dirSize, job.files - d * job.dirSize)
      const r = await http.ok('GET', `/v1/ns/list?path=${encodeURIComponent(fillDirName(job.base, d))}`) as { entries?: unknown[] }
      if ((r.entries?.length ?? -1) !== expected) throw new WrongResult(`list of ${fillDirName(job.base, d)} returned ${r.entries?.length ?? -1} entries, expected ${expected}`)
    }
    const du = await http.call('GET', `/v1/ns/du?path=${encodeURIComponent(job.base)}`, undefined, 600000)
    if (du.status !== 200) throw new Error(`du ${job.base}: HTTP ${du.status} ${JSON.stringify(du.body).slice(0, 200)}`)
    const counts = du.body as { files?: number, dirs?: number }
    if (counts.files !== job.files || counts.dirs !== dirs + 1) {
      throw new WrongResult(`du ${job.base} counts ${String(counts.files)} files and ${String(counts.dirs)} directories, expected ${job.files} and ${dirs + 1}`)
    }
    out.verified = job.verify
    process.stdout.write(JSON.stringify(out) + '\n')
  } catch (err) {
    const key = err instanceof WrongResult ? 'wrong' : 'error'
    process.stdout.write(JSON.stringify({ ...out, [key]: (err as Error).message }) + '\n')
    process.exitCode = 1
  } finally {
    http.close()
  }
}

await main()
