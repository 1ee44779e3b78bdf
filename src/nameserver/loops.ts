// Periodic work on an injected clock. The NameServer's loop bodies are synchronous, so
// the next run is scheduled right after the previous one returns: a ManualClock's
// advance() then fires every due run in one call, which keeps clock-driven tests simple.
import type { Clock, Timer } from '../common/clock.js'

export function repeat (clock: Clock, ms: number, fn: () => void, onError: (err: unknown) => void): () => void {
  let stopped = false
  let timer: Timer | undefined
  const tick = (): void => {
    if (stopped) return
    try { fn() } catch (err) { onError(err) }
    if (!stopped) timer = clock.setTimeout(tick, ms)
  }
  timer = clock.setTimeout(tick, ms)
  return () => { stopped = true; clock.clearTimeout(timer) }
}
