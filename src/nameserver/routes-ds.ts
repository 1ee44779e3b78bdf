// /v1/ds: the DataServer-facing API. Every call carries the cluster authentication
// header; a failure is a 401 and a warning naming the remote address and the id it
// claimed (never the secret or the header). The body's id must be the authenticated one.
import { Router, type Request, type RequestHandler } from 'express'
import { verifyClusterAuth } from '../common/auth.js'
import { HissError } from '../common/errors.js'
import { jsonBody } from '../common/http-server.js'
import { HEADER_CLUSTER_AUTH } from '../common/protocol.js'
import type { NameServerCore } from './core.js'
import * as s from './schemas.js'

/** Full block reports list every replica of a DataServer: allow large bodies. */
const REPORT_BODY_LIMIT = '64mb'

function claimedId (header: unknown): string | undefined {
  if (typeof header !== 'string') return undefined
  const part = header.split('.')[1]
  if (part === undefined) return undefined
  try { return decodeURIComponent(part).slice(0, 100) } catch { return part.slice(0, 100) }
}

export function dsRouter (core: NameServerCore): Router {
  const r = Router()
  const ds = core.dataservers
  const locals = new WeakMap<Request, string>()

  const auth: RequestHandler = (req, _res, next) => {
    const header = req.get(HEADER_CLUSTER_AUTH)
    try {
      locals.set(req, verifyClusterAuth(core.secret, header, core.clock.wallNow()))
    } catch (err) {
      core.log.warn('dataserver authentication failed', { remote: req.socket.remoteAddress, claimedId: claimedId(header), path: req.path })
      throw err
    }
    next()
  }
  /** The body must speak for the DataServer that authenticated. */
  const sameId = (req: Request, id: string): void => {
    if (locals.get(req) !== id) {
      core.log.warn('dataserver authentication failed: id mismatch', { remote: req.socket.remoteAddress, claimedId: id.slice(0, 100) })
      throw new HissError('UNAUTHORIZED')
    }
  }

  r.use(auth)
  r.use(jsonBody(REPORT_BODY_LIMIT))
  r.post('/register', (req, res) => {
    const b = s.parse(s.registerBody, req.body)
    sameId(req, b.id)
    res.json(ds.register(b))
  })
  r.post('/heartbeat', (req, res) => {
    const b = s.parse(s.heartbeatBody, req.body)
    sameId(req, b.id)
    res.json(ds.heartbeat(b))
  })
  r.post('/blockreport', (req, res) => {
    const b = s.parse(s.blockReportBody, req.body)
    sameId(req, b.id)
    ds.blockReport(b)
    res.json({ ok: true })
  })
  r.post('/incremental', (req, res) => {
    const b = s.parse(s.incrementalBody, req.body)
    sameId(req, b.id)
    ds.incremental(b)
    res.json({ ok: true })
  })
  r.post('/unregister', (req, res) => {
    const b = s.parse(s.unregisterBody, req.body)
    sameId(req, b.id)
    ds.unregister(b.id)
    res.json({ ok: true })
  })
  return r
}
