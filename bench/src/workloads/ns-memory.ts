// NameServer memory with many files: create opts.nsFillFiles empty files through the
// NameServer's HTTP API (dist/bench/src/ns-fill.js: directories of opts.nsFillDirSize
// entries, opts.nsFillConcurrency clients), check a sample of them, then read the
// NameServer's VmRSS and VmHWM and the size of its on-disk store (nameserver.root.dir).
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { WrongResult } from '../results.js'
import { readStatusKiB } from '../rss.js'
import type { HissCluster } from '../sys-hissdfs.js'
import { runScript, type Ctx } from './context.js'

export const NS_MEM_ROWS = ['fill-rate', 'fill-rss-before', 'fill-rss', 'fill-hwm', 'fill-store'] as const

export function nsMemColumn (c: HissCluster): string { return `hissdfs-r${c.replication} NameServer` }

export function defineNsMemRows (ctx: Ctx): void {
  const n = ctx.opts.nsFillFiles.toLocaleString('en-US')
  const c = ctx.opts.nsFillConcurrency
  ctx.results.defineRow({ table: 'nsmem', id: 'fill-rate', label: `create ${n} empty files (directories of ${ctx.opts.nsFillDirSize.toLocaleString('en-US')}) from ${c} clients`, unit: 'creates/s', better: 'higher' })
  ctx.results.defineRow({ table: 'nsmem', id: 'fill-rss-before', label: 'NameServer VmRSS before', unit: 'MiB', better: 'lower' })
  ctx.results.defineRow({ table: 'nsmem', id: 'fill-rss', label: `NameServer VmRSS holding the ${n} files`, unit: 'MiB', better: 'lower' })
  ctx.results.defineRow({ table: 'nsmem', id: 'fill-hwm', label: 'NameServer VmHWM (peak resident since its start)', unit: 'MiB', better: 'lower' })
  ctx.results.defineRow({ table: 'nsmem', id: 'fill-store', label: 'on-disk store (nameserver.root.dir, allocated)', unit: 'MiB', better: 'lower' })
}

/** Allocated bytes of every file under `dir` (like `du -s`). */
export async function allocatedBytes (dir: string): Promise<number> {
  let total = 0
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) total += await allocatedBytes(p)
    else total += (await stat(p)).blocks * 512
  }
  return total
}

/** Calls `fn` once per complete non-empty line of a chunked stream. */
export function lineSplitter (fn: (line: string) => void): (chunk: string) => void {
  let partial = ''
  return (chunk) => {
    const lines = (partial + chunk).split('\n')
    partial = lines.pop() ?? ''
    for (const l of lines) if (l.trim() !== '') fn(l.trim())
  }
}

interface FillReply { seconds?: number, createsPerSec?: number, verified?: number }

export async function nsMemory (ctx: Ctx, cluster: HissCluster, log: (msg: string) => void): Promise<void> {
  const column = nsMemColumn(cluster)
  await ctx.results.measure('nsmem', [...NS_MEM_ROWS], column, 1, async (set) => {
    const pid = cluster.nsPid
    if (pid === undefined) throw new Error('NameServer not running')
    const mib = async (field: 'VmRSS' | 'VmHWM'): Promise<number> => {
      const kib = await readStatusKiB(pid, field)
      if (kib === undefined) throw new Error(`cannot read ${field} of the NameServer (pid ${pid}): has it exited?`)
      return kib / 1024
    }
    set('fill-rss-before', await mib('VmRSS'))
    const r = await runScript<FillReply>(ctx, 'ns-fill.js', {
      address: cluster.nsAddress,
      base: '/nsfill',
      files: ctx.opts.nsFillFiles,
      dirSize: ctx.opts.nsFillDirSize,
      concurrency: ctx.opts.nsFillConcurrency,
      verify: ctx.opts.nsFillVerify,
    }, 4 * 3600 * 1000, lineSplitter(log))
    if (r.wrong !== undefined) throw new WrongResult(r.wrong)
    if (r.error !== undefined) throw new Error(r.error)
    if (r.createsPerSec === undefined || r.verified === undefined) throw new Error('ns-fill.js reported no result')
    set('fill-rate', r.createsPerSec)
    set('fill-rss', await mib('VmRSS'))
    set('fill-hwm', await mib('VmHWM'))
    set('fill-store', await allocatedBytes(cluster.nsDir) / (1024 * 1024))
  })
}
