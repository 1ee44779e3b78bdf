// /v1/ns: the client-facing namespace and write API. Thin: parse, call the core, reply.
// One route table serves both the fast dispatch (fastJsonDispatch, the common case) and
// the regular Express Router (everything else), so both answer alike.
import type { Request, Router } from 'express'
import { HissError } from '../common/errors.js'
import { normalizePath, parentOf } from '../common/paths.js'
import type { CreateReply, DeleteReply, ListReply } from '../common/protocol.js'
import { jsonRouter, type JsonRoute } from '../common/http-server.js'
import type { NameServerCore } from './core.js'
import { clientHost, identityFrom } from './request-identity.js'
import * as s from './schemas.js'

export const NS_MOUNT = '/v1/ns'

export function nsRoutes (core: NameServerCore): JsonRoute[] {
  const ns = core.ns
  const get = (path: string, handler: (req: Request, q: unknown) => unknown): JsonRoute => ({ method: 'GET', path, handler })
  const post = (path: string, handler: (req: Request, b: unknown) => unknown): JsonRoute => ({ method: 'POST', path, handler })
  return [
    get('/stat', (req, query) => {
      const q = s.parse(s.statQuery, query)
      return { stat: ns.stat(normalizePath(q.path), identityFrom(req), s.isTrue(q.nofollow)) }
    }),
    get('/list', (req, query): ListReply => {
      const q = s.parse(s.listQuery, query)
      if (q.after !== undefined && q.from !== undefined) throw HissError.BAD_REQUEST('give at most one of after and from')
      const limit = q.limit === undefined ? undefined : Number(q.limit)
      if (limit === 0) throw HissError.BAD_REQUEST('limit must be at least 1')
      const start = q.after !== undefined ? { after: q.after } : q.from !== undefined ? { from: q.from } : undefined
      return ns.listPage(normalizePath(q.path), identityFrom(req), { start, limit })
    }),
    get('/blocks', (req, query) => {
      const q = s.parse(s.blocksQuery, query)
      if ((q.path === undefined) === (q.ino === undefined)) throw HissError.BAD_REQUEST('give exactly one of path and ino')
      if ((q.offset === undefined) !== (q.length === undefined)) throw HissError.BAD_REQUEST('give both offset and length, or neither')
      const range = q.offset === undefined ? undefined : { offset: Number(q.offset), length: Number(q.length) }
      const target = q.path !== undefined ? { path: normalizePath(q.path) } : { ino: Number(q.ino) }
      return core.readPlan(target, identityFrom(req), range, clientHost(req))
    }),
    get('/readlink', (req, query) => {
      const q = s.parse(s.pathQuery, query)
      return { target: ns.readlink(normalizePath(q.path), identityFrom(req)) }
    }),
    get('/statfs', (_req, query) => {
      s.parse(s.emptyQuery, query)
      return core.statfs()
    }),
    get('/du', (req, query) => {
      const q = s.parse(s.pathQuery, query)
      return ns.du(normalizePath(q.path), identityFrom(req))
    }),

    post('/mkdir', (req, body) => {
      const b = s.parse(s.mkdirBody, body)
      return { stat: ns.mkdir(normalizePath(b.path), identityFrom(req), b.mode, b.parents === true) }
    }),
    post('/create', (req, body) => {
      const b = s.parse(s.createBody, body)
      const who = identityFrom(req)
      const stat = ns.create(normalizePath(b.path), who, b.mode, b.exclusive === true)
      if (b.openWrite === undefined) return { stat }
      // The file exists now whatever follows: a write we cannot open here (e.g. a mode
      // without owner write) is left to a later /write/open, never failing the create.
      const reply: CreateReply = { stat }
      try {
        reply.write = core.writes.open({ ino: stat.ino, clientId: b.openWrite.clientId }, who, clientHost(req))
        if (b.openWrite.allocate === true) reply.block = core.writes.addBlock(reply.write.writeId)
      } catch {}
      return reply
    }),
    post('/delete', (req, body) => {
      const b = s.parse(s.deleteBody, body)
      const path = normalizePath(b.path)
      const who = identityFrom(req)
      ns.delete(path, who, b.recursive === true)
      const reply: DeleteReply = { deleted: true }
      if (b.parent === true) {
        try { reply.parent = ns.stat(parentOf(path), who) } catch {}
      }
      return reply
    }),
    post('/rename', (req, body) => {
      const b = s.parse(s.renameBody, body)
      return { stat: ns.rename(normalizePath(b.src), normalizePath(b.dst), identityFrom(req), b.noReplace === true) }
    }),
    post('/symlink', (req, body) => {
      const b = s.parse(s.symlinkBody, body)
      return { stat: ns.symlink(normalizePath(b.path), b.target, identityFrom(req)) }
    }),
    post('/setattr', (req, body) => {
      const b = s.parse(s.setattrBody, body)
      const { path, nofollow, ...attrs } = b
      return { stat: ns.setattr(normalizePath(path), identityFrom(req), attrs, nofollow !== true) }
    }),
    post('/setrep', (req, body) => {
      const b = s.parse(s.setrepBody, body)
      return { files: ns.setrep(normalizePath(b.path), identityFrom(req), b.replication) }
    }),

    post('/write/open', (req, body) => {
      const b = s.parse(s.writeOpenBody, body)
      const open = { ...b, path: b.path === undefined ? undefined : normalizePath(b.path) }
      return core.writes.open(open, identityFrom(req), clientHost(req))
    }),
    post('/write/addblock', (_req, body) => {
      const b = s.parse(s.addBlockBody, body)
      return core.writes.addBlock(b.writeId, b.exclude)
    }),
    post('/write/updateblock', (_req, body) => {
      const b = s.parse(s.updateBlockBody, body)
      return core.updates.begin(b.writeId, b.block)
    }),
    post('/write/commit', async (_req, body) => {
      const b = s.parse(s.commitBody, body)
      const stat = await core.writes.commit({
        writeId: b.writeId,
        blocks: b.blocks,
        size: b.size,
        ...(b.mtimeNs === undefined ? {} : { mtimeNs: b.mtimeNs }),
        ...(b.mode === undefined ? {} : { mode: b.mode }),
        ...(b.uid === undefined ? {} : { uid: b.uid }),
        ...(b.gid === undefined ? {} : { gid: b.gid }),
        ...(b.keepOpen === undefined ? {} : { keepOpen: b.keepOpen }),
      })
      return { stat }
    }),
    post('/write/abort', (_req, body) => {
      const b = s.parse(s.abortBody, body)
      core.writes.abort(b.writeId)
      return { aborted: true }
    }),
    post('/write/renew', (_req, body) => {
      const b = s.parse(s.renewBody, body)
      return { renewed: core.writes.renew(b.clientId) }
    }),
    post('/badblock', (_req, body) => {
      const b = s.parse(s.badBlockBody, body)
      core.dataservers.badBlock(b)
      return { ok: true }
    }),
  ]
}

/** The regular Router for the table (requests the fast dispatch leaves alone). */
export function nsRouter (core: NameServerCore, routes: readonly JsonRoute[] = nsRoutes(core)): Router {
  return jsonRouter(routes)
}
