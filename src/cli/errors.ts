// How a failure becomes the one line a user sees: `hissdfs: <command>: <path>: <message>`.
// HissErrors print their message and never a stack; anything else is unexpected and
// prints its message, with the stack only at log level "debug".
import { ERROR_TABLE, HissError, fromNodeError, isErrorCode } from '../common/errors.js'

/** Exit codes: 0 ok, 1 operation failed, 2 usage or configuration error. */
export const EXIT_OK = 0
export const EXIT_FAIL = 1
export const EXIT_USAGE = 2

/** Turn local fs errors (ENOENT on a local file, EACCES, ...) into HissErrors. */
export function asHissError (err: unknown): HissError | undefined {
  if (err instanceof HissError) return err
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string' && (isErrorCode(code) || code === 'EDQUOT')) return fromNodeError(err)
  return undefined
}

/**
 * The message for one failure. A HissError message that only repeats the path we
 * already print ("no such file or directory: /a") is shortened to its table text.
 */
export function errorText (err: unknown, path?: string, debug = false): string {
  const he = asHissError(err)
  if (he !== undefined) {
    const base = ERROR_TABLE[he.code].message
    const msg = he.message
    if (path !== undefined && (msg === `${base}: ${path}` || msg === `${base}: ${JSON.stringify(path)}`)) return base
    return msg
  }
  const e = err as Error | undefined
  const text = e?.message ?? String(err)
  return debug && e?.stack !== undefined ? `${text}\n${e.stack}` : text
}

export function formatFailure (command: string | undefined, path: string | undefined, err: unknown, debug = false): string {
  const parts = ['hissdfs']
  if (command !== undefined) parts.push(command)
  if (path !== undefined) parts.push(path)
  parts.push(errorText(err, path, debug))
  return parts.join(': ')
}

/** A failure tied to one path, thrown out of a command so the runner can print it. */
export class PathFailure extends Error {
  constructor (readonly path: string, readonly error: unknown) {
    super((error as Error)?.message ?? String(error))
    this.name = 'PathFailure'
  }
}

/** A failure that must end with a specific exit code (e.g. `exists` answers 2 on errors). */
export class ExitWith extends Error {
  constructor (readonly code: number) {
    super(`exit ${code}`)
    this.name = 'ExitWith'
  }
}
