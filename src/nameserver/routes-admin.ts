// /v1/admin: cluster report and fsck (also the CLI's --json output).
import { Router } from 'express'
import { normalizePath } from '../common/paths.js'
import type { NameServerCore } from './core.js'
import { clusterReport, fsck } from './admin.js'
import { identityFrom } from './request-identity.js'
import * as s from './schemas.js'

export function adminRouter (core: NameServerCore): Router {
  const r = Router()
  r.get('/report', (req, res) => {
    s.parse(s.emptyQuery, req.query)
    res.json(clusterReport(core))
  })
  r.get('/fsck', (req, res) => {
    const q = s.parse(s.fsckQuery, req.query)
    const path = normalizePath(q.path ?? '/')
    res.json(fsck(core, path, identityFrom(req)))
  })
  return r
}
