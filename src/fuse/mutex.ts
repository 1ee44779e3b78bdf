// A FIFO async lock: one open file's mutations (writes, truncates, commits) run one at a
// time, in arrival order, while reads of committed blocks stay lock-free.

export class Mutex {
  private tail: Promise<void> = Promise.resolve()
  private holders = 0

  get locked (): boolean { return this.holders > 0 }

  async run<T> (fn: () => Promise<T>): Promise<T> {
    const prev = this.tail
    let release!: () => void
    this.tail = new Promise<void>(resolve => { release = resolve })
    this.holders++
    try {
      await prev
      return await fn()
    } finally {
      this.holders--
      release()
    }
  }
}
