// Who a namespace request comes from: the uid and groups the client asserts in headers
// (HDFS "simple" mode). Missing headers mean nobody; malformed ones are refused.
import type { Request } from 'express'
import { HissError } from '../common/errors.js'
import { HEADER_GIDS, HEADER_UID } from '../common/protocol.js'
import { NOBODY, type Identity } from './permissions.js'

// The 16 KiB header limit is the real bound; this only stops absurd lists early.
const MAX_GROUPS = 4096
const ID = /^\d{1,10}$/

function parseId (s: string, what: string): number {
  const v = Number(s)
  if (!ID.test(s) || v > 0xffffffff) throw HissError.BAD_REQUEST(`bad ${what} header`)
  return v
}

export function identityFrom (req: Request): Identity {
  const uidH = req.get(HEADER_UID)
  const gidsH = req.get(HEADER_GIDS)
  const uid = uidH === undefined ? NOBODY : parseId(uidH.trim(), HEADER_UID)
  let gids: number[] = [NOBODY]
  if (gidsH !== undefined && gidsH.trim() !== '') {
    const parts = gidsH.split(',')
    if (parts.length > MAX_GROUPS) throw HissError.BAD_REQUEST(`too many groups in ${HEADER_GIDS}`)
    gids = parts.map(p => parseId(p.trim(), HEADER_GIDS))
  }
  return { uid, gids }
}

/** The caller's host, for putting its local replicas first. */
export function clientHost (req: Request): string | undefined {
  const a = req.socket.remoteAddress
  if (a === undefined) return undefined
  return a.startsWith('::ffff:') ? a.slice(7) : a
}
