// All timing goes through a Clock so failure scenarios (heartbeat expiry, lease
// expiry, re-replication pacing) can be driven by a ManualClock in tests.

export interface Timer { readonly id: number }

export interface Clock {
  /** Monotonic milliseconds, for liveness and intervals. */
  now (): number
  /** Wall-clock milliseconds since the epoch, for mtimes and token expiry. */
  wallNow (): number
  /**
   * Timers are background work by default: they never keep the process alive on their
   * own. `keepAlive` marks foreground waits (a CLI's retry back-off) that must.
   */
  setTimeout (fn: () => void, ms: number, opts?: { keepAlive?: boolean }): Timer
  clearTimeout (t: Timer | undefined): void
}

let nextTimerId = 1

export class SystemClock implements Clock {
  private readonly handles = new Map<number, NodeJS.Timeout>()

  now (): number { return performance.now() }
  wallNow (): number { return Date.now() }

  setTimeout (fn: () => void, ms: number, opts?: { keepAlive?: boolean }): Timer {
    const id = nextTimerId++
    const h = setTimeout(() => { this.handles.delete(id); fn() }, ms)
    // Background timers must never keep a process alive on their own.
    if (opts?.keepAlive !== true) h.unref()
    this.handles.set(id, h)
    return { id }
  }

  clearTimeout (t: Timer | undefined): void {
    if (t === undefined) return
    const h = this.handles.get(t.id)
    if (h !== undefined) { clearTimeout(h); this.handles.delete(t.id) }
  }
}

/** A clock that only moves when a test says so. */
export class ManualClock implements Clock {
  private mono = 0
  private wall: number
  private readonly timers = new Map<number, { at: number, fn: () => void }>()

  constructor (wallStart = Date.UTC(2026, 0, 1)) { this.wall = wallStart }

  now (): number { return this.mono }
  wallNow (): number { return this.wall }

  setTimeout (fn: () => void, ms: number): Timer {
    const id = nextTimerId++
    this.timers.set(id, { at: this.mono + Math.max(0, ms), fn })
    return { id }
  }

  clearTimeout (t: Timer | undefined): void {
    if (t !== undefined) this.timers.delete(t.id)
  }

  /** Move time forward, firing due timers in time order (timers they set included). */
  advance (ms: number): void {
    const target = this.mono + ms
    for (;;) {
      let nextId: number | undefined
      let nextAt = Infinity
      for (const [id, t] of this.timers) {
        if (t.at <= target && t.at < nextAt) { nextAt = t.at; nextId = id }
      }
      if (nextId === undefined) break
      const t = this.timers.get(nextId)!
      this.timers.delete(nextId)
      this.wall += t.at - this.mono
      this.mono = t.at
      t.fn()
    }
    this.wall += target - this.mono
    this.mono = target
  }

  pendingTimers (): number { return this.timers.size }
}

/**
 * Run `fn` every `ms` on `clock` until the returned stop function is called. The
 * next run is scheduled only after the previous one settles, so slow runs never
 * pile up. Errors are handed to `onError` (loops must survive operational errors).
 */
export function every (clock: Clock, ms: number, fn: () => unknown, onError: (err: unknown) => void): () => void {
  let stopped = false
  let timer: Timer | undefined
  const tick = (): void => {
    if (stopped) return
    let p: unknown
    try { p = fn() } catch (err) { onError(err) }
    Promise.resolve(p).catch(onError).finally(() => {
      if (!stopped) timer = clock.setTimeout(tick, ms)
    })
  }
  timer = clock.setTimeout(tick, ms)
  return () => { stopped = true; clock.clearTimeout(timer) }
}

/**
 * Promise-based sleep on a clock. Someone awaits it, so it is foreground work: the
 * process stays alive until it ends (a CLI waiting out a NameServer restart must not
 * exit silently in the middle of its back-off).
 */
export function sleep (clock: Clock, ms: number): Promise<void> {
  return new Promise(resolve => { clock.setTimeout(resolve, ms, { keepAlive: true }) })
}
