// Shared state of one benchmark run, handed to every workload.
import { join } from 'node:path'
import type { CacheDropper } from '../caches.js'
import type { Inputs } from '../inputs.js'
import type { BenchOptions } from '../options.js'
import { describeExit, run, type RunResult } from '../proc.js'
import type { Results } from '../results.js'

export interface Ctx {
  repo: string
  opts: BenchOptions
  inputs: Inputs
  caches: CacheDropper
  results: Results
  /** Scratch directory on the local disk (outside every system). */
  tmp: string
  /** Compiled bench scripts (fs-worker.js, ns-load.js). */
  benchDist: string
}

/** Run a bench child script (fs-worker / ns-load) and parse its one JSON line. */
export async function runScript<T> (ctx: Ctx, script: string, job: unknown, timeoutMs: number, onStderr?: (text: string) => void): Promise<T & { error?: string, wrong?: string }> {
  const r: RunResult = await run(process.execPath, [join(ctx.benchDist, script), JSON.stringify(job)], { timeoutMs, onStderr })
  if (r.timedOut) throw new Error(`${script}: timed out after ${timeoutMs / 1000} s`)
  const line = r.stdout.trim().split('\n').pop() ?? ''
  try {
    return JSON.parse(line) as T & { error?: string, wrong?: string }
  } catch {
    throw new Error(`${script}: ${describeExit(r)}`)
  }
}

/** Megabytes (10^6 bytes) per second. */
export function mbps (bytes: number, seconds: number): number {
  return bytes / 1e6 / seconds
}

export function timeoutForBytes (bytes: number): number {
  // Generous: 2 MB/s plus two minutes, so only a hang trips it.
  return 120000 + Math.ceil(bytes / 2e6) * 1000
}
