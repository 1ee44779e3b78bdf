// Turns Results into the Markdown report (also printed) and the JSON record.
// Cells: median (min–max) over reps. Ratios are computed per rep (the systems run
// interleaved, so rep r of each system saw the same machine load) and shown as the
// median (min–max) of the per-rep ratios.
import type { Results, RowDef, Sample, TableId } from './results.js'

export interface RatioDef { column: string, versus: string }
export interface RatioValue { row: string, column: string, versus: string, perRep: Array<{ rep: number, ratio: number }> }

export function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2
}

export function fmt (v: number): string {
  if (!Number.isFinite(v)) return String(v)
  const a = Math.abs(v)
  if (a >= 100) return Math.round(v).toLocaleString('en-US')
  if (a >= 10) return v.toFixed(1)
  if (a >= 1) return v.toFixed(2)
  return v.toPrecision(2)
}

/** Two significant digits below 0.1 (0.0012×), else two decimals. */
export function fmtRatio (v: number): string {
  if (v >= 10) return `${v.toFixed(1)}×`
  if (v >= 0.1) return `${v.toFixed(2)}×`
  return `${v.toPrecision(2)}×`
}

function spread (xs: number[], f: (v: number) => string): string {
  if (xs.length === 0) return '–'
  if (xs.length === 1) return f(xs[0] ?? NaN)
  return `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`
}

function shorten (s: string, n: number): string {
  const one = s.replace(/\|/g, '/').replace(/\s+/g, ' ')
  return one.length > n ? one.slice(0, n - 1) + '…' : one
}

export class Report {
  constructor (private readonly results: Results) {}

  private samples (table: TableId, row: string, column: string): Sample[] {
    return this.results.samples.filter((s) => s.table === table && s.row === row && s.column === column)
  }

  cell (table: TableId, row: string, column: string): string {
    const why = this.results.unavailable[column]
    const ss = this.samples(table, row, column)
    if (why !== undefined && ss.length === 0) return 'not available (reason below)'
    const wrong = ss.find((s) => s.wrong !== undefined)
    if (wrong !== undefined) return `**WRONG RESULT**: ${shorten(wrong.wrong ?? '', 90)}`
    const values = ss.flatMap((s) => s.value === undefined ? [] : [s.value])
    const errors = ss.filter((s) => s.error !== undefined)
    if (values.length === 0 && errors.length === 0) return '–'
    if (values.length === 0) return `failed: ${shorten(errors[0]?.error ?? '', 90)}`
    const text = spread(values, fmt)
    return errors.length === 0 ? text : `${text}; ${errors.length} rep(s) failed: ${shorten(errors[0]?.error ?? '', 60)}`
  }

  ratio (def: RowDef, column: string, versus: string): RatioValue {
    const perRep: Array<{ rep: number, ratio: number }> = []
    for (const a of this.samples(def.table, def.id, column)) {
      if (a.value === undefined) continue
      const b = this.samples(def.table, def.id, versus).find((s) => s.rep === a.rep && s.value !== undefined)
      if (b?.value === undefined || a.value === 0 || b.value === 0) continue
      perRep.push({ rep: a.rep, ratio: def.better === 'higher' ? a.value / b.value : b.value / a.value })
    }
    return { row: def.id, column, versus, perRep }
  }

  ratioCell (def: RowDef, column: string, versus: string): string {
    const r = this.ratio(def, column, versus)
    return r.perRep.length === 0 ? '–' : spread(r.perRep.map((p) => p.ratio), fmtRatio)
  }

  allRatios (table: TableId, defs: RatioDef[]): RatioValue[] {
    return this.results.rows.filter((r) => r.table === table).flatMap((row) => defs.map((d) => this.ratio(row, d.column, d.versus)))
  }

  /** "- column: not available: reason" for the columns of a table that did not run. */
  unavailableLines (columns: string[]): string[] {
    return columns.flatMap((c) => {
      const why = this.results.unavailable[c]
      return why === undefined ? [] : [`- ${c}: not available: ${why}`]
    })
  }

  /** One Markdown table: a row per RowDef of `table`, value columns then ratio columns, then why columns are missing. */
  table (table: TableId, columns: string[], ratios: RatioDef[], firstHeader = 'workload'): string {
    const header = [firstHeader, 'unit', ...columns, ...ratios.map((r) => `${r.column} ÷ ${r.versus}`)]
    const body = this.results.rows.filter((r) => r.table === table).map((row) => [
      row.label,
      `${row.unit} (${row.better === 'higher' ? '↑' : '↓'})`,
      ...columns.map((c) => this.cell(table, row.id, c)),
      ...ratios.map((r) => this.ratioCell(row, r.column, r.versus)),
    ])
    const missing = this.unavailableLines(columns)
    return markdownTable(header, body) + (missing.length === 0 ? '' : '\n\n' + missing.join('\n'))
  }
}

export function markdownTable (header: string[], body: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]): string => '| ' + cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ') + ' |'
  return [line(header), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...body.map(line)].join('\n')
}
