// (1) sequential write of the random file with dd conv=fsync, then (2) a cold
// sequential read of it; the read is checked against the source's SHA-256 and the
// written file's copies are checked. Peak daemon RSS is sampled during both.
import { rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { formatBytes } from '../options.js'
import { describeExit, run, runOk } from '../proc.js'
import { WrongResult } from '../results.js'
import { RssPeak } from '../rss.js'
import type { BenchSystem } from '../system.js'
import { mbps, timeoutForBytes, type Ctx } from './context.js'

export function defineSeqRows (ctx: Ctx): void {
  const size = formatBytes(ctx.opts.seqBytes)
  ctx.results.defineRow({ table: 'main', id: 'seq-write', label: `(1) sequential write ${size} (dd bs=1M conv=fsync, random data)`, unit: 'MB/s', better: 'higher' })
  ctx.results.defineRow({ table: 'main', id: 'seq-read', label: `(2) sequential read ${size}, caches dropped`, unit: 'MB/s', better: 'higher' })
}

function seqFile (sys: BenchSystem, rep: number): string { return join(sys.dir, `seq-${rep}.bin`) }

async function recordPeak (ctx: Ctx, sys: BenchSystem, phase: string, rep: number, peak: Record<string, number>): Promise<void> {
  for (const [role, kib] of Object.entries(peak)) ctx.results.rss.push({ system: sys.name, phase, role, rep, kib })
}

export async function seqWrite (ctx: Ctx, sys: BenchSystem, rep: number): Promise<void> {
  const { inputs } = ctx
  const file = seqFile(sys, rep)
  await ctx.results.measure('main', ['seq-write'], sys.name, rep, async (set) => {
    // The source comes from the page cache: read it once untimed.
    await runOk('dd', [`if=${inputs.randomFile}`, 'of=/dev/null', 'bs=1M', 'status=none'], { timeoutMs: 600000 })
    await ctx.caches.writeBack()
    const peak = new RssPeak(sys.daemons())
    peak.start()
    const r = await run('dd', [`if=${inputs.randomFile}`, `of=${file}`, 'bs=1M', 'conv=fsync', 'status=none'], { timeoutMs: timeoutForBytes(inputs.randomBytes) })
    await recordPeak(ctx, sys, 'seq-write', rep, await peak.stop())
    if (r.timedOut || r.code !== 0) throw new Error(`dd write: ${r.timedOut ? 'timed out' : describeExit(r)}`)
    const size = (await stat(file)).size
    if (size !== inputs.randomBytes) throw new WrongResult(`written file has ${size} bytes, expected ${inputs.randomBytes}`)
    const problem = await sys.checkReplicas(file)
    if (problem !== undefined) throw new WrongResult(`copies: ${problem}`)
    set('seq-write', mbps(inputs.randomBytes, r.seconds))
  })
}

export async function seqRead (ctx: Ctx, sys: BenchSystem, rep: number): Promise<void> {
  const { inputs } = ctx
  const file = seqFile(sys, rep)
  await ctx.results.measure('main', ['seq-read'], sys.name, rep, async (set) => {
    try {
      await stat(file)
    } catch {
      throw new Error('no file to read (the write failed)')
    }
    await ctx.caches.drop()
    const peak = new RssPeak(sys.daemons())
    peak.start()
    const r = await run('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M', 'status=none'], { timeoutMs: timeoutForBytes(inputs.randomBytes) })
    await recordPeak(ctx, sys, 'seq-read', rep, await peak.stop())
    if (r.timedOut || r.code !== 0) throw new Error(`dd read: ${r.timedOut ? 'timed out' : describeExit(r)}`)
    // Verified untimed: the bytes must be the source's.
    const sum = await runOk('sha256sum', [file], { timeoutMs: timeoutForBytes(inputs.randomBytes) })
    const got = sum.stdout.split(' ')[0] ?? ''
    if (got !== inputs.randomSha256) throw new WrongResult(`checksum mismatch: read ${got.slice(0, 16)}..., wrote ${inputs.randomSha256.slice(0, 16)}...`)
    set('seq-read', mbps(inputs.randomBytes, r.seconds))
  })
  await rm(file, { force: true }).catch(() => undefined)
}
