// One typed error family for the whole system. Every code maps to an HTTP status
// (servers), a POSIX errno (FUSE) and a CLI message, from this single table, so no
// layer ever string-matches error messages.

export interface ErrorSpec {
  /** HTTP status the servers answer with. */
  readonly http: number
  /** Positive POSIX errno; the FUSE adapter negates it. */
  readonly errno: number
  /** Short human text used as the CLI's prefix (e.g. "no such file"). */
  readonly message: string
}

// errno numbers are Linux's (the only platform we mount on).
export const ERROR_TABLE = {
  EPERM: { http: 403, errno: 1, message: 'operation not permitted' },
  ENOENT: { http: 404, errno: 2, message: 'no such file or directory' },
  EIO: { http: 500, errno: 5, message: 'input/output error' },
  EBADF: { http: 400, errno: 9, message: 'bad file handle' },
  EAGAIN: { http: 503, errno: 11, message: 'temporarily unavailable, try again' },
  EACCES: { http: 403, errno: 13, message: 'permission denied' },
  EBUSY: { http: 409, errno: 16, message: 'resource busy' },
  EEXIST: { http: 409, errno: 17, message: 'file exists' },
  EXDEV: { http: 400, errno: 18, message: 'cross-device link' },
  ENOTDIR: { http: 409, errno: 20, message: 'not a directory' },
  EISDIR: { http: 409, errno: 21, message: 'is a directory' },
  EINVAL: { http: 400, errno: 22, message: 'invalid argument' },
  EFBIG: { http: 413, errno: 27, message: 'file too large' },
  ENOSPC: { http: 507, errno: 28, message: 'no space left on the cluster' },
  ERANGE: { http: 416, errno: 34, message: 'range not satisfiable' },
  ENAMETOOLONG: { http: 414, errno: 36, message: 'file name too long' },
  ENOTEMPTY: { http: 409, errno: 39, message: 'directory not empty' },
  ELOOP: { http: 400, errno: 40, message: 'too many levels of symbolic links' },
  ENOTSUP: { http: 501, errno: 95, message: 'operation not supported' },
  ETIMEDOUT: { http: 504, errno: 110, message: 'timed out' },
  ECONNREFUSED: { http: 502, errno: 111, message: 'connection refused' },
  // Domain codes: each still maps to the nearest errno.
  UNAUTHORIZED: { http: 401, errno: 13, message: 'cluster authentication failed' },
  BAD_TOKEN: { http: 403, errno: 13, message: 'block access token refused' },
  // EIO, not ENOSPC: the servers are gone, not full (a write refused for space by every
  // DataServer reports their ENOSPC instead, see WriteSession.storeWith).
  NO_DATASERVERS: { http: 503, errno: 5, message: 'not enough live dataservers' },
  BLOCK_LOST: { http: 503, errno: 5, message: 'no readable replica of block' },
  CHECKSUM_MISMATCH: { http: 500, errno: 5, message: 'checksum mismatch' },
  STALE_REPLICA: { http: 410, errno: 5, message: 'replica generation is stale' },
  LEASE_HELD: { http: 409, errno: 16, message: 'file is being written by another client' },
  LEASE_EXPIRED: { http: 410, errno: 5, message: 'write lease expired' },
  // The mount's cached entry named a file the NameServer no longer has: ESTALE makes the
  // kernel walk the path again with a fresh lookup (and create, for O_CREAT) once.
  STALE_ENTRY: { http: 404, errno: 116, message: 'stale cached name' },
  SAFE_MODE: { http: 503, errno: 11, message: 'nameserver is in safe mode' },
  BAD_REQUEST: { http: 400, errno: 22, message: 'malformed request' },
  TOO_LARGE: { http: 413, errno: 27, message: 'request too large' },
  NOT_FOUND: { http: 404, errno: 2, message: 'no such endpoint' },
  CONFIG: { http: 500, errno: 22, message: 'bad configuration' },
  INTERNAL: { http: 500, errno: 5, message: 'internal error' },
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof ERROR_TABLE

export function isErrorCode (code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(ERROR_TABLE, code)
}

/** Wire form: `{ "error": { "code", "message" } }`. */
export interface ErrorBody {
  error: { code: ErrorCode, message: string }
}

export class HissError extends Error {
  readonly code: ErrorCode

  constructor (code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ERROR_TABLE[code].message, options)
    this.code = code
    this.name = 'HissError'
  }

  get http (): number { return ERROR_TABLE[this.code].http }
  /** Positive errno. */
  get errno (): number { return ERROR_TABLE[this.code].errno }

  toJSON (): ErrorBody { return { error: { code: this.code, message: this.message } } }

  static from (code: ErrorCode, detail?: string): HissError {
    const base = ERROR_TABLE[code].message
    return new HissError(code, detail === undefined ? base : `${base}: ${detail}`)
  }

  static ENOENT (path?: string): HissError { return HissError.from('ENOENT', path) }
  static EEXIST (path?: string): HissError { return HissError.from('EEXIST', path) }
  static ENOTDIR (path?: string): HissError { return HissError.from('ENOTDIR', path) }
  static EISDIR (path?: string): HissError { return HissError.from('EISDIR', path) }
  static ENOTEMPTY (path?: string): HissError { return HissError.from('ENOTEMPTY', path) }
  static EINVAL (detail?: string): HissError { return HissError.from('EINVAL', detail) }
  static EACCES (detail?: string): HissError { return HissError.from('EACCES', detail) }
  static EPERM (detail?: string): HissError { return HissError.from('EPERM', detail) }
  static EIO (detail?: string): HissError { return HissError.from('EIO', detail) }
  static ENOSPC (detail?: string): HissError { return HissError.from('ENOSPC', detail) }
  static EAGAIN (detail?: string): HissError { return HissError.from('EAGAIN', detail) }
  static ETIMEDOUT (detail?: string): HissError { return HissError.from('ETIMEDOUT', detail) }
  static BAD_REQUEST (detail?: string): HissError { return HissError.from('BAD_REQUEST', detail) }
  static INTERNAL (detail?: string): HissError { return HissError.from('INTERNAL', detail) }

  /** Rebuild from a wire body; anything unrecognised becomes EIO. */
  static fromBody (body: unknown, fallbackStatus?: number): HissError {
    if (typeof body === 'object' && body !== null && 'error' in body) {
      const e = (body as { error: unknown }).error
      if (typeof e === 'object' && e !== null) {
        const { code, message } = e as { code?: unknown, message?: unknown }
        if (isErrorCode(code)) return new HissError(code, typeof message === 'string' ? message : undefined)
      }
    }
    if (fallbackStatus === 404) return new HissError('NOT_FOUND')
    return new HissError('EIO', `unexpected response${fallbackStatus === undefined ? '' : ` (HTTP ${fallbackStatus})`}`)
  }
}

export function isHissError (err: unknown): err is HissError {
  return err instanceof HissError
}

/** Errno for FUSE, as the negative number fuse-native expects. */
export function toNegativeErrno (err: unknown): number {
  if (err instanceof HissError) return -err.errno
  const e = err as { errno?: unknown, code?: unknown }
  if (typeof e?.errno === 'number' && e.errno < 0) return e.errno
  if (typeof e?.code === 'string' && isErrorCode(e.code)) return -ERROR_TABLE[e.code].errno
  return -ERROR_TABLE.EIO.errno
}

/**
 * Translate a Node fs error (ENOSPC, ENOENT, ...) into a HissError so that disk
 * trouble on a DataServer reaches the client with its real meaning.
 */
export function fromNodeError (err: unknown, context?: string): HissError {
  if (err instanceof HissError) return err
  const code = (err as { code?: unknown })?.code
  if (isErrorCode(code)) return HissError.from(code, context)
  // Disk full seen through a quota or through SQLite (the NameServer's store).
  if (code === 'EDQUOT' || code === 'SQLITE_FULL') return HissError.from('ENOSPC', context)
  return new HissError('EIO', `${context === undefined ? '' : context + ': '}${(err as Error)?.message ?? String(err)}`, { cause: err })
}
