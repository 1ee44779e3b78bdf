// Resident memory (VmRSS from /proc/PID/status) of a system's daemons: one sample at
// idle, and the peak while a workload runs (sampled every 100 ms).
import { readFile } from 'node:fs/promises'
import type { DaemonRef } from './system.js'

export async function readRssKiB (pid: number): Promise<number | undefined> {
  return await readStatusKiB(pid, 'VmRSS')
}

/** A kB field of /proc/PID/status: VmRSS (resident now), VmHWM (resident peak since start). */
export async function readStatusKiB (pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/status`, 'utf8')
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(text)
    return m?.[1] === undefined ? undefined : Number(m[1])
  } catch {
    return undefined
  }
}

export async function niceOf (pid: number): Promise<number | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8')
    // Fields after the ")" that closes the command name: state is field 3, nice is 19.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ')
    const v = rest[16]
    return v === undefined ? undefined : Number(v)
  } catch {
    return undefined
  }
}

export async function sampleRss (daemons: DaemonRef[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const d of daemons) {
    const v = await readRssKiB(d.pid)
    if (v !== undefined) out[d.role] = v
  }
  return out
}

/** Peak RSS per role while running. */
export class RssPeak {
  private readonly peak: Record<string, number> = {}
  private timer: NodeJS.Timeout | undefined
  private busy = false

  constructor (private readonly daemons: DaemonRef[]) {}

  start (): void {
    if (this.daemons.length === 0) return
    const tick = async (): Promise<void> => {
      if (this.busy) return
      this.busy = true
      try {
        const s = await sampleRss(this.daemons)
        for (const [role, v] of Object.entries(s)) this.peak[role] = Math.max(this.peak[role] ?? 0, v)
      } finally {
        this.busy = false
      }
    }
    void tick()
    this.timer = setInterval(() => { void tick() }, 100)
  }

  async stop (): Promise<Record<string, number>> {
    if (this.timer !== undefined) clearInterval(this.timer)
    const s = await sampleRss(this.daemons)
    for (const [role, v] of Object.entries(s)) this.peak[role] = Math.max(this.peak[role] ?? 0, v)
    return { ...this.peak }
  }
}
