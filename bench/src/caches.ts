// Dropping the page cache before each "cold" measurement (root only).
import { writeFile } from 'node:fs/promises'
import { run } from './proc.js'

export class CacheDropper {
  /** Why caches could not be dropped, once it failed. */
  failure: string | undefined

  /**
   * Write back every dirty page (`sync`, untimed) before a timed write workload: a system
   * that acknowledges from memory (MooseFS with HDD_FSYNC_BEFORE_CLOSE = 0) leaves its
   * data dirty in the page cache, and the system measured after it would otherwise pay
   * for that write-back on the shared disk.
   */
  async writeBack (): Promise<void> {
    await run('sync', [], { timeoutMs: 300000 })
  }

  async drop (): Promise<void> {
    if (this.failure !== undefined) return
    await this.writeBack()
    try {
      await writeFile('/proc/sys/vm/drop_caches', '3\n')
    } catch (err) {
      this.failure = `caches not dropped: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`
    }
  }
}
