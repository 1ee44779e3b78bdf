// One DataServer per storage directory: two servers sharing a root would overwrite
// each other's replicas and report them twice. `<root>/in_use.lock` holds the owner's
// pid and a per-process nonce; a lock left by a dead process (kill -9) is taken over.
import { randomUUID } from 'node:crypto'
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { HissError, fromNodeError } from '../common/errors.js'

/** Identifies this process across pid reuse (a restarted container often gets the same pid). */
const PROCESS_NONCE = randomUUID()

export class StorageLock {
  private readonly file: string
  private held = false

  constructor (root: string) { this.file = join(root, 'in_use.lock') }

  /** Synchronous on purpose: startup only, and it must not interleave with another acquire. */
  acquire (): void {
    if (this.held) return
    const me = `${process.pid} ${PROCESS_NONCE}\n`
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(this.file, me, { flag: 'wx', mode: 0o644 })
        this.held = true
        return
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fromNodeError(err, `locking ${this.file}`)
      }
      if (this.ownerAlive()) throw HissError.from('EBUSY', `storage directory in use by another dataserver (${this.file})`)
      try { unlinkSync(this.file) } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fromNodeError(err) }
    }
    throw HissError.from('EBUSY', `cannot lock ${this.file}`)
  }

  release (): void {
    if (!this.held) return
    this.held = false
    try { unlinkSync(this.file) } catch { /* already gone: nothing to release */ }
  }

  private ownerAlive (): boolean {
    let text: string
    try { text = readFileSync(this.file, 'utf8') } catch { return false }
    const [pidText, nonce] = text.trim().split(' ')
    const pid = Number(pidText)
    if (!Number.isSafeInteger(pid) || pid <= 0) return false
    if (pid === process.pid) return nonce === PROCESS_NONCE
    try {
      process.kill(pid, 0)
      return true
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM'
    }
  }
}
