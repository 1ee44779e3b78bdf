// /v1/ns: the client-facing namespace and write API. Thin: parse, call the core, reply.
import { Router, type Request } from 'express'
import { HissError } from '../common/errors.js'
import { normalizePath, parentOf } from '../common/paths.js'
import type { CreateReply, DeleteReply } from '../common/protocol.js'
import { jsonBody } from '../common/http-server.js'
import type { NameServerCore } from './core.js'
import { clientHost, identityFrom } from './request-identity.js'
import * as s from './schemas.js'

function query<S extends Parameters<typeof s.parse>[0]> (schema: S, req: Request): ReturnType<typeof s.parse<S>> {
  return s.parse(schema, req.query)
}

export function nsRouter (core: NameServerCore): Router {
  const r = Router()
  const ns = core.ns
  r.use(jsonBody())

  r.get('/stat', (req, res) => {
    const q = query(s.statQuery, req)
    res.json({ stat: ns.stat(normalizePath(q.path), identityFrom(req), s.isTrue(q.nofollow)) })
  })
  r.get('/list', (req, res) => {
    const q = query(s.pathQuery, req)
    res.json({ entries: ns.list(normalizePath(q.path), identityFrom(req)) })
  })
  r.get('/blocks', (req, res) => {
    const q = query(s.blocksQuery, req)
    if ((q.path === undefined) === (q.ino === undefined)) throw HissError.BAD_REQUEST('give exactly one of path and ino')
    if ((q.offset === undefined) !== (q.length === undefined)) throw HissError.BAD_REQUEST('give both offset and length, or neither')
    const range = q.offset === undefined ? undefined : { offset: Number(q.offset), length: Number(q.length) }
    const target = q.path !== undefined ? { path: normalizePath(q.path) } : { ino: Number(q.ino) }
    res.json(core.readPlan(target, identityFrom(req), range, clientHost(req)))
  })
  r.get('/readlink', (req, res) => {
    const q = query(s.pathQuery, req)
    res.json({ target: ns.readlink(normalizePath(q.path), identityFrom(req)) })
  })
  r.get('/statfs', (req, res) => {
    query(s.emptyQuery, req)
    res.json(core.statfs())
  })
  r.get('/du', (req, res) => {
    const q = query(s.pathQuery, req)
    res.json(ns.du(normalizePath(q.path), identityFrom(req)))
  })

  r.post('/mkdir', (req, res) => {
    const b = s.parse(s.mkdirBody, req.body)
    res.json({ stat: ns.mkdir(normalizePath(b.path), identityFrom(req), b.mode, b.parents === true) })
  })
  r.post('/create', (req, res) => {
    const b = s.parse(s.createBody, req.body)
    const who = identityFrom(req)
    const stat = ns.create(normalizePath(b.path), who, b.mode, b.exclusive === true)
    if (b.openWrite === undefined) { res.json({ stat }); return }
    // The file exists now whatever follows: a write we cannot open here (e.g. a mode
    // without owner write) is left to a later /write/open, never failing the create.
    const reply: CreateReply = { stat }
    try {
      reply.write = core.writes.open({ ino: stat.ino, clientId: b.openWrite.clientId }, who, clientHost(req))
      if (b.openWrite.allocate === true) reply.block = core.writes.addBlock(reply.write.writeId)
    } catch {}
    res.json(reply)
  })
  r.post('/delete', (req, res) => {
    const b = s.parse(s.deleteBody, req.body)
    const path = normalizePath(b.path)
    const who = identityFrom(req)
    ns.delete(path, who, b.recursive === true)
    const reply: DeleteReply = { deleted: true }
    if (b.parent === true) {
      try { reply.parent = ns.stat(parentOf(path), who) } catch {}
    }
    res.json(reply)
  })
  r.post('/rename', (req, res) => {
    const b = s.parse(s.renameBody, req.body)
    res.json({ stat: ns.rename(normalizePath(b.src), normalizePath(b.dst), identityFrom(req), b.noReplace === true) })
  })
  r.post('/symlink', (req, res) => {
    const b = s.parse(s.symlinkBody, req.body)
    res.json({ stat: ns.symlink(normalizePath(b.path), b.target, identityFrom(req)) })
  })
  r.post('/setattr', (req, res) => {
    const b = s.parse(s.setattrBody, req.body)
    const { path, nofollow, ...attrs } = b
    res.json({ stat: ns.setattr(normalizePath(path), identityFrom(req), attrs, nofollow !== true) })
  })
  r.post('/setrep', (req, res) => {
    const b = s.parse(s.setrepBody, req.body)
    res.json({ files: ns.setrep(normalizePath(b.path), identityFrom(req), b.replication) })
  })

  r.post('/write/open', (req, res) => {
    const b = s.parse(s.writeOpenBody, req.body)
    const open = { ...b, path: b.path === undefined ? undefined : normalizePath(b.path) }
    res.json(core.writes.open(open, identityFrom(req), clientHost(req)))
  })
  r.post('/write/addblock', (req, res) => {
    const b = s.parse(s.addBlockBody, req.body)
    res.json(core.writes.addBlock(b.writeId, b.exclude))
  })
  r.post('/write/updateblock', (req, res) => {
    const b = s.parse(s.updateBlockBody, req.body)
    res.json(core.updates.begin(b.writeId, b.block))
  })
  r.post('/write/commit', async (req, res) => {
    const b = s.parse(s.commitBody, req.body)
    const stat = await core.writes.commit({
      writeId: b.writeId,
      blocks: b.blocks,
      size: b.size,
      ...(b.mtimeNs === undefined ? {} : { mtimeNs: b.mtimeNs }),
      ...(b.keepOpen === undefined ? {} : { keepOpen: b.keepOpen }),
    })
    res.json({ stat })
  })
  r.post('/write/abort', (req, res) => {
    const b = s.parse(s.abortBody, req.body)
    core.writes.abort(b.writeId)
    res.json({ aborted: true })
  })
  r.post('/write/renew', (req, res) => {
    const b = s.parse(s.renewBody, req.body)
    res.json({ renewed: core.writes.renew(b.clientId) })
  })
  r.post('/badblock', (req, res) => {
    const b = s.parse(s.badBlockBody, req.body)
    core.dataservers.badBlock(b)
    res.json({ ok: true })
  })
  return r
}
