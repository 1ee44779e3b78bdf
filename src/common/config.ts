// The configuration: one flat JSON object with dotted keys (the seed's style), validated
// once against a schema that holds every default, then frozen and passed into
// constructors. Library code never reads process.env or files for config.
import { readFileSync } from 'node:fs'
import { dirname, resolve, isAbsolute } from 'node:path'
import { z } from 'zod'
import { HissError } from './errors.js'
import { LOG_LEVELS } from './log.js'

const hostPort = z.string().regex(/^[A-Za-z0-9.\-_:[\]]+:\d{1,5}$/, 'expected host:port')
  .refine(a => Number(a.slice(a.lastIndexOf(':') + 1)) <= 65535, 'port must be 0-65535')
const ms = z.number().int().positive()
const bytes = z.number().int().nonnegative()

/** Every key, its type and its default. configs/README.md documents each one. */
export const configSchema = z.object({
  'nameserver.address': hostPort,
  'nameserver.root.dir': z.string().min(1).optional(),
  'nameserver.sync': z.enum(['full', 'normal']).default('full'),
  'dataserver.root.dir': z.string().min(1).optional(),
  'dataserver.address': hostPort.default('127.0.0.1:0'),
  'dataserver.reserved.bytes': bytes.default(0),
  'log.level': z.enum(LOG_LEVELS).default('warn'),
  'block.size': z.number().int().min(4096).max(2 ** 32).default(64 * 1024 * 1024),
  'checksum.chunk.bytes': z.number().int().min(512).max(1024 * 1024).default(64 * 1024),
  'replication': z.number().int().min(1).max(32).default(3),
  'replication.min': z.number().int().min(1).max(32).default(1),
  'replication.interval.ms': ms.default(3000),
  'replication.max.streams': z.number().int().min(1).max(64).default(4),
  'replication.pending.timeout.ms': ms.default(60000),
  'heartbeat.interval.ms': ms.default(3000),
  'heartbeat.dead.ms': ms.default(30000),
  'blockreport.interval.ms': ms.default(3600000),
  'scanner.interval.ms': ms.default(3600000),
  'lease.timeout.ms': ms.default(60000),
  'safemode.threshold': z.number().min(0).max(1).default(0.999),
  'safemode.extension.ms': z.number().int().nonnegative().default(5000),
  'token.lifetime.ms': ms.default(600000),
  'client.timeout.ms': ms.default(10000),
  'client.retry.ms': ms.default(20000),
  'cluster.secret': z.string().optional(),
  'security.insecure': z.boolean().default(false),
  'permissions.enabled': z.boolean().default(true),
  'permissions.superuser.uid': z.number().int().nonnegative().default(0),
  'permissions.supergroup.gid': z.number().int().nonnegative().optional(),
  'tls.cert': z.string().optional(),
  'tls.key': z.string().optional(),
  'tls.ca': z.string().optional(),
  'fuse.attr.timeout.ms': z.number().int().nonnegative().default(1000),
  'fuse.readahead.bytes': bytes.default(16 * 1024 * 1024),
  'fuse.cache.bytes': bytes.default(256 * 1024 * 1024),
}).strict()

export type HissConfigInput = z.input<typeof configSchema>
export type HissConfig = Readonly<z.output<typeof configSchema>>
export type ConfigKey = keyof HissConfig

const PATH_KEYS = ['nameserver.root.dir', 'dataserver.root.dir', 'tls.cert', 'tls.key', 'tls.ca'] as const

function describeIssue (issue: z.ZodIssue): string {
  const key = issue.path.join('.')
  if (issue.code === 'unrecognized_keys') return `unknown config key ${issue.keys.map(k => `"${k}"`).join(', ')}`
  if (issue.code === 'invalid_type' && issue.received === 'undefined') return `missing required config key "${key}"`
  return `config key "${key}": ${issue.message}`
}

function deepFreeze<T> (o: T): T {
  if (typeof o === 'object' && o !== null) {
    Object.freeze(o)
    for (const v of Object.values(o)) deepFreeze(v)
  }
  return o
}

/**
 * Validate raw config (defaults < raw < overrides). Throws a CONFIG HissError whose
 * message is one line naming the key. `baseDir` resolves relative directory keys.
 */
export function parseConfig (raw: unknown, overrides: Partial<HissConfigInput> = {}, baseDir?: string): HissConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new HissError('CONFIG', 'config must be a JSON object of dotted keys')
  }
  const merged: Record<string, unknown> = { ...(raw as Record<string, unknown>) }
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) merged[k] = v
  const result = configSchema.safeParse(merged)
  if (!result.success) {
    const first = result.error.issues[0]
    throw new HissError('CONFIG', first === undefined ? 'invalid config' : describeIssue(first))
  }
  const cfg: Record<string, unknown> = { ...result.data }
  if (baseDir !== undefined) {
    for (const k of PATH_KEYS) {
      const v = cfg[k]
      if (typeof v === 'string' && !isAbsolute(v)) cfg[k] = resolve(baseDir, v)
    }
  }
  const out = cfg as z.output<typeof configSchema>
  if (out['replication.min'] > out['replication']) {
    throw new HissError('CONFIG', 'config key "replication.min": must not exceed "replication"')
  }
  return deepFreeze(out)
}

/**
 * Read a config file. Relative directories in it are resolved against the current
 * working directory (so `make run` from the repo root finds ./data/...).
 */
export function loadConfigFile (file: string, overrides: Partial<HissConfigInput> = {}): HissConfig {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new HissError('CONFIG', `cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new HissError('CONFIG', `config file ${file} is not valid JSON: ${(err as Error).message}`)
  }
  void dirname
  return parseConfig(raw, overrides, process.cwd())
}

/**
 * Require the settings that the security model needs: a cluster secret of at least 16
 * bytes, unless `security.insecure` is set explicitly. Returns the secret to use
 * (a fixed development value in insecure mode, so tokens still have a form).
 */
export function requireSecret (cfg: HissConfig): string {
  const s = cfg['cluster.secret']
  if (s === undefined || s === '') {
    if (cfg['security.insecure']) return 'insecure-development-secret'
    throw new HissError('CONFIG', 'missing required config key "cluster.secret" (or set "security.insecure": true)')
  }
  if (Buffer.byteLength(s) < 16) throw new HissError('CONFIG', 'config key "cluster.secret": must be at least 16 bytes')
  return s
}

export function splitHostPort (addr: string): { host: string, port: number } {
  const i = addr.lastIndexOf(':')
  let host = addr.slice(0, i)
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1)
  return { host, port: Number(addr.slice(i + 1)) }
}
