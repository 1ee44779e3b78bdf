// Shared HTTP plumbing for the NameServer and DataServer: JSON limits, the single
// error middleware, JSON route tables with a fast dispatch for small requests, hardened
// server timeouts, TLS, and listen/close with the real address (port 0 is legal
// everywhere).
import http, { type ServerResponse } from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { parse as parseQueryString } from 'node:querystring'
import { readFileSync } from 'node:fs'
import express, { Router, type Express, type Request, type Response, type NextFunction, type RequestHandler } from 'express'
import { HissError, isHissError } from './errors.js'
import type { Logger } from './log.js'

export const JSON_BODY_LIMIT = '4mb'

export interface TlsFiles { cert?: string | undefined, key?: string | undefined, ca?: string | undefined }

export function createJsonApp (): Express {
  const app = express()
  app.disable('x-powered-by')
  app.set('etag', false)
  app.set('query parser', 'simple')
  app.use(frontErrorLayer)
  return app
}

/** Where a front handler's error waits for the app's error middleware (see withFront). */
const FRONT_ERROR = Symbol('front handler error')
type FrontRequest = Request & { [FRONT_ERROR]?: unknown }

/** The first layer of every createJsonApp: hands a front handler's error to the error middleware. */
function frontErrorLayer (req: Request, _res: Response, next: NextFunction): void {
  const err = (req as FrontRequest)[FRONT_ERROR]
  if (err === undefined) { next(); return }
  ;(req as FrontRequest)[FRONT_ERROR] = undefined
  next(err)
}

/**
 * The server's request listener with `front` (a fastJsonDispatch) run before the Express
 * app: the requests it answers skip Express's router and its query and init layers (a
 * NameServer stat: ~10% less server CPU, measured with bench/ns-micro.mjs). What it
 * passes on (next()) goes to the app as it came; what it fails (next(err)) goes to the
 * app too, whose first layer (frontErrorLayer) sends it to the app's error middleware.
 * Requests and responses already have the app's prototypes (expressMessageClasses).
 */
export function withFront (app: Express, front: RequestHandler): http.RequestListener {
  return (req, res) => {
    const r = req as FrontRequest
    void front(r, res as Response, (err?: unknown) => {
      if (err !== undefined && err !== null) r[FRONT_ERROR] = err
      app(r, res)
    })
  }
}

/** What a body that is not JSON gets, from body-parser (jsonBody) or the fast dispatch. */
function invalidJson (): HissError { return HissError.BAD_REQUEST('body is not valid JSON') }

/** JSON body parser that turns parse failures into BAD_REQUEST/TOO_LARGE HissErrors. */
export function jsonBody (limit: string = JSON_BODY_LIMIT): express.RequestHandler {
  const parser = express.json({ limit, strict: true, type: () => true })
  return (req, res, next) => {
    parser(req, res, (err?: unknown) => {
      if (err === undefined || err === null) { next(); return }
      const e = err as { type?: string, status?: number }
      if (e.type === 'entity.too.large') next(HissError.from('TOO_LARGE', `body over ${limit}`))
      else next(invalidJson())
    })
  }
}

/** The one error middleware: status from the error table; non-HissErrors are bugs. */
export function errorMiddleware (log: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    let he: HissError
    if (isHissError(err)) {
      he = err
      log.debug('request failed', { method: req.method, path: req.path, code: he.code, message: he.message })
    } else {
      const status = (err as { status?: number, statusCode?: number })?.status ?? (err as { statusCode?: number })?.statusCode
      if (typeof status === 'number' && status >= 400 && status < 500) {
        he = HissError.BAD_REQUEST((err as Error).message)
      } else {
        log.error('internal error', { method: req.method, path: req.path, err: err as Error })
        he = HissError.INTERNAL()
      }
    }
    if (res.headersSent) { res.destroy(); return }
    res.status(he.http).json(he.toJSON())
  }
}

/**
 * One JSON endpoint: `input` is the parsed query string (GET) or JSON body (POST;
 * undefined when there is none); the handler returns the reply body, or a promise of it,
 * or throws (a HissError becomes its 4xx/5xx reply).
 */
export interface JsonRoute {
  method: 'GET' | 'POST'
  path: string
  handler: (req: Request, input: unknown) => unknown
}

/** An Express Router serving a route table: bodies through jsonBody, replies through res.json. */
export function jsonRouter (routes: readonly JsonRoute[], bodyLimit: string = JSON_BODY_LIMIT): Router {
  const r = Router()
  r.use(jsonBody(bodyLimit))
  for (const route of routes) {
    const h = route.handler
    const handle: RequestHandler = route.method === 'GET'
      ? async (req, res) => { res.json(await h(req, req.query)) }
      : async (req, res) => { res.json(await h(req, req.body as unknown)) }
    if (route.method === 'GET') r.get(route.path, handle)
    else r.post(route.path, handle)
  }
  return r
}

/** Express's JSON reply (res.json), written directly: same status line, headers and body. */
export function sendJson (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.statusCode = status
  res.setHeader('Content-Type', 'application/json; charset=utf-8')
  res.setHeader('Content-Length', Buffer.byteLength(text))
  res.end(text)
}

/** Bodies the fast dispatch reads itself; anything larger goes through body-parser. */
export const FAST_BODY_LIMIT = 64 * 1024
const UTF8_BOM = 0xfeff

/**
 * Whether the fast path can read this body exactly as jsonBody would: a declared small
 * length, no transfer or content coding, no charset to convert. Everything else (chunked
 * or compressed bodies, other charsets, large bodies) is left to body-parser.
 */
function plainSmallBody (req: Request): boolean {
  const h = req.headers
  if (h['transfer-encoding'] !== undefined || h['content-encoding'] !== undefined) return false
  const ct = h['content-type']
  if (ct !== undefined && ct.toLowerCase().includes('charset')) return false
  const cl = h['content-length']
  return cl === undefined || (cl.length <= 6 && Number(cl) <= FAST_BODY_LIMIT)
}

function hasBody (req: Request): boolean {
  const cl = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0')
}

/**
 * Parse a small JSON body as jsonBody (body-parser, strict) does: no body is undefined,
 * an empty one {}, a leading BOM is dropped, and only an object or array is accepted.
 */
function parseJsonBody (buf: Buffer): unknown {
  if (buf.length === 0) return {}
  let text = buf.toString('utf8')
  if (text.charCodeAt(0) === UTF8_BOM) text = text.slice(1)
  const first = /^[\x20\x09\x0a\x0d]*(.)/.exec(text)?.[1]
  if (first !== '{' && first !== '[') throw invalidJson()
  try {
    return JSON.parse(text) as unknown
  } catch {
    throw invalidJson()
  }
}

/**
 * The replies of a fast-dispatched route go through this (the NameServer holds them
 * until its namespace is durable); sendJson when nothing has to wait.
 */
export type JsonReplier = (res: ServerResponse, body: unknown) => void

/**
 * Fast dispatch inside Express for a JSON route table mounted at `mount`: GET and POST
 * requests whose path is exactly a route's are looked up in a Map (no walk over the
 * router's layers, no per-request middleware chain), their query or small body parsed
 * directly, and the reply written with sendJson. Errors go to the app's error
 * middleware with next(err), as from any route. Every other request (another method,
 * a path spelled differently, a large, chunked or compressed body) falls through
 * unchanged to the regular Router built from the same table (jsonRouter).
 */
export function fastJsonDispatch (mount: string, routes: readonly JsonRoute[], reply: JsonReplier = (res, body) => { sendJson(res, 200, body) }): RequestHandler {
  const gets = new Map<string, JsonRoute['handler']>()
  const posts = new Map<string, JsonRoute['handler']>()
  for (const r of routes) (r.method === 'GET' ? gets : posts).set(mount + r.path, r.handler)
  // A handler's error, or the reply's (a body JSON cannot encode), goes to next(err), as
  // the Router's async handlers do: never an unhandled rejection.
  const finish = (handler: JsonRoute['handler'], req: Request, res: Response, next: NextFunction, input: unknown): void => {
    try {
      const out = handler(req, input)
      if (out instanceof Promise) out.then(body => { reply(res, body) }).catch(next)
      else reply(res, out)
    } catch (err) {
      next(err)
    }
  }
  return (req, res, next) => {
    const url = req.url
    const q = url.indexOf('?')
    const path = q < 0 ? url : url.slice(0, q)
    const method = req.method
    if (method === 'GET') {
      const handler = gets.get(path)
      // A GET with a body is rare: the Router (jsonBody) parses and checks it as ever.
      if (handler === undefined || hasBody(req)) { next(); return }
      // The same parse as Express's "simple" query parser (req.query).
      finish(handler, req, res, next, parseQueryString(q < 0 ? '' : url.slice(q + 1)))
      return
    }
    if (method !== 'POST') { next(); return }
    const handler = posts.get(path)
    if (handler === undefined || !plainSmallBody(req)) { next(); return }
    if (req.headers['content-length'] === undefined) { finish(handler, req, res, next, undefined); return }
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => { chunks.push(c) })
    req.on('error', () => { /* the client went away: nobody to answer */ })
    req.on('end', () => {
      let body: unknown
      try {
        body = parseJsonBody(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks))
      } catch (err) {
        next(err)
        return
      }
      finish(handler, req, res, next, body)
    })
  }
}

export function notFoundHandler (req: Request, _res: Response, next: NextFunction): void {
  next(new HissError('NOT_FOUND', `no such endpoint: ${req.method} ${req.path.slice(0, 200)}`))
}

export interface RunningServer {
  server: http.Server
  /** host:port actually bound. */
  address: string
  port: number
  close (): Promise<void>
}

export interface ListenOptions {
  host: string
  port: number
  tls?: TlsFiles | undefined
  /** Max time to receive the request headers (slowloris defence). */
  headersTimeoutMs?: number
  /** Max time for a whole request; 0 disables (block streams may be long). */
  requestTimeoutMs?: number
  /** Idle socket timeout. */
  idleTimeoutMs?: number
  maxConnections?: number
  /** A handler run before the app for every request (see withFront). */
  front?: RequestHandler
}

/**
 * Request and response classes whose instances are born with the app's request and
 * response prototypes. Express's app.handle re-parents every req and res with
 * Object.setPrototypeOf (onto app.request / app.response). Done to objects Node built as
 * plain IncomingMessage/ServerResponse, that swap gives each one a fresh hidden class:
 * V8 then builds new maps and misses its inline caches all through Node's HTTP and
 * stream code (perf: Map::RawCopy, StoreIC_Miss, LoadIC_Megamorphic). Measured here, a
 * one-middleware Express app spent ~190 us of CPU per request against ~65 us for bare
 * node:http, and ~70 us with these classes. Born with the right prototype, the swap is a
 * no-op and Express behaves exactly as before. (Node's constructors are plain functions,
 * called on the new object; Reflect.construct with another new.target measured as slow
 * as the swap. Should a Node version make them classes, Express's default is kept.)
 */
export function expressMessageClasses (app: Express): Pick<http.ServerOptions, 'IncomingMessage' | 'ServerResponse'> {
  const isClass = (f: unknown): boolean => /^class\b/.test(Function.prototype.toString.call(f))
  if (isClass(http.IncomingMessage) || isClass(http.ServerResponse)) return {}
  type Ctor = (this: object, a: unknown, b?: unknown) => void
  const BaseRequest = http.IncomingMessage as unknown as Ctor
  const BaseResponse = http.ServerResponse as unknown as Ctor
  // (socket) and (req, options), as Node calls them.
  function AppRequest (this: object, socket: unknown): void { BaseRequest.call(this, socket) }
  AppRequest.prototype = app.request
  function AppResponse (this: object, req: unknown, options?: unknown): void { BaseResponse.call(this, req, options) }
  AppResponse.prototype = app.response
  return {
    IncomingMessage: AppRequest as unknown as typeof http.IncomingMessage,
    ServerResponse: AppResponse as unknown as typeof http.ServerResponse,
  }
}

export async function listen (app: Express, opts: ListenOptions): Promise<RunningServer> {
  const serverOpts: http.ServerOptions = {
    headersTimeout: opts.headersTimeoutMs ?? 10000,
    requestTimeout: opts.requestTimeoutMs ?? 0,
    maxHeaderSize: 16 * 1024,
    keepAliveTimeout: 5000,
    ...expressMessageClasses(app),
  }
  const listener: http.RequestListener = opts.front === undefined ? app : withFront(app, opts.front)
  const server: http.Server = opts.tls?.cert !== undefined && opts.tls.key !== undefined
    ? https.createServer({ ...serverOpts, cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key) }, listener)
    : http.createServer(serverOpts, listener)
  server.setTimeout(opts.idleTimeoutMs ?? 120000)
  if (opts.maxConnections !== undefined) server.maxConnections = opts.maxConnections
  // A bad request line or oversized headers must answer 4xx and never crash the daemon.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) { socket.destroy(); return }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request'
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port, opts.host, () => { server.off('error', reject); resolve() })
  })
  const ai = server.address() as AddressInfo
  const host = ai.family === 'IPv6' ? `[${ai.address}]` : ai.address
  let closing: Promise<void> | undefined
  return {
    server,
    address: `${host}:${ai.port}`,
    port: ai.port,
    close: () => {
      closing ??= new Promise<void>(resolve => {
        server.close(() => resolve())
        server.closeIdleConnections()
        // Streams in flight get a short grace period, then are cut.
        setTimeout(() => server.closeAllConnections(), 2000).unref()
      })
      return closing
    },
  }
}
