// Per-block shared/exclusive locks inside one DataServer. A block patch changes a
// replica's files in place, so it must never overlap a read of them: readers hold the
// shared lock while they read one batch (not for a whole stream, which may go at a slow
// client's pace), and the patch holds the exclusive lock while it applies and renames.
// Writers are served in turn: once one waits, new readers queue behind it.

interface Waiter { exclusive: boolean, grant: () => void }
interface LockState { readers: number, writer: boolean, queue: Waiter[] }

export type Release = () => void

export class BlockLocks {
  private readonly locks = new Map<number, LockState>()

  /** Resolves once no patch holds or waits for block `id`; call the result to release. */
  shared (id: number): Promise<Release> { return this.acquire(id, false) }

  /** Resolves once nobody else holds block `id`. */
  exclusive (id: number): Promise<Release> { return this.acquire(id, true) }

  /** Locks currently held or waited for (tests). */
  get size (): number { return this.locks.size }

  private acquire (id: number, exclusive: boolean): Promise<Release> {
    let s = this.locks.get(id)
    if (s === undefined) { s = { readers: 0, writer: false, queue: [] }; this.locks.set(id, s) }
    const st = s
    return new Promise<Release>(resolve => {
      const grant = (): void => {
        if (exclusive) st.writer = true
        else st.readers++
        let released = false
        resolve(() => {
          if (released) return
          released = true
          if (exclusive) st.writer = false
          else st.readers--
          this.pump(id, st)
        })
      }
      if (st.queue.length === 0 && !st.writer && (exclusive ? st.readers === 0 : true)) grant()
      else st.queue.push({ exclusive, grant })
    })
  }

  private pump (id: number, st: LockState): void {
    while (st.queue.length > 0 && !st.writer) {
      const next = st.queue[0]!
      if (next.exclusive && st.readers > 0) break
      st.queue.shift()
      next.grant()
      if (next.exclusive) break
    }
    if (st.queue.length === 0 && !st.writer && st.readers === 0) this.locks.delete(id)
  }
}
