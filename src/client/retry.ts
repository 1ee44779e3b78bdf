// Explicit retries for metadata calls: got's own retry is off so that every retry is
// visible here, paced by the injected Clock and bounded by a total time budget
// (`client.retry.ms`), long enough to ride out a NameServer restart or safe mode.
import { sleep, type Clock } from '../common/clock.js'
import type { ErrorCode, HissError } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import { toHissError } from './http-errors.js'

/** Codes meaning "not now, but soon": the request had no effect or may be repeated. */
export const RETRIABLE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['EAGAIN', 'SAFE_MODE', 'ECONNREFUSED'])

const FIRST_DELAY_MS = 50
const MAX_DELAY_MS = 1000

export interface RetryOptions {
  clock: Clock
  budgetMs: number
  log?: Logger
  what?: string
  retriable?: (err: HissError) => boolean
}

export async function withRetry<T> (fn: () => Promise<T>, o: RetryOptions): Promise<T> {
  const retriable = o.retriable ?? ((e: HissError) => RETRIABLE_CODES.has(e.code))
  const start = o.clock.now()
  let delay = FIRST_DELAY_MS
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn()
    } catch (err) {
      const e = toHissError(err)
      const remaining = o.budgetMs - (o.clock.now() - start)
      if (!retriable(e) || remaining <= 0) throw e
      o.log?.debug('retrying', { what: o.what, attempt, code: e.code, delayMs: Math.min(delay, remaining) })
      await sleep(o.clock, Math.min(delay, remaining))
      delay = Math.min(delay * 2, MAX_DELAY_MS)
    }
  }
}
