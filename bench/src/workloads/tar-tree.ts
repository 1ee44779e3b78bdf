// (4) `tar xf` of a real source tree (a tarball of a package from node_modules), then
// `diff -r` against the source must be clean; then `rm -r` of it.
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describeExit, lastLines, run } from '../proc.js'
import { WrongResult } from '../results.js'
import type { BenchSystem } from '../system.js'
import type { Ctx } from './context.js'

export function defineTarRows (ctx: Ctx): void {
  const i = ctx.inputs
  const what = `node_modules/${i.treeName}: ${i.treeEntries.toLocaleString('en-US')} entries, ${(i.treeBytes / 1e6).toFixed(1)} MB`
  ctx.results.defineRow({ table: 'main', id: 'tar-x', label: `(4) \`tar xf\` of ${what} (then \`diff -r\` clean)`, unit: 's', better: 'lower' })
  ctx.results.defineRow({ table: 'main', id: 'tar-rm', label: '(4) `rm -r` of the extracted tree', unit: 's', better: 'lower' })
}

export async function tarTree (ctx: Ctx, sys: BenchSystem, rep: number): Promise<void> {
  const dir = join(sys.dir, `tar-${rep}`)
  await ctx.results.measure('main', ['tar-x', 'tar-rm'], sys.name, rep, async (set) => {
    await mkdir(dir, { recursive: true })
    await ctx.caches.writeBack()
    const x = await run('tar', ['xf', ctx.inputs.tarball, '-C', dir], { timeoutMs: 1800000 })
    if (x.timedOut || x.code !== 0) throw new Error(`tar xf: ${x.timedOut ? 'timed out' : describeExit(x)}`)
    const d = await run('diff', ['-r', ctx.inputs.treeDir, join(dir, ctx.inputs.treeName)], { timeoutMs: 1800000 })
    if (d.code === 1) throw new WrongResult(`diff -r differs: ${lastLines(d.stdout.split('\n').slice(0, 3).join('\n'), 3)}`)
    if (d.timedOut || d.code !== 0) throw new Error(`diff -r: ${d.timedOut ? 'timed out' : describeExit(d)}`)
    set('tar-x', x.seconds)
    const rmr = await run('rm', ['-r', dir], { timeoutMs: 1800000 })
    if (rmr.timedOut || rmr.code !== 0) throw new Error(`rm -r: ${rmr.timedOut ? 'timed out' : describeExit(rmr)}`)
    set('tar-rm', rmr.seconds)
  })
  await run('rm', ['-rf', dir], { timeoutMs: 1800000 })
}
