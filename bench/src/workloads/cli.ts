// (7) The hissdfs CLI: `put` of the random file and `cat` of it back (caches dropped,
// output to a file on the local disk, checked), against `cp` to and from the raw disk
// (cp + fsync of the copy; cp back to a local file).
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { formatBytes } from '../options.js'
import { describeExit, run, runOk } from '../proc.js'
import { WrongResult } from '../results.js'
import { hissPaths, type HissCluster } from '../sys-hissdfs.js'
import { mbps, timeoutForBytes, type Ctx } from './context.js'

export const CLI_RAW = 'raw cp'

export function cliColumn (c: HissCluster): string { return `hissdfs-r${c.replication} CLI` }

export function defineCliRows (ctx: Ctx): void {
  const size = formatBytes(ctx.opts.seqBytes)
  ctx.results.defineRow({ table: 'cli', id: 'cli-put', label: `put ${size} (raw: cp + fsync)`, unit: 'MB/s', better: 'higher' })
  ctx.results.defineRow({ table: 'cli', id: 'cli-cat', label: `cat ${size} to a local file, caches dropped (raw: cp)`, unit: 'MB/s', better: 'higher' })
}

async function checkOut (ctx: Ctx, out: string): Promise<void> {
  const sum = await runOk('sha256sum', [out], { timeoutMs: timeoutForBytes(ctx.inputs.randomBytes) })
  const got = sum.stdout.split(' ')[0] ?? ''
  if (got !== ctx.inputs.randomSha256) throw new WrongResult(`checksum mismatch: got ${got.slice(0, 16)}..., put ${ctx.inputs.randomSha256.slice(0, 16)}...`)
}

async function warmSource (ctx: Ctx): Promise<void> {
  await runOk('dd', [`if=${ctx.inputs.randomFile}`, 'of=/dev/null', 'bs=1M', 'status=none'], { timeoutMs: 600000 })
}

export async function cliRaw (ctx: Ctx, rawDir: string, rep: number): Promise<void> {
  const { inputs } = ctx
  const copy = join(rawDir, `cli-${rep}.bin`)
  const out = join(ctx.tmp, `cli-out-${rep}.bin`)
  const t = timeoutForBytes(inputs.randomBytes)
  await ctx.results.measure('cli', ['cli-put', 'cli-cat'], CLI_RAW, rep, async (set) => {
    await warmSource(ctx)
    await ctx.caches.writeBack()
    const p = await run('sh', ['-c', 'cp -- "$1" "$2" && sync -- "$2"', 'sh', inputs.randomFile, copy], { timeoutMs: t })
    if (p.timedOut || p.code !== 0) throw new Error(`cp: ${describeExit(p)}`)
    set('cli-put', mbps(inputs.randomBytes, p.seconds))
    await ctx.caches.drop()
    const c = await run('cp', ['--', copy, out], { timeoutMs: t })
    if (c.timedOut || c.code !== 0) throw new Error(`cp back: ${describeExit(c)}`)
    await checkOut(ctx, out)
    set('cli-cat', mbps(inputs.randomBytes, c.seconds))
  })
  await rm(copy, { force: true })
  await rm(out, { force: true })
}

export async function cliHiss (ctx: Ctx, cluster: HissCluster, rep: number): Promise<void> {
  const { inputs } = ctx
  const cli = hissPaths(ctx.repo).cli
  const remote = `/cli-${rep}.bin`
  const out = join(ctx.tmp, `cli-out-${rep}.bin`)
  const t = timeoutForBytes(inputs.randomBytes)
  const cfg = ['--config', cluster.clientConfig]
  await ctx.results.measure('cli', ['cli-put', 'cli-cat'], cliColumn(cluster), rep, async (set) => {
    await warmSource(ctx)
    await ctx.caches.writeBack()
    const p = await run(process.execPath, [...cluster.nodeArgs('cli-put'), cli, 'put', inputs.randomFile, remote, ...cfg], { timeoutMs: t })
    if (p.timedOut || p.code !== 0) throw new Error(`hissdfs put: ${p.timedOut ? 'timed out' : describeExit(p)}`)
    const problem = await cluster.checkReplicas(join(cluster.mnt, remote))
    if (problem !== undefined) throw new WrongResult(`copies: ${problem}`)
    set('cli-put', mbps(inputs.randomBytes, p.seconds))
    await ctx.caches.drop()
    const c = await run(process.execPath, [...cluster.nodeArgs('cli-cat'), cli, 'cat', remote, ...cfg], { timeoutMs: t, stdoutFile: out })
    if (c.timedOut || c.code !== 0) throw new Error(`hissdfs cat: ${c.timedOut ? 'timed out' : describeExit(c)}`)
    await checkOut(ctx, out)
    set('cli-cat', mbps(inputs.randomBytes, c.seconds))
  })
  await rm(out, { force: true })
  await run(process.execPath, [...cluster.nodeArgs('cli-rm'), cli, 'rm', remote, ...cfg], { timeoutMs: 120000 })
}
