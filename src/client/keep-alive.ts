// SystemClock timers are unref'd (background loops must not keep a process alive), but
// a retry back-off is foreground work: a CLI waiting out a NameServer restart must not
// exit silently in the middle of its sleep. This holds a ref'd (never firing) handle
// while the caller awaits a Clock sleep.
import { sleep, type Clock } from '../common/clock.js'

export async function foregroundSleep (clock: Clock, ms: number): Promise<void> {
  const hold = setInterval(() => {}, 1 << 30)
  try {
    await sleep(clock, ms)
  } finally {
    clearInterval(hold)
  }
}
