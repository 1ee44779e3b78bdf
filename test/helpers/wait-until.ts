// Polling with a deadline: the only way the process-level tests wait (never a fixed
// sleep). The last value or error is in the timeout message, to explain a failure.
import { setTimeout as delay } from 'node:timers/promises'

export interface WaitOptions {
  timeoutMs?: number
  intervalMs?: number
  /** What we are waiting for, for the timeout message. */
  what?: string
}

/**
 * Call `probe` until it returns something other than undefined/false, and return that.
 * Errors thrown by `probe` count as "not yet".
 */
export async function waitUntil<T> (probe: () => Promise<T | undefined | false> | T | undefined | false, opts: WaitOptions = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30000
  const intervalMs = opts.intervalMs ?? 200
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await probe()
      if (v !== undefined && v !== false) return v
      last = v
    } catch (err) {
      last = err
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last)?.slice(0, 2000)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? 'a condition'} (last: ${detail})`)
    }
    await delay(intervalMs)
  }
}
