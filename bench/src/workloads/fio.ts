// (6) fio 4 KiB random read and random write (O_DIRECT, one job, queue depth 1), and
// random write with an fsync after every write (the only row that measures a round
// trip to storage on systems with a client write cache).
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { formatBytes } from '../options.js'
import { describeExit, lastLines, run, runOk } from '../proc.js'
import type { BenchSystem } from '../system.js'
import type { Ctx } from './context.js'

const ROWS = ['fio-randread', 'fio-randwrite', 'fio-randwrite-fsync']

export function defineFioRows (ctx: Ctx): void {
  const f = formatBytes(ctx.opts.fioFileBytes)
  ctx.results.defineRow({ table: 'main', id: 'fio-randread', label: `(6) fio randread 4 KiB, O_DIRECT, QD1, ${f} file, ${ctx.opts.fioSeconds} s, caches dropped`, unit: 'IOPS', better: 'higher' })
  ctx.results.defineRow({ table: 'main', id: 'fio-randwrite', label: `(6) fio randwrite 4 KiB, O_DIRECT, QD1, ${ctx.opts.fioSeconds} s`, unit: 'IOPS', better: 'higher' })
  ctx.results.defineRow({ table: 'main', id: 'fio-randwrite-fsync', label: `(6) fio randwrite 4 KiB, O_DIRECT + fsync after each write, ${ctx.opts.fioFsyncSeconds} s`, unit: 'IOPS', better: 'higher' })
}

interface FioJson { jobs?: Array<{ error?: number, read?: { iops?: number }, write?: { iops?: number } }> }

async function fio (name: string, args: string[], seconds: number): Promise<{ read: number, write: number }> {
  const r = await run('fio', [`--name=${name}`, ...args, '--output-format=json'], { timeoutMs: (seconds + 300) * 1000 })
  if (r.timedOut) throw new Error(`fio ${name}: timed out`)
  const start = r.stdout.indexOf('{')
  let parsed: FioJson | undefined
  try { parsed = JSON.parse(r.stdout.slice(start)) as FioJson } catch { parsed = undefined }
  const job = parsed?.jobs?.[0]
  if (r.code !== 0 || job === undefined || (job.error ?? 0) !== 0) {
    throw new Error(`fio ${name}: ${r.code !== 0 ? describeExit(r) : `error ${String(job?.error)}: ${lastLines(r.stderr, 2)}`}`)
  }
  return { read: job.read?.iops ?? 0, write: job.write?.iops ?? 0 }
}

export async function fioRandom (ctx: Ctx, sys: BenchSystem, rep: number): Promise<void> {
  const dir = join(sys.dir, `fio-${rep}`)
  const file = join(dir, 'fio.dat')
  const common = [`--filename=${file}`, '--bs=4k', `--size=${ctx.opts.fioFileBytes}`, '--ioengine=psync', '--iodepth=1', '--numjobs=1', '--direct=1', '--time_based']
  await ctx.results.measure('main', ROWS, sys.name, rep, async (set) => {
    await mkdir(dir, { recursive: true })
    // Lay the file out sequentially (untimed; fio's buffers hold random data).
    await runOk('fio', ['--name=layout', `--filename=${file}`, '--rw=write', '--bs=1M', `--size=${ctx.opts.fioFileBytes}`, '--ioengine=psync', '--end_fsync=1'], { timeoutMs: 1800000 })
    await ctx.caches.drop()
    const rr = await fio('randread', [...common, '--rw=randread', `--runtime=${ctx.opts.fioSeconds}`], ctx.opts.fioSeconds)
    set('fio-randread', rr.read)
    const rw = await fio('randwrite', [...common, '--rw=randwrite', `--runtime=${ctx.opts.fioSeconds}`], ctx.opts.fioSeconds)
    set('fio-randwrite', rw.write)
    const rws = await fio('randwrite-fsync', [...common, '--rw=randwrite', '--fsync=1', `--runtime=${ctx.opts.fioFsyncSeconds}`], ctx.opts.fioFsyncSeconds)
    set('fio-randwrite-fsync', rws.write)
  })
  await run('rm', ['-rf', dir], { timeoutMs: 900000 })
}
