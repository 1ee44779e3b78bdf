// Structured, quiet-by-default logs: one JSON object per line on stderr.
// `log.level` in the config raises them.

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const
export type LogLevel = typeof LOG_LEVELS[number]

export interface Logger {
  error (msg: string, fields?: Record<string, unknown>): void
  warn (msg: string, fields?: Record<string, unknown>): void
  info (msg: string, fields?: Record<string, unknown>): void
  debug (msg: string, fields?: Record<string, unknown>): void
  child (name: string): Logger
  readonly level: LogLevel
}

const SECRET_KEYS = /secret|token|password|authorization/i

function scrub (fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(fields)) {
    if (SECRET_KEYS.test(k)) out[k] = '[redacted]'
    else if (v instanceof Error) out[k] = { message: v.message, code: (v as { code?: unknown }).code, stack: v.stack }
    else out[k] = v
  }
  return out
}

export function createLogger (name: string, level: LogLevel = 'warn', sink: (line: string) => void = l => { process.stderr.write(l + '\n') }): Logger {
  const rank = LOG_LEVELS.indexOf(level)
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (LOG_LEVELS.indexOf(lvl) > rank) return
    sink(JSON.stringify({ t: new Date().toISOString(), level: lvl, name, msg, ...(fields === undefined ? {} : scrub(fields)) }))
  }
  return {
    level,
    error: (m, f) => emit('error', m, f),
    warn: (m, f) => emit('warn', m, f),
    info: (m, f) => emit('info', m, f),
    debug: (m, f) => emit('debug', m, f),
    child: (n: string) => createLogger(`${name}:${n}`, level, sink),
  }
}

export const silentLogger: Logger = createLogger('silent', 'error', () => {})
