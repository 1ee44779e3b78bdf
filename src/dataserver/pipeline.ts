// Forwarding a block stream to the next DataServer of a write pipeline (HDFS style):
// the bytes go downstream as they arrive, with backpressure (we pull the next piece
// from upstream only once the downstream socket has room), and the downstream's
// WriteBlockReply tells who else stored the block. A failing downstream never fails
// this hop: it just ends up in `failed`.
import type http from 'node:http'
import { HissError } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import { HEADER_BLOCK_LENGTH, HEADER_PIPELINE, HEADER_PIPELINE_IDS, HEADER_TOKEN, HEADER_ZERO_LENGTH, type DataServerRef, type WriteBlockReply } from '../common/protocol.js'
import { readJsonReply } from './http-json.js'
import type { Transport } from './transport.js'

export const MAX_PIPELINE_HOPS = 16
const ADDRESS = /^[A-Za-z0-9.\-_:[\]]{1,255}:\d{1,5}$/
const DS_ID = /^[A-Za-z0-9._-]{1,128}$/

/** Next hops from the request headers; refuses anything malformed or looping back here. */
export function parsePipeline (addresses: string | undefined, ids: string | undefined, selfId: string): DataServerRef[] {
  const a = (addresses ?? '').trim()
  const i = (ids ?? '').trim()
  if (a === '' && i === '') return []
  const as = a === '' ? [] : a.split(',').map(s => s.trim())
  const is = i === '' ? [] : i.split(',').map(s => s.trim())
  if (as.length !== is.length) throw HissError.BAD_REQUEST(`${HEADER_PIPELINE} and ${HEADER_PIPELINE_IDS} differ in length`)
  if (as.length > MAX_PIPELINE_HOPS) throw HissError.BAD_REQUEST('pipeline too long')
  const out: DataServerRef[] = []
  for (let k = 0; k < as.length; k++) {
    const address = as[k]!
    const id = is[k]!
    // The port is range-checked too: Node throws synchronously on one over 65535, which
    // would fail this whole write with a 500 instead of refusing the header.
    const port = Number(address.slice(address.lastIndexOf(':') + 1))
    if (!ADDRESS.test(address) || port < 1 || port > 65535) throw HissError.BAD_REQUEST(`bad pipeline address ${JSON.stringify(address.slice(0, 100))}`)
    if (!DS_ID.test(id)) throw HissError.BAD_REQUEST('bad pipeline dataserver id')
    if (id === selfId || out.some(h => h.id === id)) throw HissError.BAD_REQUEST('pipeline names a dataserver twice')
    out.push({ address, id })
  }
  return out
}

export interface DownstreamOptions {
  transport: Transport
  hops: DataServerRef[]
  block: { id: number, gen: number }
  token: string
  /** Known length: sent as Content-Length so a truncated stream is detected downstream. */
  length?: number | undefined
  /** A block of this many zeros (HEADER_ZERO_LENGTH): an empty body, only end() it. */
  zeros?: number | undefined
  /** Idle timeout per hop; the wait scales with the hops behind the first one. */
  timeoutMs: number
  log: Logger
  /** Another block request than a PUT of the whole block (a patch). */
  method?: 'PUT' | 'POST'
  path?: string
  headers?: Record<string, string>
}

/** The PUT to the next hop. Its methods never reject: failure is a state. */
export class Downstream {
  private readonly req: http.ClientRequest
  private readonly log: Logger
  private readonly first: DataServerRef
  private dead = false
  private readonly reply: Promise<string[]>

  constructor (o: DownstreamOptions) {
    const [first, ...rest] = o.hops
    if (first === undefined) throw new Error('empty pipeline')
    this.first = first
    this.log = o.log
    const headers: http.OutgoingHttpHeaders = {
      ...o.headers,
      [HEADER_TOKEN]: o.token,
      'content-type': 'application/octet-stream',
    }
    if (rest.length > 0) {
      headers[HEADER_PIPELINE] = rest.map(h => h.address).join(',')
      headers[HEADER_PIPELINE_IDS] = rest.map(h => h.id).join(',')
    }
    if (o.zeros !== undefined) {
      headers[HEADER_ZERO_LENGTH] = String(o.zeros)
      headers['content-length'] = 0
    } else if (o.length !== undefined) {
      headers['content-length'] = o.length
      headers[HEADER_BLOCK_LENGTH] = String(o.length)
    }
    this.req = o.transport.request(first.address, {
      method: o.method ?? 'PUT',
      path: o.path ?? `/v1/blocks/${o.block.id}?gen=${o.block.gen}`,
      headers,
      idleTimeoutMs: o.timeoutMs * (1 + rest.length),
    })
    this.reply = new Promise<string[]>(resolve => {
      const fail = (err: unknown): void => {
        if (!this.dead) this.log.warn('pipeline downstream failed', { to: first.address, id: first.id, err: err as Error })
        this.dead = true
        this.req.destroy()
        resolve([])
      }
      this.req.on('error', fail)
      this.req.on('response', res => {
        readJsonReply<WriteBlockReply>(res).then(r => {
          const ok = r !== null && typeof r === 'object' && r.id === o.block.id && r.gen === o.block.gen && Array.isArray(r.stored)
          if (!ok) { fail(HissError.EIO('malformed downstream reply')); return }
          // Only ids that are part of this pipeline count: a reply cannot vouch for others.
          const allowed = new Set(o.hops.map(h => h.id))
          resolve(r.stored.filter((s): s is string => typeof s === 'string' && allowed.has(s)))
        }, fail)
      })
    })
  }

  get failed (): boolean { return this.dead }

  /** Forward one piece; resolves when the socket can take more (or the hop died). */
  async write (piece: Uint8Array): Promise<void> {
    if (this.dead) return
    if (this.req.write(piece)) return
    await new Promise<void>(resolve => {
      const done = (): void => {
        this.req.off('drain', done)
        this.req.off('close', done)
        this.req.off('error', done)
        resolve()
      }
      this.req.on('drain', done)
      this.req.on('close', done)
      this.req.on('error', done)
    })
  }

  end (): void { if (!this.dead) this.req.end() }

  /** Upstream failed: cut the downstream write so it drops its temp files too. */
  abort (): void {
    if (this.dead) return
    this.dead = true
    this.req.destroy()
  }

  /** Ids that stored the block (the first hop and whoever it reported), [] on failure. */
  result (): Promise<string[]> { return this.reply }

  get target (): DataServerRef { return this.first }
}

/** What forwarding needs of a downstream: one hop (Downstream) or several side by side (FanOut). */
export interface DownstreamLike {
  write (piece: Uint8Array): Promise<void>
  end (): void
  abort (): void
  result (): Promise<string[]>
}

/**
 * The same block sent to every hop at once, each as the last of its pipeline (star
 * instead of chain), for small blocks: the bytes are trivial, and the reply then waits
 * for one hop instead of a chain of them. A failing hop costs only itself: the others
 * still store the block (in a chain, the hops behind it would be lost too).
 */
export class FanOut implements DownstreamLike {
  private readonly hops: Downstream[]

  constructor (o: DownstreamOptions) {
    this.hops = o.hops.map(h => new Downstream({ ...o, hops: [h] }))
  }

  async write (piece: Uint8Array): Promise<void> { await Promise.all(this.hops.map(h => h.write(piece))) }
  end (): void { for (const h of this.hops) h.end() }
  abort (): void { for (const h of this.hops) h.abort() }
  async result (): Promise<string[]> { return (await Promise.all(this.hops.map(h => h.result()))).flat() }
}

/** A request body (or any byte stream) feeding a block write. */
export type BlockBody = AsyncIterable<Buffer> & {
  complete?: boolean
  iterator?: (opts: { destroyOnReturn: boolean }) => AsyncIterable<Buffer>
}

/**
 * The upstream body as an async iterable that also forwards each piece downstream
 * before handing it on. Fails if the body ends before it is complete; on any failure
 * (upstream, or the consumer giving up) the downstream is aborted.
 *
 * `holdUpTo` (a body of unknown length): the first pieces are held until either the body
 * ends within that many bytes - then the downstream is opened knowing the length, so a
 * small block is forwarded and stored as one of announced length - or it grows past it,
 * and everything held goes on at once (length still unknown). `openDownstream` gets the
 * length when known.
 */
export async function * forwardingSource (body: BlockBody, openDownstream?: (length?: number) => DownstreamLike, holdUpTo = 0): AsyncGenerator<Buffer> {
  let down: DownstreamLike | undefined
  let ok = false
  // Stopping early must not destroy an HTTP request: its socket would linger half-open
  // (never idle, never closed). The route drains the rest instead and answers.
  const pieces = body.iterator?.({ destroyOnReturn: false }) ?? body
  let held: Buffer[] | undefined = holdUpTo > 0 ? [] : undefined
  let heldBytes = 0
  try {
    if (held === undefined) down = openDownstream?.()
    for await (const piece of pieces) {
      if (held !== undefined) {
        held.push(piece)
        heldBytes += piece.length
        if (heldBytes <= holdUpTo) continue
        const out = held
        held = undefined
        down = openDownstream?.()
        for (const p of out) {
          if (down !== undefined) await down.write(p)
          yield p
        }
        continue
      }
      if (down !== undefined) await down.write(piece)
      yield piece
    }
    if (body.complete === false) throw HissError.EIO('request body ended early')
    if (held !== undefined) {
      const out = held
      held = undefined
      down = openDownstream?.(heldBytes)
      for (const p of out) {
        if (down !== undefined) await down.write(p)
        yield p
      }
    }
    ok = true
    down?.end()
  } finally {
    if (!ok) down?.abort()
  }
}
