// Turns every transport failure into a HissError: error bodies are rebuilt from their
// wire form, socket-level failures are classified by their `code` (never by message
// text), so callers can decide on retries and failover from the code alone.
import { HissError, isHissError } from '../common/errors.js'

// Nothing was sent: safe to retry anything.
const REFUSED_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND'])
// The connection broke or the network is flaky: the peer may come back.
const AGAIN_CODES = new Set([
  'ECONNRESET', 'EPIPE', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EHOSTDOWN',
  'EAI_AGAIN', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_HTTP_CONTENT_LENGTH_MISMATCH',
])
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT'])

function describe (err: unknown): string {
  const m = (err as Error | undefined)?.message
  return typeof m === 'string' ? m : String(err)
}

/**
 * Any error from got, a socket or a stream, as a HissError. `where` (host:port or URL)
 * goes into the message so the CLI can say which server failed.
 */
export function toHissError (err: unknown, where?: string): HissError {
  if (isHissError(err)) return err
  // got wraps errors of our own body streams (e.g. a timeout we raised): keep them.
  const cause = (err as { cause?: unknown } | undefined)?.cause
  if (isHissError(cause)) return cause
  const code = (err as { code?: unknown } | undefined)?.code
  const at = where === undefined ? '' : ` (${where})`
  if (typeof code === 'string') {
    if (REFUSED_CODES.has(code)) return HissError.from('ECONNREFUSED', `${code}${at}`)
    if (AGAIN_CODES.has(code)) return HissError.from('EAGAIN', `${code}${at}`)
    if (TIMEOUT_CODES.has(code)) return HissError.from('ETIMEDOUT', `no answer in time${at}`)
  }
  return new HissError('EIO', `${typeof code === 'string' ? code + ': ' : ''}${describe(err)}${at}`, { cause: err })
}

/** A non-2xx reply: the server's `{error:{code,message}}` body, or EIO for anything else. */
export function errorFromResponse (status: number, body: string | Buffer): HissError {
  let parsed: unknown
  try {
    parsed = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'))
  } catch {
    parsed = undefined
  }
  return HissError.fromBody(parsed, status)
}
