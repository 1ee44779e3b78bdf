// What the benchmark measured: row definitions, one sample per (row, column, rep),
// memory samples and notes. Everything the report prints comes from here.
export type TableId = 'main' | 'cli' | 'ns' | 'nsmem'

export interface RowDef {
  table: TableId
  id: string
  label: string
  unit: string
  better: 'higher' | 'lower'
}

export interface Sample {
  table: TableId
  row: string
  column: string
  rep: number
  value?: number
  /** The operation failed (exit status, I/O error, timeout). */
  error?: string
  /** The operation finished but its result was wrong (diff, checksum, copies): fails the run. */
  wrong?: string
}

export interface RssSample { system: string, phase: string, role: string, rep: number, kib: number }

export class WrongResult extends Error {}

export class Results {
  readonly rows: RowDef[] = []
  readonly samples: Sample[] = []
  readonly rss: RssSample[] = []
  readonly notes: string[] = []
  /** Column -> reason, for columns whose system could not be started. */
  readonly unavailable: Record<string, string> = {}
  readonly nice: Record<string, number> = {}

  defineRow (def: RowDef): void {
    if (!this.rows.some((r) => r.table === def.table && r.id === def.id)) this.rows.push(def)
  }

  add (s: Sample): void { this.samples.push(s) }

  /**
   * Run `fn` for one (column, rep); it records values with `set`. A throw marks every
   * row of `rowIds` that has no value yet as wrong (WrongResult) or failed.
   */
  async measure (table: TableId, rowIds: string[], column: string, rep: number,
    fn: (set: (row: string, value: number) => void) => Promise<void>): Promise<boolean> {
    const done = new Set<string>()
    const set = (row: string, value: number): void => {
      done.add(row)
      this.add({ table, row, column, rep, value })
    }
    try {
      await fn(set)
      return true
    } catch (err) {
      const msg = (err as Error).message.replace(/\s+/g, ' ').slice(0, 500)
      for (const row of rowIds) {
        if (done.has(row)) continue
        this.add(err instanceof WrongResult ? { table, row, column, rep, wrong: msg } : { table, row, column, rep, error: msg })
      }
      return false
    }
  }

  get wrongCount (): number { return this.samples.filter((s) => s.wrong !== undefined).length }
  get errorCount (): number { return this.samples.filter((s) => s.error !== undefined).length }
}
