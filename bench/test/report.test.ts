// The harness's own logic: parsing mfsfileinfo, per-rep ratios, wrong results, the report.
import t from 'tap'
import { benchOptions } from '../src/options.js'
import { lineSplitter } from '../src/workloads/ns-memory.js'
import { buildReport, type RunInfo } from '../src/write-report.js'
import { fmtRatio, median, Report } from '../src/report.js'
import { Results, WrongResult } from '../src/results.js'
import { copiesPerChunk } from '../src/sys-moosefs.js'

t.test('copiesPerChunk counts valid copies per chunk', async (t) => {
  const out = [
    '/m/r3/f:',
    '\tchunk 0: 0000000000000001_00000001 / (id:1 ver:1)',
    '\t\tcopy 1: 0.0.0.0:9422 (status:VALID)',
    '\t\tcopy 2: 0.0.0.0:9522 (status:VALID)',
    '\tchunk 1: 0000000000000002_00000001 / (id:2 ver:1)',
    '\t\tcopy 1: 0.0.0.0:9422 (status:VALID)',
    '\t\tno valid copies !!!',
  ].join('\n')
  t.same(copiesPerChunk(out), [2, 1])
  t.same(copiesPerChunk('/m/r3/empty:\n'), [])
})

t.test('median, ratio formatting', async (t) => {
  t.equal(median([3, 1, 2]), 2)
  t.equal(median([4, 1, 2, 3]), 2.5)
  t.equal(fmtRatio(0.5), '0.50×')
  t.equal(fmtRatio(0.0012), '0.0012×')
  t.equal(fmtRatio(12.34), '12.3×')
})

t.test('ratios are per rep and speed-based for both directions', async (t) => {
  const r = new Results()
  r.defineRow({ table: 'main', id: 'w', label: 'write', unit: 'MB/s', better: 'higher' })
  r.defineRow({ table: 'main', id: 'x', label: 'tar', unit: 's', better: 'lower' })
  for (const [rep, h, m] of [[1, 50, 100], [2, 90, 100], [3, 10, 40]] as const) {
    r.add({ table: 'main', row: 'w', column: 'hissdfs-r3', rep, value: h })
    r.add({ table: 'main', row: 'w', column: 'moosefs-r3', rep, value: m })
  }
  r.add({ table: 'main', row: 'x', column: 'hissdfs-r3', rep: 1, value: 10 })
  r.add({ table: 'main', row: 'x', column: 'moosefs-r3', rep: 1, value: 5 })
  const rep = new Report(r)
  const w = rep.ratio(r.rows[0]!, 'hissdfs-r3', 'moosefs-r3')
  t.same(w.perRep.map((p) => p.ratio), [0.5, 0.9, 0.25])
  t.equal(rep.ratioCell(r.rows[0]!, 'hissdfs-r3', 'moosefs-r3'), '0.50× (0.25×–0.90×)')
  // Lower is better: HissDFS taking twice as long is half the speed.
  t.equal(rep.ratio(r.rows[1]!, 'hissdfs-r3', 'moosefs-r3').perRep[0]?.ratio, 0.5)
  t.equal(rep.cell('main', 'w', 'hissdfs-r3'), '50.0 (10.0–90.0)')
})

t.test('a wrong result replaces the number and counts as a failure', async (t) => {
  const r = new Results()
  const ok = await r.measure('main', ['a', 'b'], 'hissdfs-r1', 1, async (set) => {
    set('a', 1)
    throw new WrongResult('checksum mismatch')
  })
  t.equal(ok, false)
  t.equal(r.wrongCount, 1)
  const rep = new Report(r)
  t.equal(rep.cell('main', 'a', 'hissdfs-r1'), '1.00')
  t.match(rep.cell('main', 'b', 'hissdfs-r1'), /^\*\*WRONG RESULT\*\*: checksum mismatch/)
  r.unavailable['hissdfs-r3'] = 'dist/src/fuse/main.js not built'
  t.equal(rep.cell('main', 'a', 'hissdfs-r3'), 'not available (reason below)')
  t.same(rep.unavailableLines(['raw', 'hissdfs-r3']), ['- hissdfs-r3: not available: dist/src/fuse/main.js not built'])
})

t.test('progress lines of a child arrive whole, however stderr is chunked', async (t) => {
  const got: string[] = []
  const feed = lineSplitter((l) => got.push(l))
  feed('ns-fill: 10')
  feed(' / 20 files\n\nns-fill: 20 / 20')
  t.same(got, ['ns-fill: 10 / 20 files'])
  feed(' files\n')
  t.same(got, ['ns-fill: 10 / 20 files', 'ns-fill: 20 / 20 files'])
})

t.test('the report has the NameServer memory table and the Targets section, the JSON the targets', async (t) => {
  const r = new Results()
  r.defineRow({ table: 'ns', id: 'stat', label: 'stat', unit: 'ops/s', better: 'higher' })
  r.defineRow({ table: 'nsmem', id: 'fill-rss', label: 'NameServer VmRSS holding the 20,000 files', unit: 'MiB', better: 'lower' })
  r.add({ table: 'ns', row: 'stat', column: '32 clients', rep: 1, value: 2252 })
  r.add({ table: 'nsmem', row: 'fill-rss', column: 'hissdfs-r3 NameServer', rep: 1, value: 80 })
  const opts = benchOptions(true)
  const info: RunInfo = {
    started: new Date(0),
    finished: new Date(60000),
    opts,
    inputs: { randomFile: '/x', randomBytes: opts.seqBytes, randomSha256: 'ab', treeName: 'yaml', treeDir: '/y', tarball: '/y.tar', treeEntries: 1, treeFiles: 1, treeBytes: 1 },
    machine: { cpuModel: 'cpu', cores: 2, memoryGiB: 1, disk: { device: 'd', fsType: 'ext4', sizeGiB: 1, availGiB: 1, rotational: '0' }, kernel: 'k', os: 'o', versions: {}, loadAvgStart: [0, 0, 0] },
    hissColumns: ['hissdfs-r3'],
    peersMissing: [],
  }
  const { markdown, json } = buildReport(r, info)
  t.match(markdown, /## NameServer memory with many files\n\n\| measurement +\| unit +\| hissdfs-r3 NameServer \|/)
  t.match(markdown, /Reduced run: 20,000 files, not 1,000,000\./)
  t.match(markdown, /## Targets\n/)
  t.match(markdown, /\| NameServer stat from 32 clients +\| NameServer +\| 2,252 ops\/s +\| ≥ 20,000 ops\/s +\| \*\*MISSED\*\* +\|/)
  t.match(markdown, /\| NameServer resident memory holding 1,000,000 files +\| hissdfs-r3 NameServer +\| 80 MiB with 20,000 files +\| < 1024 MiB +\| not claimed +\|/)
  const targets = (json as { targets: Array<{ verdict: string }> }).targets
  t.equal(targets.filter((x) => x.verdict === 'MISSED').length, 1)
})
