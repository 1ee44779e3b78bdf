// Shared HTTP plumbing for the NameServer and DataServer: JSON limits, the single
// error middleware, hardened server timeouts, TLS, and listen/close with the real
// address (port 0 is legal everywhere).
import http from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { readFileSync } from 'node:fs'
import express, { type Express, type Request, type Response, type NextFunction } from 'express'
import { HissError, isHissError } from './errors.js'
import type { Logger } from './log.js'

export const JSON_BODY_LIMIT = '4mb'

export interface TlsFiles { cert?: string | undefined, key?: string | undefined, ca?: string | undefined }

export function createJsonApp (): Express {
  const app = express()
  app.disable('x-powered-by')
  app.set('etag', false)
  app.set('query parser', 'simple')
  return app
}

/** JSON body parser that turns parse failures into BAD_REQUEST/TOO_LARGE HissErrors. */
export function jsonBody (limit: string = JSON_BODY_LIMIT): express.RequestHandler {
  const parser = express.json({ limit, strict: true, type: () => true })
  return (req, res, next) => {
    parser(req, res, (err?: unknown) => {
      if (err === undefined || err === null) { next(); return }
      const e = err as { type?: string, status?: number }
      if (e.type === 'entity.too.large') next(HissError.from('TOO_LARGE', `body over ${limit}`))
      else next(HissError.BAD_REQUEST('body is not valid JSON'))
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
}

export async function listen (app: Express, opts: ListenOptions): Promise<RunningServer> {
  const serverOpts: http.ServerOptions = {
    headersTimeout: opts.headersTimeoutMs ?? 10000,
    requestTimeout: opts.requestTimeoutMs ?? 0,
    maxHeaderSize: 16 * 1024,
    keepAliveTimeout: 5000,
  }
  const server: http.Server = opts.tls?.cert !== undefined && opts.tls.key !== undefined
    ? https.createServer({ ...serverOpts, cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key) }, app)
    : http.createServer(serverOpts, app)
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
