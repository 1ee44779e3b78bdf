// `make bench`: HissDFS against the local disk, a FUSE passthrough (bindfs) and
// MooseFS, side by side in one run. Starts every system fresh on 127.0.0.1 with its
// data under bench/work/run, runs the same workloads on each (systems interleaved rep
// by rep), tears everything down (also on failure or Ctrl-C), and writes one report to
// bench/results/{full,quick}.{md,json}.
// Usage: node dist/bench/src/main.js [--quick] [--reps=N] [--no-hissdfs] [--profile]
// --profile: every HissDFS process runs under `node --cpu-prof` (bench/work/profiles/
// <system>/<role>); the report goes to <mode>-profiled.{md,json} (the profiler slows
// things down) and the top self-time functions per process to <mode>-profile.md.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadavg } from 'node:os'
import { CacheDropper } from './caches.js'
import { prepareInputs } from './inputs.js'
import { machineFacts } from './machine.js'
import { unmount } from './mounts.js'
import { benchOptions } from './options.js'
import { run } from './proc.js'
import { buildReport, type RunInfo } from './write-report.js'
import { Results, type TableId } from './results.js'
import { niceOf, sampleRss } from './rss.js'
import { profileTreeMarkdown, summarizeProfileTree } from './profile.js'
import { startBindfs, startRaw } from './sys-local.js'
import { HissCluster, hissMissing } from './sys-hissdfs.js'
import { MOOSEFS_NOTES, MoosefsCluster } from './sys-moosefs.js'
import { SYSTEM_ORDER, type BenchSystem, type SystemName } from './system.js'
import { Teardown } from './teardown.js'
import { CLI_RAW, cliColumn, cliHiss, cliRaw, defineCliRows } from './workloads/cli.js'
import type { Ctx } from './workloads/context.js'
import { defineFioRows, fioRandom } from './workloads/fio.js'
import { defineMetaRows, metadata } from './workloads/metadata.js'
import { defineNsRows, nsColumn, nsLoad } from './workloads/ns-load.js'
import { defineNsMemRows, nsMemColumn, nsMemory } from './workloads/ns-memory.js'
import { defineSeqRows, seqRead, seqWrite } from './workloads/seq.js'
import { defineSmallRows, smallFiles } from './workloads/small-files.js'
import { defineTarRows, tarTree } from './workloads/tar-tree.js'

const here = dirname(fileURLToPath(import.meta.url))
const repo = resolve(here, '..', '..', '..')

function log (msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`)
}

/** Unmount anything still mounted under `dir` (a previous run that was killed hard). */
async function clearStaleMounts (dir: string): Promise<void> {
  const mounts = (await readFile('/proc/self/mounts', 'utf8')).split('\n').map((l) => l.split(' ')[1] ?? '')
  for (const m of mounts.filter((m) => m.startsWith(dir + '/')).sort().reverse()) {
    log(`unmounting stale ${m}`)
    await unmount(m)
  }
}

async function main (teardown: Teardown): Promise<number> {
  const args = process.argv.slice(2)
  const opts = benchOptions(args.includes('--quick'))
  const repsArg = args.find((a) => a.startsWith('--reps='))
  if (repsArg !== undefined) {
    const n = Number(repsArg.slice('--reps='.length))
    if (!Number.isInteger(n) || n < 1 || n > 20) throw new Error(`bad ${repsArg}: expected 1..20`)
    opts.reps = n
  }
  const skipHiss = args.includes('--no-hissdfs')
  opts.profile = args.includes('--profile')
  const known = /^(--quick|--no-hissdfs|--profile|--reps=.*)$/
  const unknown = args.filter((a) => !known.test(a))
  if (unknown.length > 0) throw new Error(`unknown argument(s): ${unknown.join(' ')} (expected --quick, --reps=N, --no-hissdfs, --profile)`)
  const work = join(repo, 'bench', 'work')
  const runDir = join(work, 'run')
  const logs = join(work, 'logs')
  const cache = join(work, 'cache')
  const resultsDir = join(repo, 'bench', 'results')
  const profileDir = opts.profile ? join(work, 'profiles') : undefined
  const started = new Date()

  await mkdir(work, { recursive: true })
  await clearStaleMounts(work)
  await run('rm', ['-rf', '--one-file-system', runDir, logs], { timeoutMs: 600000 })
  for (const d of [runDir, logs, cache, resultsDir, join(runDir, 'tmp')]) await mkdir(d, { recursive: true })
  if (profileDir !== undefined) {
    await rm(profileDir, { recursive: true, force: true })
    await mkdir(profileDir, { recursive: true })
  }

  teardown.installSignalHandlers()
  const results = new Results()
  if (opts.profile) results.notes.push('PROFILED run (--profile): every HissDFS process ran under `node --cpu-prof`, which slows it down; compare these figures only with care. Hot functions: see the -profile.md report.')

  log(`mode ${opts.quick ? 'QUICK' : 'full'}: ${opts.reps} rep(s); work directory ${runDir}${profileDir === undefined ? '' : `; HissDFS processes profiled into ${profileDir}`}`)
  const machine = await machineFacts(repo, work)
  log('preparing inputs (random file, tarball)')
  const inputs = await prepareInputs(repo, cache, opts.seqBytes, opts.treeCandidates)
  const caches = new CacheDropper()
  const ctx: Ctx = { repo, opts, inputs, caches, results, tmp: join(runDir, 'tmp'), benchDist: here }

  // ---- start every system ------------------------------------------------------
  const systems = new Map<SystemName, BenchSystem>()
  const hiss: HissCluster[] = []
  const unavailable = (names: string[], reason: string): void => {
    for (const n of names) results.unavailable[n] = reason
    log(`${names.join(', ')}: not available: ${reason}`)
  }
  systems.set('raw', await startRaw(runDir))
  try {
    systems.set('bindfs', await startBindfs(runDir, logs, teardown))
  } catch (err) {
    unavailable(['bindfs'], (err as Error).message)
  }
  const mfs = new MoosefsCluster(runDir, logs, teardown)
  if (teardown.aborting) throw new Error('interrupted')
  try {
    log('starting MooseFS: master, 3 chunkservers, mfsmount')
    await mfs.start()
    systems.set('moosefs-r3', mfs.view(3))
    systems.set('moosefs-r1', mfs.view(1))
    results.notes.push(...MOOSEFS_NOTES)
  } catch (err) {
    unavailable(['moosefs-r3', 'moosefs-r1'], (err as Error).message)
    await mfs.stop()
  }
  const missing = skipHiss ? 'skipped (--no-hissdfs)' : await hissMissing(repo)
  for (const r of [3, 1] as const) {
    const name: SystemName = `hissdfs-r${r}`
    const cols = [name, `hissdfs-r${r} CLI`]
    if (missing !== undefined) { unavailable(cols, missing); continue }
    const c = new HissCluster(repo, runDir, logs, r, teardown, profileDir)
    if (teardown.aborting) throw new Error('interrupted')
    try {
      log(`starting HissDFS r${r}: NameServer, 3 DataServers, hissdfs-mount`)
      await c.start()
      systems.set(name, c.view())
      hiss.push(c)
    } catch (err) {
      unavailable(cols, (err as Error).message)
      await c.stop()
    }
  }
  if (hiss.length > 0) {
    results.notes.push('HissDFS: per src/common/protocol.ts a DataServer acknowledges a block only when its own replica is durable (temp file, checksums, fsync, rename) and the NameServer runs with nameserver.sync = full; so dd\'s fsync and close return after the data is on the DataServers\' disk.')
  }
  const ordered = SYSTEM_ORDER.flatMap((n) => systems.get(n) ?? [])

  // Idle memory and nice values, after a short settle.
  await new Promise((resolve) => setTimeout(resolve, 2000))
  for (const sys of ordered) {
    const idle = await sampleRss(sys.daemons())
    for (const [role, kib] of Object.entries(idle)) results.rss.push({ system: sys.name, phase: 'idle', role, rep: 0, kib })
    for (const d of sys.daemons()) {
      const n = await niceOf(d.pid)
      if (n !== undefined) results.nice[d.role] = n
    }
  }

  // ---- workloads, systems interleaved rep by rep --------------------------------
  defineSeqRows(ctx)
  defineSmallRows(ctx)
  defineTarRows(ctx)
  defineMetaRows(ctx)
  defineFioRows(ctx)
  defineCliRows(ctx)
  defineNsRows(ctx)
  defineNsMemRows(ctx)

  const progress = (table: TableId, column: string, rep: number, since: number): void => {
    const got = results.samples.slice(since).map((s) => `${s.row}=${s.value !== undefined ? s.value.toFixed(1) : s.wrong !== undefined ? `WRONG(${s.wrong})` : `failed(${s.error ?? ''})`}`)
    log(`${table} rep ${rep} ${column}: ${got.join(' ')}`)
  }
  const checkAborted = (): void => {
    if (teardown.aborting) throw new Error('interrupted')
  }
  const step = async (sys: BenchSystem, rep: number, rows: string[], fn: () => Promise<void>): Promise<void> => {
    checkAborted()
    const since = results.samples.length
    const broken = await sys.health()
    if (broken !== undefined) {
      await results.measure('main', rows, sys.name, rep, async () => { throw new Error(`system broken earlier: ${broken}`) })
    } else {
      await fn()
    }
    progress('main', sys.name, rep, since)
  }
  const reps = Array.from({ length: opts.reps }, (_v, i) => i + 1)
  const workloads: Array<{ rows: string[], fn: (sys: BenchSystem, rep: number) => Promise<void> }> = [
    { rows: ['seq-write'], fn: async (s, r) => { await seqWrite(ctx, s, r) } },
    { rows: ['seq-read'], fn: async (s, r) => { await seqRead(ctx, s, r) } },
  ]
  for (const rep of reps) {
    for (const w of workloads) for (const sys of ordered) await step(sys, rep, w.rows, async () => { await w.fn(sys, rep) })
  }
  const perSystem: Array<{ rows: string[], fn: (sys: BenchSystem, rep: number) => Promise<void> }> = [
    { rows: ['small-create', 'small-ls', 'small-read', 'small-rm'], fn: async (s, r) => { await smallFiles(ctx, s, r) } },
    { rows: ['tar-x', 'tar-rm'], fn: async (s, r) => { await tarTree(ctx, s, r) } },
    { rows: ['mkdir', 'stat'], fn: async (s, r) => { await metadata(ctx, s, r) } },
    { rows: ['fio-randread', 'fio-randwrite', 'fio-randwrite-fsync'], fn: async (s, r) => { await fioRandom(ctx, s, r) } },
  ]
  for (const w of perSystem) {
    for (const rep of reps) for (const sys of ordered) await step(sys, rep, w.rows, async () => { await w.fn(sys, rep) })
  }
  for (const rep of reps) {
    checkAborted()
    let since = results.samples.length
    await cliRaw(ctx, systems.get('raw')?.dir ?? join(runDir, 'raw'), rep)
    progress('cli', CLI_RAW, rep, since)
    for (const c of hiss) {
      since = results.samples.length
      await cliHiss(ctx, c, rep)
      progress('cli', cliColumn(c), rep, since)
    }
  }
  const nsCluster = hiss[0]
  if (nsCluster === undefined) {
    unavailable(opts.nsConcurrency.map(nsColumn), results.unavailable['hissdfs-r3'] ?? 'no HissDFS cluster running')
  } else {
    results.notes.push(`NameServer load: ${opts.nsOps} operations per phase against the NameServer of ${nsCluster.view().name}, from one load-generator process with 1, 8 or 32 concurrent keep-alive HTTP connections (one request in flight on each; a lean HTTP/1.1 client, bench/src/lean-http.ts, that checks every reply); the generator shares the 2 cores with the NameServer.`)
    for (const rep of reps) {
      for (const c of opts.nsConcurrency) {
        checkAborted()
        const since = results.samples.length
        await nsLoad(ctx, nsCluster, c, rep)
        progress('ns', nsColumn(c), rep, since)
      }
    }
  }
  if (nsCluster === undefined) {
    unavailable(['hissdfs-r3 NameServer'], results.unavailable['hissdfs-r3'] ?? 'no HissDFS cluster running')
  } else {
    checkAborted()
    const since = results.samples.length
    const n = opts.nsFillFiles
    log(`NameServer memory: creating ${n.toLocaleString('en-US')} files in directories of ${opts.nsFillDirSize.toLocaleString('en-US')} from ${opts.nsFillConcurrency} clients (progress every 10 s)`)
    results.notes.push(`NameServer memory: ${n.toLocaleString('en-US')} empty files created through POST /v1/ns/create (directories of ${opts.nsFillDirSize.toLocaleString('en-US')} entries, ${opts.nsFillConcurrency} concurrent clients) in the NameServer of ${nsCluster.view().name} after the load above; then ${opts.nsFillVerify.toLocaleString('en-US')} random files are stat'ed, a few directories listed and du must count every file.${opts.quick ? ` QUICK: ${n.toLocaleString('en-US')} files, not the 1,000,000 of the target; the target is not judged.` : ''}`)
    await nsMemory(ctx, nsCluster, log)
    progress('nsmem', nsMemColumn(nsCluster), 1, since)
  }

  // ---- teardown and report -------------------------------------------------------
  log('stopping every system')
  await teardown.runAll()
  machine.loadAvgEnd = loadavg().map((v) => Math.round(v * 100) / 100)
  if (caches.failure !== undefined) results.notes.push(caches.failure)

  const peersMissing = (['raw', 'bindfs', 'moosefs-r3', 'moosefs-r1'] as const).filter((n) => !systems.has(n))
  const info: RunInfo = {
    started,
    finished: new Date(),
    opts,
    inputs,
    machine,
    hissColumns: hiss.map((c) => c.view().name),
    peersMissing,
  }
  const { markdown, json } = buildReport(results, info)
  const mode = opts.quick ? 'quick' : 'full'
  const base = join(resultsDir, opts.profile ? `${mode}-profiled` : mode)
  await writeFile(`${base}.md`, markdown)
  await writeFile(`${base}.json`, JSON.stringify(json, null, 2) + '\n')
  process.stdout.write('\n' + markdown + '\n')
  log(`results written to ${base}.md and ${base}.json; logs in ${logs}`)
  if (profileDir !== undefined) {
    const tree = await summarizeProfileTree(profileDir, repo)
    const profMd = profileTreeMarkdown(`HissDFS CPU profiles (${opts.quick ? 'QUICK' : 'full'} run, ${info.started.toISOString()})`, [
      `Every HissDFS process of \`make bench${opts.quick ? ' QUICK=1' : ''} PROFILE=1\` ran under \`node --cpu-prof\`; the profiles are in bench/work/profiles/<system>/<process>/ (open them in Chrome DevTools or speedscope for flame graphs). The run's figures are in ${mode}-profiled.md (slowed by the profiler).`,
      'Self time per function (name, compiled file in dist/ : line), summed over every profile of the process, top 15; "% of busy" is of the non-idle sampled time. (program) is time in V8/native code outside JavaScript functions, (garbage collector) is GC.',
    ], tree)
    const profFile = join(resultsDir, `${mode}-profile.md`)
    await writeFile(profFile, profMd)
    log(`CPU profile summary written to ${profFile} (${tree.reduce((a, e) => a + e.summary.profiles, 0)} profiles)`)
  }
  await run('rm', ['-rf', '--one-file-system', runDir], { timeoutMs: 600000 })

  if (results.wrongCount > 0) { log(`FAILED: ${results.wrongCount} wrong result(s)`); return 1 }
  if (results.errorCount > 0) { log(`FAILED: ${results.errorCount} measurement(s) failed`); return 1 }
  if (peersMissing.length > 0) { log(`FAILED: peer system(s) not available: ${peersMissing.join(', ')}`); return 1 }
  return 0
}

const teardown = new Teardown()
main(teardown).then((code) => { process.exitCode = code }, async (err: unknown) => {
  if (teardown.aborting) return // the signal handler tears down and exits
  log(`aborted: ${(err as Error).stack ?? String(err)}`)
  await teardown.runAll()
  process.exitCode = 2
})
