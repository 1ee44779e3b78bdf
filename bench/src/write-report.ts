// The Markdown report and the JSON record of one run.
import { formatBytes, NS_FILL_TARGET_FILES, type BenchOptions } from './options.js'
import type { Inputs } from './inputs.js'
import type { MachineFacts } from './machine.js'
import { markdownTable, Report, type RatioDef } from './report.js'
import type { Results } from './results.js'
import { SYSTEM_ORDER } from './system.js'
import { evaluateTargets, targetsMarkdown, targetSummary } from './targets.js'
import { CLI_RAW } from './workloads/cli.js'
import { nsColumn } from './workloads/ns-load.js'

export interface RunInfo {
  started: Date
  finished: Date
  opts: BenchOptions
  inputs: Inputs
  machine: MachineFacts
  /** HissDFS systems that ran. */
  hissColumns: string[]
  peersMissing: string[]
}

const MAIN_RATIOS: RatioDef[] = [
  { column: 'hissdfs-r3', versus: 'moosefs-r3' },
  { column: 'hissdfs-r3', versus: 'bindfs' },
  { column: 'hissdfs-r1', versus: 'moosefs-r1' },
  { column: 'hissdfs-r1', versus: 'bindfs' },
]
const CLI_COLUMNS = [CLI_RAW, 'hissdfs-r3 CLI', 'hissdfs-r1 CLI']
const CLI_RATIOS: RatioDef[] = [
  { column: 'hissdfs-r3 CLI', versus: CLI_RAW },
  { column: 'hissdfs-r1 CLI', versus: CLI_RAW },
]

function mib (kib: number | undefined): string {
  return kib === undefined ? '–' : `${(kib / 1024).toFixed(0)} MiB`
}

function rssTable (results: Results): string {
  const keys: Array<[string, string]> = []
  for (const s of results.rss) if (!keys.some(([a, b]) => a === s.system && b === s.role)) keys.push([s.system, s.role])
  keys.sort((a, b) => SYSTEM_ORDER.indexOf(a[0] as never) - SYSTEM_ORDER.indexOf(b[0] as never))
  const peak = (system: string, role: string, phase: string): number | undefined => {
    const v = results.rss.filter((s) => s.system === system && s.role === role && s.phase === phase).map((s) => s.kib)
    return v.length === 0 ? undefined : Math.max(...v)
  }
  const body = keys.map(([system, role]) => [
    system, role, String(results.nice[role] ?? '?'),
    mib(peak(system, role, 'idle')), mib(peak(system, role, 'seq-write')), mib(peak(system, role, 'seq-read')),
  ])
  return markdownTable(['system', 'daemon', 'nice', 'idle', 'peak during seq write', 'peak during seq read'], body)
}

export function buildReport (results: Results, info: RunInfo): { markdown: string, json: unknown } {
  const rep = new Report(results)
  const { opts, inputs, machine } = info
  const targets = evaluateTargets(results, opts)
  const nsMemColumns = [...new Set(results.samples.filter((s) => s.table === 'nsmem').map((s) => s.column))]
  if (nsMemColumns.length === 0) nsMemColumns.push(...Object.keys(results.unavailable).filter((c) => c.endsWith(' NameServer')))
  const minutes = ((info.finished.getTime() - info.started.getTime()) / 60000).toFixed(1)
  const failures = results.samples.filter((s) => s.wrong !== undefined || s.error !== undefined)
  const verdict = results.wrongCount > 0
    ? `**FAILED: ${results.wrongCount} wrong result(s)** (no number is printed for them).`
    : failures.length > 0 ? `**FAILED: ${failures.length} measurement(s) did not complete** (listed below).`
      : info.peersMissing.length > 0 ? `**FAILED: peer system(s) not available: ${info.peersMissing.join(', ')}.**`
        : 'All measurements completed and every result was checked.'
  const m = machine
  const md: string[] = [
    `# HissDFS benchmark (${opts.quick ? 'QUICK' : 'full'} run${opts.profile ? ', profiled' : ''})`,
    '',
    `${info.started.toISOString()} – ${info.finished.toISOString()} (${minutes} min), \`make bench${opts.quick ? ' QUICK=1' : ''}${opts.profile ? ' PROFILE=1' : ''}\`, ${opts.reps} rep(s), systems interleaved rep by rep. ${verdict}`,
    '',
    `Targets of the issue: ${targetSummary(targets)} (see [Targets](#targets)).`,
    '',
    '## Machine',
    '',
    `- CPU: ${m.cores} × ${m.cpuModel}; memory ${m.memoryGiB} GiB; kernel ${m.kernel}; ${m.os}`,
    `- Disk: ${m.disk.device} (${m.disk.fsType}, ${m.disk.sizeGiB} GiB, ${m.disk.availGiB} GiB free at start, rotational=${m.disk.rotational}); every system keeps its data on it, under bench/work/run`,
    `- Versions: ${Object.entries(m.versions).map(([k, v]) => `${k} ${v}`).join('; ')}`,
    `- Load average (1/5/15 min) at start ${m.loadAvgStart.join(' / ')}, at end ${(m.loadAvgEnd ?? []).join(' / ')}. The machine is shared with other work: absolute figures are noisy, the per-rep ratios less so.`,
    ...(m.createUs === undefined ? [] : [`- Creating an empty file in the work directory at start: ${m.createUs} µs (median of 200); up ${Math.round((m.uptimeS ?? 0) / 60)} min; ext4lazyinit ${m.ext4LazyInit === true ? '**running** (inode tables still being zeroed after the boot: file creation is slow until it ends, which holds back every file-creating row)' : 'not running'}.`]),
    '',
    '## Systems',
    '',
    '- **raw**: a plain directory. **bindfs**: `bindfs -o big_writes` of a plain directory (the cost of FUSE itself).',
    '- **moosefs-r3 / -r1**: one MooseFS cluster (master + 3 chunkservers + mfsmount) on 127.0.0.1; directories with goal 3 and goal 1 (trash time 0).',
    '- **hissdfs-r3 / -r1**: two HissDFS clusters (NameServer + 3 DataServers + hissdfs-mount) on 127.0.0.1, with replication 3 and 1 in every config.',
    ...results.notes.map((n) => `- ${n}`),
    '',
    '## File-system workloads',
    '',
    `Cells: median (min–max) over ${opts.reps} rep(s). ↑ higher is better, ↓ lower is better. MB = 10^6 bytes. Ratio columns: HissDFS speed ÷ peer speed, computed per rep and shown as median (min–max); above 1× HissDFS is faster. Copies are checked after every sequential write (mfsfileinfo; /v1/ns/blocks).`,
    '',
    'fio\'s O_DIRECT bypasses the kernel page cache of the mount only: a FUSE daemon may still serve from its own cache (mfsmount, hissdfs-mount) or from the page cache of the disk below it (bindfs), which is why bindfs can beat raw there. "Caches dropped" means `sync; echo 3 > /proc/sys/vm/drop_caches` (kernel caches); user-space caches of FUSE daemons (mfsmount\'s, hissdfs-mount\'s fuse.cache.bytes) stay as they are. Every timed write workload (rows 1, 3, 4, 5, CLI put) starts after an untimed `sync`, so no system pays for the write-back of data the system before it left in the page cache (MooseFS acknowledges from memory).',
    '',
    rep.table('main', [...SYSTEM_ORDER], MAIN_RATIOS),
    '',
    '## hissdfs CLI against cp on the raw disk',
    '',
    rep.table('cli', CLI_COLUMNS, CLI_RATIOS, 'operation'),
    '',
    'Times include the CLI\'s Node start-up. The `cat` output and the `cp` copy are checked against the source\'s SHA-256.',
    '',
    '## NameServer alone (metadata operations over loopback HTTP)',
    '',
    rep.table('ns', opts.nsConcurrency.map(nsColumn), [], 'operation'),
    '',
    'No peer column: the MooseFS master has no comparable client API; compare mount-level metadata in rows (3)–(5) above.',
    '',
    '## NameServer memory with many files',
    '',
    rep.table('nsmem', nsMemColumns, [], 'measurement'),
    '',
    `VmRSS and VmHWM from /proc/PID/status of the NameServer, read after the files were created and checked; the store is every file under its nameserver.root.dir (SQLite database and WAL), allocated size.${opts.nsFillFiles < NS_FILL_TARGET_FILES ? ` Reduced run: ${opts.nsFillFiles.toLocaleString('en-US')} files, not ${NS_FILL_TARGET_FILES.toLocaleString('en-US')}.` : ''}`,
    '',
    '## Daemon memory (VmRSS)',
    '',
    rssTable(results),
    '',
    `Idle: 2 s after start, before any workload. Peaks: sampled every 100 ms during the ${formatBytes(opts.seqBytes)} sequential write and read, highest over all reps. MooseFS daemons serve both moosefs rows.`,
  ]
  md.push('', '## Targets', '',
    `Each target of the issue, computed from this run's figures above: medians over the reps; ratios are the median of the per-rep ratios, with the same replication. ${targetSummary(targets)}.${opts.quick ? ' QUICK run: smaller sizes than the targets are stated for, so a verdict here is indicative; targets that depend on size are "not claimed" unless the reduced run already misses them.' : ''}`,
    '',
    targetsMarkdown(targets))
  if (failures.length > 0) {
    md.push('', '## Failures', '', ...failures.map((s) => `- ${s.table} / ${s.row} / ${s.column} / rep ${s.rep}: ${s.wrong !== undefined ? `WRONG RESULT: ${s.wrong}` : `failed: ${s.error ?? ''}`}`))
  }
  const json = {
    format: 'hissdfs-bench/1',
    mode: opts.quick ? 'quick' : 'full',
    started: info.started.toISOString(),
    finished: info.finished.toISOString(),
    verdict,
    options: opts,
    inputs: { randomBytes: inputs.randomBytes, randomSha256: inputs.randomSha256, tree: `node_modules/${inputs.treeName}`, treeEntries: inputs.treeEntries, treeFiles: inputs.treeFiles, treeBytes: inputs.treeBytes },
    machine,
    systems: Object.fromEntries([...SYSTEM_ORDER].map((n) => [n, results.unavailable[n] === undefined ? { available: true } : { available: false, reason: results.unavailable[n] }])),
    unavailable: results.unavailable,
    notes: results.notes,
    rows: results.rows,
    samples: results.samples,
    ratios: [...rep.allRatios('main', MAIN_RATIOS), ...rep.allRatios('cli', CLI_RATIOS)].filter((r) => r.perRep.length > 0),
    rss: results.rss,
    nice: results.nice,
    targets,
  }
  return { markdown: md.join('\n') + '\n', json }
}
