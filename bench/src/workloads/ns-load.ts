// (8) The NameServer alone: metadata operations per second from 1, 8 and 32
// concurrent clients (dist/bench/src/ns-load.js, HTTP over loopback).
import type { HissCluster } from '../sys-hissdfs.js'
import { WrongResult } from '../results.js'
import { runScript, type Ctx } from './context.js'

/** Files per directory in the create/stat/rename/delete phases; the list phase lists them. */
export const NS_FILES_PER_DIR = 100

export const NS_OPS = ['create', 'stat', 'list', 'rename', 'delete'] as const

export function nsColumn (c: number): string { return `${c} client${c === 1 ? '' : 's'}` }

export function defineNsRows (ctx: Ctx): void {
  for (const op of NS_OPS) {
    const label = op === 'list' ? `list (directories of ${Math.min(NS_FILES_PER_DIR, ctx.opts.nsOps)} entries)` : op
    ctx.results.defineRow({ table: 'ns', id: op, label, unit: 'ops/s', better: 'higher' })
  }
}

interface NsReply { opsPerSec?: Record<string, number> }

export async function nsLoad (ctx: Ctx, cluster: HissCluster, concurrency: number, rep: number): Promise<void> {
  await ctx.results.measure('ns', [...NS_OPS], nsColumn(concurrency), rep, async (set) => {
    const r = await runScript<NsReply>(ctx, 'ns-load.js', {
      address: cluster.nsAddress,
      base: `/nsload-${rep}-${concurrency}`,
      ops: ctx.opts.nsOps,
      concurrency,
      filesPerDir: NS_FILES_PER_DIR,
    }, 1800000)
    for (const [op, v] of Object.entries(r.opsPerSec ?? {})) set(op, v)
    if (r.wrong !== undefined) throw new WrongResult(r.wrong)
    if (r.error !== undefined) throw new Error(r.error)
  })
}
