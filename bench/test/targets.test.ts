// The targets, evaluated from synthetic results: ratios per rep and their
// median, lower-is-better rows, replication-scaled thresholds, missing columns, memory
// growth, and what a reduced run may and may not claim.
import t from 'tap'
import { Results, type RowDef } from '../src/results.js'
import { evaluateTargets, targetCounts, targetsMarkdown, targetSummary, type TargetResult } from '../src/targets.js'

const MiB = 1024 * 1024
const GiB = 1024 * MiB

function rows (r: Results): void {
  const defs: RowDef[] = [
    { table: 'main', id: 'seq-write', label: 'seq write', unit: 'MB/s', better: 'higher' },
    { table: 'main', id: 'seq-read', label: 'seq read', unit: 'MB/s', better: 'higher' },
    { table: 'main', id: 'tar-x', label: 'tar x', unit: 's', better: 'lower' },
    { table: 'cli', id: 'cli-put', label: 'put', unit: 'MB/s', better: 'higher' },
    { table: 'cli', id: 'cli-cat', label: 'cat', unit: 'MB/s', better: 'higher' },
    { table: 'ns', id: 'create', label: 'create', unit: 'ops/s', better: 'higher' },
    { table: 'ns', id: 'stat', label: 'stat', unit: 'ops/s', better: 'higher' },
    { table: 'nsmem', id: 'fill-rss', label: 'rss', unit: 'MiB', better: 'lower' },
  ]
  for (const d of defs) r.defineRow(d)
}

function put (r: Results, table: RowDef['table'], row: string, column: string, values: number[]): void {
  values.forEach((value, i) => { r.add({ table, row, column, rep: i + 1, value }) })
}

function find (ts: TargetResult[], target: RegExp, subject: string): TargetResult {
  const hit = ts.find((x) => target.test(x.target) && x.subject === subject)
  if (hit === undefined) throw new Error(`no target ${String(target)} for ${subject}`)
  return hit
}

function sample (): Results {
  const r = new Results()
  rows(r)
  // seq write: r3 beats MooseFS in 2 of 3 reps -> median ratio 1.1 (per rep, not of medians).
  put(r, 'main', 'seq-write', 'hissdfs-r3', [50, 120, 110])
  put(r, 'main', 'seq-write', 'moosefs-r3', [100, 100, 100])
  put(r, 'main', 'seq-write', 'bindfs', [200, 400, 500])
  put(r, 'main', 'seq-write', 'hissdfs-r1', [100, 100, 100])
  put(r, 'main', 'seq-write', 'moosefs-r1', [300, 300, 300])
  put(r, 'main', 'seq-read', 'hissdfs-r3', [700, 700, 700])
  put(r, 'main', 'seq-read', 'bindfs', [1000, 1000, 1000])
  put(r, 'main', 'seq-read', 'moosefs-r3', [500, 500, 500])
  // tar: seconds, lower is better; HissDFS twice as slow -> 0.5x.
  put(r, 'main', 'tar-x', 'hissdfs-r3', [10])
  put(r, 'main', 'tar-x', 'moosefs-r3', [5])
  put(r, 'cli', 'cli-put', 'raw cp', [1000])
  put(r, 'cli', 'cli-put', 'hissdfs-r3 CLI', [170])
  put(r, 'cli', 'cli-put', 'hissdfs-r1 CLI', [400])
  put(r, 'cli', 'cli-cat', 'raw cp', [2000])
  put(r, 'cli', 'cli-cat', 'hissdfs-r3 CLI', [1000])
  put(r, 'ns', 'stat', '32 clients', [19000, 25000, 21000])
  put(r, 'ns', 'stat', '8 clients', [90000])
  put(r, 'ns', 'create', '32 clients', [1200])
  r.rss.push({ system: 'hissdfs-r3', phase: 'idle', role: 'mount', rep: 0, kib: 70 * 1024 })
  r.rss.push({ system: 'hissdfs-r3', phase: 'seq-write', role: 'mount', rep: 1, kib: 100 * 1024 })
  r.rss.push({ system: 'hissdfs-r3', phase: 'seq-read', role: 'mount', rep: 1, kib: 350 * 1024 })
  r.rss.push({ system: 'hissdfs-r3', phase: 'idle', role: 'dataserver1', rep: 0, kib: 70 * 1024 })
  r.rss.push({ system: 'hissdfs-r3', phase: 'seq-write', role: 'dataserver1', rep: 1, kib: 90 * 1024 })
  r.rss.push({ system: 'hissdfs-r3', phase: 'seq-read', role: 'dataserver1', rep: 2, kib: 95 * 1024 })
  // Memory of another system never counts.
  r.rss.push({ system: 'moosefs-r3', phase: 'idle', role: 'mfsmount', rep: 0, kib: 25 * 1024 })
  r.add({ table: 'nsmem', row: 'fill-rss', column: 'hissdfs-r3 NameServer', rep: 1, value: 600 })
  return r
}

t.test('ratio targets: median of per-rep ratios, replication-scaled thresholds', async (t) => {
  const ts = evaluateTargets(sample(), { seqBytes: GiB, nsFillFiles: 1_000_000 })
  const w3 = find(ts, /^seq write ÷ moosefs-r3$/, 'hissdfs-r3')
  t.equal(w3.value, 1.1)
  t.equal(w3.verdict, 'met')
  t.equal(w3.required, '≥ 1.00×')
  t.equal(find(ts, /^seq write ÷ moosefs-r1$/, 'hissdfs-r1').verdict, 'MISSED')
  // Lower is better: twice the seconds is half the speed.
  const tar = find(ts, /^tar x ÷ moosefs-r3$/, 'hissdfs-r3')
  t.equal(tar.value, 0.5)
  t.equal(tar.verdict, 'MISSED')
  // seq write vs bindfs: r3 needs 0.7/3 = 0.233; per-rep ratios 0.25, 0.3, 0.22 -> 0.25.
  const wb3 = find(ts, /^sequential write ÷ bindfs/, 'hissdfs-r3')
  t.equal(wb3.value, 0.25)
  t.equal(wb3.verdict, 'met')
  t.equal(wb3.required, '≥ 0.23×')
  // r1 needs 0.7: 100/200, 100/400, 100/500 -> 0.25.
  t.equal(find(ts, /^sequential write ÷ bindfs/, 'hissdfs-r1').verdict, 'MISSED')
  // Exactly at the threshold is met.
  const rb = find(ts, /^sequential read ÷ bindfs$/, 'hissdfs-r3')
  t.equal(rb.value, 0.7)
  t.equal(rb.verdict, 'met')
  // CLI: put r3 needs 0.5/3 (0.17 met), r1 needs 0.5 (0.4 missed); cat needs 0.5.
  t.equal(find(ts, /^CLI put/, 'hissdfs-r3 CLI').verdict, 'met')
  t.equal(find(ts, /^CLI put/, 'hissdfs-r1 CLI').verdict, 'MISSED')
  t.equal(find(ts, /^CLI cat/, 'hissdfs-r3 CLI').verdict, 'met')
})

t.test('a column that did not run is not measured, never met', async (t) => {
  const ts = evaluateTargets(sample(), { seqBytes: GiB, nsFillFiles: 1_000_000 })
  const r1read = find(ts, /^seq read ÷ moosefs-r1$/, 'hissdfs-r1')
  t.equal(r1read.verdict, 'not measured')
  t.equal(r1read.measured, '–')
  t.equal(find(ts, /^CLI cat/, 'hissdfs-r1 CLI').verdict, 'not measured')
  const empty = evaluateTargets(new Results(), { seqBytes: GiB, nsFillFiles: 1_000_000 })
  t.ok(empty.length > 0, 'the fixed targets are listed even without any rows')
  t.ok(empty.every((x) => x.verdict === 'not measured'))
})

t.test('NameServer targets use the 32-client column and the median', async (t) => {
  const ts = evaluateTargets(sample(), { seqBytes: GiB, nsFillFiles: 1_000_000 })
  const stat = find(ts, /^NameServer stat from 32 clients$/, 'NameServer')
  t.equal(stat.value, 21000)
  t.equal(stat.verdict, 'met')
  const create = find(ts, /^NameServer create from 32 clients$/, 'NameServer')
  t.equal(create.value, 1200)
  t.equal(create.verdict, 'MISSED')
  t.equal(create.required, '≥ 5,000 ops/s')
})

t.test('memory while streaming: peak minus idle, and what a reduced run claims', async (t) => {
  const full = evaluateTargets(sample(), { seqBytes: GiB, nsFillFiles: 1_000_000 })
  const mount = find(full, /^mount: resident memory/, 'hissdfs-r3')
  t.equal(mount.value, 280)
  t.equal(mount.verdict, 'MISSED')
  const ds = find(full, /^dataserver1: resident memory/, 'hissdfs-r3')
  t.equal(ds.value, 25)
  t.equal(ds.verdict, 'met')
  t.notOk(full.some((x) => x.subject === 'moosefs-r3'))
  t.equal(mount.measured, '+280 MiB (idle 70, peak 350)')

  // A daemon that shrank while streaming (pages given back) reads as a negative change.
  const r = sample()
  r.rss.push({ system: 'hissdfs-r1', phase: 'idle', role: 'dataserver3', rep: 0, kib: 70 * 1024 })
  r.rss.push({ system: 'hissdfs-r1', phase: 'seq-read', role: 'dataserver3', rep: 1, kib: 64 * 1024 })
  const shrank = find(evaluateTargets(r, { seqBytes: GiB, nsFillFiles: 1_000_000 }), /^dataserver3: resident memory/, 'hissdfs-r1')
  t.equal(shrank.measured, '−6 MiB (idle 70, peak 64)')
  t.equal(shrank.verdict, 'met')

  const quick = evaluateTargets(sample(), { seqBytes: 256 * MiB, nsFillFiles: 20_000 })
  t.equal(find(quick, /^mount: resident memory/, 'hissdfs-r3').verdict, 'MISSED', 'over the limit with less data is over it with more')
  const dsq = find(quick, /^dataserver1: resident memory/, 'hissdfs-r3')
  t.equal(dsq.verdict, 'not claimed')
  t.match(dsq.note, /256 MiB/)
})

t.test('NameServer with 1,000,000 files: judged only when that many were created', async (t) => {
  const full = find(evaluateTargets(sample(), { seqBytes: GiB, nsFillFiles: 1_000_000 }), /^NameServer resident memory holding/, 'hissdfs-r3 NameServer')
  t.equal(full.verdict, 'met')
  t.match(full.measured, /^600 MiB with 1,000,000 files$/)
  for (const [rss, files] of [[600, 20_000], [2000, 20_000]] as const) {
    const r = sample()
    const s = r.samples.find((x) => x.table === 'nsmem')
    if (s !== undefined) s.value = rss
    const q = find(evaluateTargets(r, { seqBytes: GiB, nsFillFiles: files }), /^NameServer resident memory holding/, 'hissdfs-r3 NameServer')
    t.equal(q.verdict, 'not claimed', `${rss} MiB with ${files} files`)
    t.match(q.note, /20,000 files/)
  }
  const r = sample()
  const s = r.samples.find((x) => x.table === 'nsmem')
  if (s !== undefined) s.value = 1024
  t.equal(find(evaluateTargets(r, { seqBytes: GiB, nsFillFiles: 1_000_000 }), /^NameServer resident memory holding/, 'hissdfs-r3 NameServer').verdict, 'MISSED', '1 GiB is not under 1 GiB')
})

t.test('summary and Markdown', async (t) => {
  const ts = evaluateTargets(sample(), { seqBytes: 256 * MiB, nsFillFiles: 20_000 })
  const c = targetCounts(ts)
  t.equal(c.met + c.MISSED + c['not claimed'] + c['not measured'], ts.length)
  t.match(targetSummary(ts), new RegExp(`^${c.met} of ${ts.length} targets met, ${c.MISSED} MISSED, ${c['not claimed']} not claimed`))
  const md = targetsMarkdown(ts)
  t.match(md, /\| target +\| HissDFS +\| measured +\| required +\| verdict +\| note +\|/)
  t.match(md, /\*\*MISSED\*\*/)
  t.equal(md.split('\n').length, ts.length + 2)
})
