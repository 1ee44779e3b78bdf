// (3) N small files: create+write+close from one process, a cold `ls -l`, read every
// file back (each checked), `rm -r`.
import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { formatBytes } from '../options.js'
import { describeExit, run } from '../proc.js'
import { WrongResult } from '../results.js'
import type { BenchSystem } from '../system.js'
import { runScript, type Ctx } from './context.js'

const ROWS = ['small-create', 'small-ls', 'small-read', 'small-rm']

export function defineSmallRows (ctx: Ctx): void {
  const n = ctx.opts.smallFiles.toLocaleString('en-US')
  const size = formatBytes(ctx.opts.smallFileBytes)
  ctx.results.defineRow({ table: 'main', id: 'small-create', label: `(3) ${n} × ${size} files: create+write+close`, unit: 'files/s', better: 'higher' })
  ctx.results.defineRow({ table: 'main', id: 'small-ls', label: `(3) \`ls -l\` of the ${n} files, caches dropped`, unit: 's', better: 'lower' })
  ctx.results.defineRow({ table: 'main', id: 'small-read', label: `(3) read the ${n} files back (each checked)`, unit: 'files/s', better: 'higher' })
  ctx.results.defineRow({ table: 'main', id: 'small-rm', label: `(3) \`rm -r\` of the ${n} files`, unit: 's', better: 'lower' })
}

interface Timing { seconds: number }

export async function smallFiles (ctx: Ctx, sys: BenchSystem, rep: number): Promise<void> {
  const n = ctx.opts.smallFiles
  const dir = join(sys.dir, `small-${rep}`)
  const job = { dir, count: n, size: ctx.opts.smallFileBytes, seed: `rep${rep}-${sys.name}` }
  await ctx.results.measure('main', ROWS, sys.name, rep, async (set) => {
    await ctx.caches.writeBack()
    const created = await runScript<Timing>(ctx, 'fs-worker.js', { ...job, op: 'create' }, 900000)
    if (created.error !== undefined) throw new Error(`create: ${created.error}`)
    set('small-create', n / created.seconds)

    await ctx.caches.drop()
    const ls = await run('ls', ['-l', dir], { timeoutMs: 600000 })
    if (ls.timedOut || ls.code !== 0) throw new Error(`ls -l: ${ls.timedOut ? 'timed out' : describeExit(ls)}`)
    const lines = ls.stdout.trim().split('\n').filter((l) => l.startsWith('-'))
    if (lines.length !== n) throw new WrongResult(`ls -l listed ${lines.length} files, expected ${n}`)
    const wrongSize = lines.filter((l) => (l.split(/\s+/)[4] ?? '') !== String(ctx.opts.smallFileBytes))
    if (wrongSize.length > 0) throw new WrongResult(`ls -l shows ${wrongSize.length} files with a size other than ${ctx.opts.smallFileBytes}`)
    set('small-ls', ls.seconds)

    const read = await runScript<Timing>(ctx, 'fs-worker.js', { ...job, op: 'read' }, 900000)
    if (read.error !== undefined) throw new Error(`read: ${read.error}`)
    if (read.wrong !== undefined) throw new WrongResult(read.wrong)
    set('small-read', n / read.seconds)

    const rmr = await run('rm', ['-r', dir], { timeoutMs: 600000 })
    if (rmr.timedOut || rmr.code !== 0) throw new Error(`rm -r: ${rmr.timedOut ? 'timed out' : describeExit(rmr)}`)
    if (await access(dir).then(() => true, () => false)) throw new WrongResult('the directory still exists after rm -r')
    set('small-rm', rmr.seconds)
  })
  await run('rm', ['-rf', dir], { timeoutMs: 600000 })
}
