// (5) N mkdir, then 2N stat (two passes over the new directories, caches dropped first).
import { join } from 'node:path'
import { run } from '../proc.js'
import { WrongResult } from '../results.js'
import type { BenchSystem } from '../system.js'
import { runScript, type Ctx } from './context.js'

export function defineMetaRows (ctx: Ctx): void {
  ctx.results.defineRow({ table: 'main', id: 'mkdir', label: `(5) ${ctx.opts.mkdirs.toLocaleString('en-US')} mkdir`, unit: 'ops/s', better: 'higher' })
  ctx.results.defineRow({ table: 'main', id: 'stat', label: `(5) ${ctx.opts.stats.toLocaleString('en-US')} stat of those directories, caches dropped`, unit: 'ops/s', better: 'higher' })
}

interface Timing { seconds: number }

export async function metadata (ctx: Ctx, sys: BenchSystem, rep: number): Promise<void> {
  const dir = join(sys.dir, `meta-${rep}`)
  await ctx.results.measure('main', ['mkdir', 'stat'], sys.name, rep, async (set) => {
    await ctx.caches.writeBack()
    const m = await runScript<Timing>(ctx, 'fs-worker.js', { op: 'mkdirs', dir, count: ctx.opts.mkdirs }, 900000)
    if (m.error !== undefined) throw new Error(`mkdir: ${m.error}`)
    set('mkdir', ctx.opts.mkdirs / m.seconds)
    await ctx.caches.drop()
    const s = await runScript<Timing>(ctx, 'fs-worker.js', { op: 'stats', dir, count: ctx.opts.mkdirs, total: ctx.opts.stats }, 900000)
    if (s.error !== undefined) throw new Error(`stat: ${s.error}`)
    if (s.wrong !== undefined) throw new WrongResult(s.wrong)
    set('stat', ctx.opts.stats / s.seconds)
  })
  await run('rm', ['-rf', dir], { timeoutMs: 900000 })
}
