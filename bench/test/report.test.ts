// The harness's own logic: parsing mfsfileinfo, per-rep ratios, wrong results.
import t from 'tap'
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
