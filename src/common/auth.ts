// Trust between the parts rests on the cluster secret (HDFS's block access tokens are
// the model). Nothing here sends the secret itself over the wire.
import { createHmac, timingSafeEqual } from 'node:crypto'
import { HissError } from './errors.js'

const CLUSTER_AUTH_SKEW_MS = 5 * 60 * 1000

function hmac (secret: string, data: string): string {
  return createHmac('sha256', secret).update(data).digest('base64url')
}

function safeEqual (a: string, b: string): boolean {
  const ab = Buffer.from(a)
  const bb = Buffer.from(b)
  return ab.length === bb.length && timingSafeEqual(ab, bb)
}

/**
 * DataServer -> NameServer authentication header: `<wallMs>.<hmac(secret, "cluster:" +
 * wallMs + ":" + id)>`. The timestamp bounds replay; the id binds it to one server.
 */
export function signClusterAuth (secret: string, id: string, wallNow: number): string {
  const ts = String(Math.floor(wallNow))
  return `${ts}.${encodeURIComponent(id)}.${hmac(secret, `cluster:${ts}:${id}`)}`
}

/** Returns the DataServer id the header was made for; throws UNAUTHORIZED otherwise. */
export function verifyClusterAuth (secret: string, header: unknown, wallNow: number): string {
  if (typeof header !== 'string' || header.length > 1024) throw new HissError('UNAUTHORIZED')
  const parts = header.split('.')
  if (parts.length !== 3) throw new HissError('UNAUTHORIZED')
  const [ts, encId, mac] = parts as [string, string, string]
  const t = Number(ts)
  if (!/^\d{1,16}$/.test(ts) || Math.abs(wallNow - t) > CLUSTER_AUTH_SKEW_MS) throw new HissError('UNAUTHORIZED', 'cluster authentication failed: stale or malformed timestamp')
  let id: string
  try { id = decodeURIComponent(encId) } catch { throw new HissError('UNAUTHORIZED') }
  if (!safeEqual(mac, hmac(secret, `cluster:${ts}:${id}`))) throw new HissError('UNAUTHORIZED')
  return id
}

export type BlockAccess = 'r' | 'w'

export interface BlockTokenClaims {
  /** Block id. */
  b: number
  /** Generation stamp. */
  g: number
  /** Access mode. */
  a: BlockAccess
  /** Expiry, wall-clock ms since the epoch. */
  e: number
  /**
   * Update tokens only (patch of an existing replica in place): the generations a
   * replica may hold for the update to `g` to apply to it. A token without it cannot
   * patch anything.
   */
  f?: number[]
}

/** A block access token: base64url(JSON claims) + "." + HMAC. */
export function signBlockToken (secret: string, claims: BlockTokenClaims): string {
  const body: BlockTokenClaims = { b: claims.b, g: claims.g, a: claims.a, e: claims.e }
  if (claims.f !== undefined) body.f = claims.f
  const payload = Buffer.from(JSON.stringify(body)).toString('base64url')
  return `${payload}.${hmac(secret, `block:${payload}`)}`
}

/**
 * Check a token for one block, generation and access. Throws BAD_TOKEN (403) when the
 * token is missing, forged, expired, for another block or generation, or for the
 * wrong access. A write token also allows reading (the pipeline re-reads nothing, but
 * replication reads with its own token).
 */
export function verifyBlockToken (secret: string, token: unknown, want: { b: number, g: number, a: BlockAccess }, wallNow: number): BlockTokenClaims {
  if (typeof token !== 'string' || token.length === 0) throw new HissError('BAD_TOKEN', 'block access token refused: missing')
  if (token.length > 2048) throw new HissError('BAD_TOKEN', 'block access token refused: malformed')
  const dot = token.indexOf('.')
  if (dot <= 0) throw new HissError('BAD_TOKEN', 'block access token refused: malformed')
  const payload = token.slice(0, dot)
  const mac = token.slice(dot + 1)
  if (!safeEqual(mac, hmac(secret, `block:${payload}`))) throw new HissError('BAD_TOKEN', 'block access token refused: bad signature')
  let claims: BlockTokenClaims
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as BlockTokenClaims
  } catch {
    throw new HissError('BAD_TOKEN', 'block access token refused: malformed')
  }
  if (claims.e < wallNow) throw new HissError('BAD_TOKEN', 'block access token refused: expired')
  if (claims.b !== want.b || claims.g !== want.g) throw new HissError('BAD_TOKEN', 'block access token refused: issued for another block')
  if (want.a === 'w' && claims.a !== 'w') throw new HissError('BAD_TOKEN', 'block access token refused: read token used for a write')
  return claims
}
