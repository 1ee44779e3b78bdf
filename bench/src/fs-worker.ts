// A child process that runs one tight loop of file-system calls and prints its timing
// as JSON: small-file create/read, mkdir, stat. It runs apart from the harness so that
// a hung mount can be killed by timeout without hanging the harness.
// Usage: node fs-worker.js '{"op":"create","dir":"...","count":2000,"size":4096,"seed":"x"}'
import { createHash } from 'node:crypto'
import { closeSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs'
import { join } from 'node:path'

interface Job { op: 'create' | 'read' | 'mkdirs' | 'stats', dir: string, count: number, size?: number, seed?: string, total?: number }

/** Random-looking (not sparse-friendly) content for small file i, reproducible from the seed. */
function smallFileContent (seed: string, i: number, size: number): Buffer {
  const out = Buffer.alloc(size)
  let off = 0
  let block = 0
  while (off < size) {
    const h = createHash('sha256').update(`${seed}:${i}:${block++}`).digest()
    off += h.copy(out, off)
  }
  out.write(`file ${i}\n`, 0)
  return out
}

function timed (fn: () => void): number {
  const t0 = process.hrtime.bigint()
  fn()
  return Number(process.hrtime.bigint() - t0) / 1e9
}

function main (): void {
  const job = JSON.parse(process.argv[2] ?? '{}') as Job
  const size = job.size ?? 4096
  const seed = job.seed ?? 'seed'
  let seconds = 0
  let wrong: string | undefined
  switch (job.op) {
    case 'create': {
      mkdirSync(job.dir, { recursive: true })
      const contents = Array.from({ length: job.count }, (_v, i) => smallFileContent(seed, i, size))
      seconds = timed(() => {
        for (let i = 0; i < job.count; i++) {
          const fd = openSync(join(job.dir, `f${i}`), 'w')
          const buf = contents[i] as Buffer
          let done = 0
          while (done < buf.length) done += writeSync(fd, buf, done)
          closeSync(fd)
        }
      })
      break
    }
    case 'read': {
      const bad: number[] = []
      seconds = timed(() => {
        for (let i = 0; i < job.count; i++) {
          const got = readFileSync(join(job.dir, `f${i}`))
          if (!got.equals(smallFileContent(seed, i, size))) bad.push(i)
        }
      })
      if (bad.length > 0) wrong = `${bad.length} of ${job.count} small files read back different (first: f${bad[0] ?? -1})`
      break
    }
    case 'mkdirs': {
      mkdirSync(job.dir, { recursive: true })
      seconds = timed(() => {
        for (let i = 0; i < job.count; i++) mkdirSync(join(job.dir, `d${i}`))
      })
      break
    }
    case 'stats': {
      const total = job.total ?? job.count
      let notDirs = 0
      seconds = timed(() => {
        for (let i = 0; i < total; i++) {
          if (!statSync(join(job.dir, `d${i % job.count}`)).isDirectory()) notDirs++
        }
      })
      if (notDirs > 0) wrong = `${notDirs} of ${total} stat calls did not see a directory`
      break
    }
    default:
      throw new Error(`unknown op ${String((job as { op: unknown }).op)}`)
  }
  process.stdout.write(JSON.stringify({ seconds, wrong }) + '\n')
}

try {
  main()
} catch (err) {
  const e = err as NodeJS.ErrnoException
  process.stdout.write(JSON.stringify({ error: `${e.code ?? ''} ${e.message}`.trim() }) + '\n')
  process.exitCode = 1
}
