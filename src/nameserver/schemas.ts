// Every request body and query the NameServer accepts, as strict zod schemas: unknown
// fields, wrong types and out-of-range numbers are a 400 BAD_REQUEST before any handler
// runs. Paths are checked further with normalizePath by the handlers.
import { z } from 'zod'
import { HissError } from '../common/errors.js'
import { MAX_NAME_BYTES, MAX_PATH_BYTES } from '../common/paths.js'

const MAX_U32 = 0xffffffff
export const path = z.string().max(MAX_PATH_BYTES * 2)
const mode = z.number().int().min(0).max(0o7777)
const id32 = z.number().int().min(0).max(MAX_U32)
const num = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
const timeNs = z.string().regex(/^\d{1,20}$/, 'expected a decimal nanosecond time')
const replication = z.number().int().min(1).max(32)
const blockLength = z.number().int().min(0).max(2 ** 32)
const clientId = z.string().min(1).max(256)
const writeId = z.string().min(1).max(128)
const dsId = z.string().min(1).max(256)
// A port outside 1-65535 would be handed to clients as a write target and fail there.
const address = z.string().max(300).regex(/^[A-Za-z0-9.\-_:[\]]+:\d{1,5}$/, 'expected host:port')
  .refine(a => { const p = Number(a.slice(a.lastIndexOf(':') + 1)); return p >= 1 && p <= 65535 }, 'port must be 1-65535')
/** Storage numbers come from statfs; tolerate floats and clamp negatives rather than refuse a heartbeat. */
const storageNum = z.number().finite().transform(v => Math.max(0, Math.floor(v)))

export const mkdirBody = z.object({ path, mode: mode.optional(), parents: z.boolean().optional() }).strict()
export const createBody = z.object({
  path,
  mode: mode.optional(),
  exclusive: z.boolean().optional(),
  openWrite: z.object({ clientId, allocate: z.boolean().optional() }).strict().optional(),
}).strict().refine(b => b.openWrite === undefined || b.exclusive === true, 'openWrite needs exclusive')
export const deleteBody = z.object({ path, recursive: z.boolean().optional(), parent: z.boolean().optional() }).strict()
export const renameBody = z.object({ src: path, dst: path, noReplace: z.boolean().optional() }).strict()
export const symlinkBody = z.object({
  path,
  target: z.string().min(1).max(MAX_PATH_BYTES).refine(t => !t.includes('\0') && Buffer.byteLength(t) <= MAX_PATH_BYTES, 'bad symlink target'),
}).strict()
export const setattrBody = z.object({
  path,
  nofollow: z.boolean().optional(),
  mode: mode.optional(),
  uid: id32.optional(),
  gid: id32.optional(),
  atimeNs: timeNs.optional(),
  mtimeNs: timeNs.optional(),
}).strict()
export const setrepBody = z.object({ path, replication }).strict()

export const writeOpenBody = z.object({
  path: path.optional(),
  ino: num.optional(),
  clientId,
  create: z.boolean().optional(),
  overwrite: z.boolean().optional(),
  mode: mode.optional(),
  replication: replication.optional(),
  blockSize: z.number().int().min(4096).max(2 ** 32).optional(),
}).strict()
export const addBlockBody = z.object({ writeId, exclude: z.array(z.string().max(300)).max(1000).optional() }).strict()
export const commitBody = z.object({
  writeId,
  blocks: z.array(z.object({ id: num, gen: num, length: blockLength, zero: z.literal(true).optional() }).strict()).max(1_000_000),
  size: num,
  mtimeNs: timeNs.optional(),
  mode: mode.optional(),
  uid: id32.optional(),
  gid: id32.optional(),
  keepOpen: z.boolean().optional(),
}).strict()
export const updateBlockBody = z.object({ writeId, block: z.object({ id: num, gen: num }).strict() }).strict()
export const abortBody = z.object({ writeId }).strict()
export const renewBody = z.object({ clientId }).strict()
export const badBlockBody = z.object({ block: z.object({ id: num, gen: num }).strict(), dataserver: z.string().min(1).max(300) }).strict()

const storage = {
  capacity: storageNum,
  used: storageNum,
  remaining: storageNum,
  activeStreams: storageNum,
}
const tuple3 = z.tuple([num, num, blockLength])
const tuple2 = z.tuple([num, num])
export const registerBody = z.object({ id: dsId, address, ...storage }).strict()
export const heartbeatBody = z.object({ id: dsId, address, blocks: storageNum, ...storage }).strict()
export const blockReportBody = z.object({ id: dsId, blocks: z.array(tuple3) }).strict()
export const incrementalBody = z.object({
  id: dsId,
  received: z.array(tuple3).optional(),
  deleted: z.array(tuple2).optional(),
  corrupt: z.array(tuple2).optional(),
}).strict()
export const unregisterBody = z.object({ id: dsId }).strict()

const flag = z.enum(['0', '1', 'true', 'false']).optional()
const digits = z.string().regex(/^\d{1,15}$/, 'expected a non-negative integer')
export const pathQuery = z.object({ path }).strict()
/** A listing page's start: only compared with the names (it need not exist nor be a valid name). */
const startName = z.string().min(1).max(MAX_NAME_BYTES * 4)
export const listQuery = z.object({ path, after: startName.optional(), from: startName.optional(), limit: digits.optional() }).strict()
export const statQuery = z.object({ path, nofollow: flag }).strict()
export const blocksQuery = z.object({ path: path.optional(), ino: digits.optional(), offset: digits.optional(), length: digits.optional() }).strict()
export const emptyQuery = z.object({}).strict()
export const fsckQuery = z.object({ path: path.optional() }).strict()

export function isTrue (f: string | undefined): boolean { return f === '1' || f === 'true' }

function describe (err: z.ZodError): string {
  const i = err.issues[0]
  if (i === undefined) return 'invalid request'
  if (i.code === 'unrecognized_keys') return `unknown field ${i.keys.map(k => JSON.stringify(k.slice(0, 60))).join(', ')}`
  const where = i.path.length > 0 ? `field "${i.path.join('.')}": ` : ''
  return `${where}${i.message}`
}

/** Validate with a schema, or throw BAD_REQUEST naming the first problem. */
export function parse<S extends z.ZodTypeAny> (schema: S, value: unknown): z.output<S> {
  const r = schema.safeParse(value ?? {})
  if (!r.success) throw HissError.BAD_REQUEST(describe(r.error))
  return r.data
}
