// fuse-native setup: loading the binding, checking the mountpoint, the libfuse options,
// mounting, noticing an external `fusermount -u`, and a clean unmount.
import { access, readdir, realpath, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import type FuseClass from 'fuse-native'
import { every, type Clock } from '../common/clock.js'
import type { HissConfig } from '../common/config.js'
import { HissError } from '../common/errors.js'
import { isFuseMounted, releaseFuseMount } from '../common/mounts.js'
import type { Logger } from '../common/log.js'
import type { HissFs, Identity } from '../client/types.js'
import { ClientPool } from './client-pool.js'
import { HissFuseFs } from './fuse-fs.js'
import { createOps } from './ops.js'
import { toFuseStat } from './stat-convert.js'
import { Spool } from './spool.js'

/** libfuse2 caps a write request at 128 KiB (and sends 4 KiB ones without big_writes). */
export const MAX_WRITE_BYTES = 131072
/** How often we look for our mount in /proc/self/mountinfo (external unmount). */
export const MOUNT_WATCH_MS = 1000
/** Ops that may upload blocks or wait for a lease get this long before -ETIMEDOUT. */
export const LONG_OP_TIMEOUT_MS = 10 * 60 * 1000
export const MOUNT_INIT_TIMEOUT_MS = 30 * 1000

export interface MountOptions {
  mountpoint: string
  cfg: HissConfig
  /** The mount's own client (its identity does reads, writes and leases). */
  client: HissFs
  identity: Identity
  /** A client acting as another user, for namespace calls made by that user. */
  makeClient: (id: Identity) => HissFs
  clock: Clock
  log: Logger
  /** Serve every local user (needs root); default: when running as root. */
  allowOther?: boolean
  /** Parent directory of the spool (default: the OS temp dir). */
  spoolDir?: string
}

type FuseCtor = typeof FuseClass

/** Load fuse-native, turning a missing libfuse into one clear sentence. */
export async function loadFuse (): Promise<FuseCtor> {
  try {
    await access('/dev/fuse')
  } catch {
    throw new HissError('ENOTSUP', '/dev/fuse is missing: FUSE is not available on this machine')
  }
  try {
    const mod = await import('fuse-native')
    return mod.default
  } catch (err) {
    const first = String((err as Error)?.message ?? err).split('\n')[0]
    throw new HissError('ENOTSUP', `cannot load fuse-native (is libfuse2 installed?): ${first}`)
  }
}

/**
 * Names a mountpoint may hold and still count as empty: the repository's ./mount keeps a
 * .gitkeep so that git tracks the directory.
 */
export const PLACEHOLDER_NAMES: ReadonlySet<string> = new Set(['.gitkeep'])

/**
 * A usable mountpoint: an existing, empty directory (placeholders aside) that nothing is
 * mounted on. Returns its real path and whether libfuse must be told `nonempty`.
 */
export async function checkMountpoint (mountpoint: string): Promise<{ path: string, placeholder: boolean }> {
  let real: string
  try {
    real = await realpath(mountpoint)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOTCONN') throw new HissError('EBUSY', `mountpoint ${mountpoint} is a dead mount: run fusermount -u ${mountpoint}`)
    if (code === 'ENOENT') throw HissError.ENOENT(`mountpoint ${mountpoint} does not exist`)
    throw new HissError('EIO', `mountpoint ${mountpoint}: ${(err as Error).message}`)
  }
  let st, parent
  try {
    [st, parent] = await Promise.all([stat(real), stat(dirname(real))])
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOTCONN') throw new HissError('EBUSY', `mountpoint ${mountpoint} is a dead mount: run fusermount -u ${mountpoint}`)
    throw new HissError('EIO', `mountpoint ${mountpoint}: ${(err as Error).message}`)
  }
  if (!st.isDirectory()) throw HissError.ENOTDIR(`mountpoint ${mountpoint} is not a directory`)
  if (real !== '/' && st.dev !== parent.dev) throw new HissError('EBUSY', `mountpoint ${mountpoint} is busy: something is already mounted there`)
  const names = await readdir(real)
  if (names.some(n => !PLACEHOLDER_NAMES.has(n))) throw new HissError('EBUSY', `mountpoint ${mountpoint} is not empty`)
  return { path: real, placeholder: names.length > 0 }
}

/** The libfuse -o options, carried in through fuse-native's fsname. */
export function fuseOptionString (cfg: HissConfig, opts: { nonempty?: boolean } = {}): string {
  const entrySeconds = cfg['fuse.attr.timeout.ms'] / 1000
  return [
    'hissdfs',
    'subtype=hissdfs',
    // Only when the mountpoint holds nothing but a placeholder (.gitkeep).
    ...(opts.nonempty === true ? ['nonempty'] : []),
    'big_writes',
    `max_write=${MAX_WRITE_BYTES}`,
    // Inode numbers from getattr, stable across renames.
    'use_ino',
    // The kernel asks us for attributes every time: we answer from our own short cache,
    // which open() refreshes, so a file closed on another mount is seen at its new size.
    'attr_timeout=0',
    `entry_timeout=${entrySeconds}`,
    'negative_timeout=0',
  ].join(',')
}

export class HissMount {
  readonly fs: HissFuseFs
  readonly pool: ClientPool
  private readonly spool: Spool
  private fuse: FuseClass | undefined
  private realMountpoint: string | undefined
  private stopWatch: (() => void) | undefined
  private closing: Promise<number> | undefined
  private endedResolve!: (why: 'unmounted' | 'external') => void
  /** Resolves once the mount is gone: unmount() finished, or someone ran fusermount -u. */
  readonly ended: Promise<'unmounted' | 'external'>

  constructor (private readonly opts: MountOptions) {
    this.spool = new Spool(opts.spoolDir)
    this.pool = new ClientPool(opts.client, opts.identity, opts.makeClient, opts.clock)
    this.fs = new HissFuseFs({ client: opts.client, pool: this.pool, cfg: opts.cfg, clock: opts.clock, log: opts.log, spool: this.spool })
    this.ended = new Promise(resolve => { this.endedResolve = resolve })
  }

  get mountpoint (): string { return this.realMountpoint ?? this.opts.mountpoint }

  async mount (): Promise<void> {
    const Fuse = await loadFuse()
    const { path: mnt, placeholder } = await checkMountpoint(this.opts.mountpoint)
    this.realMountpoint = mnt
    await this.spool.init()
    const cfg = this.opts.cfg
    const shortMs = cfg['client.timeout.ms'] * 2 + cfg['client.retry.ms'] + 5000
    const fuse = new Fuse(mnt, createOps(this.fs, this.opts.log), {
      fsname: fuseOptionString(cfg, { nonempty: placeholder }),
      allowOther: this.opts.allowOther ?? process.getuid?.() === 0,
      defaultPermissions: true,
      timeout: {
        default: shortMs,
        read: LONG_OP_TIMEOUT_MS,
        write: LONG_OP_TIMEOUT_MS,
        flush: LONG_OP_TIMEOUT_MS,
        fsync: LONG_OP_TIMEOUT_MS,
        release: LONG_OP_TIMEOUT_MS,
        truncate: LONG_OP_TIMEOUT_MS,
        ftruncate: LONG_OP_TIMEOUT_MS,
      },
    })
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => { reject(new HissError('ETIMEDOUT', `mounting at ${mnt}: the kernel did not answer`)) }, MOUNT_INIT_TIMEOUT_MS)
      fuse.mount(err => {
        clearTimeout(t)
        if (err === null || err === undefined) resolve()
        else reject(new HissError('EIO', `cannot mount at ${mnt}: ${err.message}`))
      })
    })
    this.fuse = fuse
    // Cached attributes go into the patched addon's native table as well, which then
    // answers the kernel's getattr (one per directory on every path walk, with
    // default_permissions and attr_timeout=0) without a hop into JS.
    // (The patched addon is the only one fuse-native loads: its index.js refuses others.)
    this.fs.mirrorAttrs({
      set: (path, st, ttlMs) => { fuse.attrCacheSet(path, toFuseStat(st), ttlMs) },
      delete: path => { fuse.attrCacheDelete(path) },
      clear: () => { fuse.attrCacheClear() },
    })
    this.fs.setFlushFree((fd, on) => { fuse.flushFree(fd, on) })
    // Writes of a handle already writing under its lease are answered by the addon at
    // once and run here in order (see HissFuseFs.asyncWrite): a write(2) no longer
    // waits for a hop into JS and back per 128 KiB.
    const log = this.opts.log
    const trace = log.level === 'debug'
    fuse.onAsyncWrite((fd, pos, buf) => {
      const n = buf.length
      const done = this.fs.asyncWrite(fd, pos, buf)
      // Logged as an op of its own (tests count them apart from the ordinary writes).
      if (trace) void done.then(() => { log.debug('op', { op: `awrite ${fd} ${pos}+${n}` }) })
      return done
    })
    this.fs.setAsyncWrites({ set: (fd, on) => { fuse.asyncWrites(fd, on) } })
    // Reads of data the block cache holds are answered by the addon's libfuse threads,
    // without a hop into JS per 128 KiB (see NativeReads).
    this.fs.setNativeReads({
      map: (fd, f) => {
        if (f === null) fuse.readMap(fd, 0, 0, null)
        else fuse.readMap(fd, f.size, f.pieceBytes, f.layout)
      },
      progress: fd => fuse.readProgress(fd),
      pieces: {
        set: (id, gen, idx, buf) => { fuse.pieceSet(id, gen, idx, buf) },
        delete: (id, gen, idx) => { fuse.pieceDelete(id, gen, idx) },
        clear: () => { fuse.pieceClear() },
      },
    })
    this.stopWatch = every(this.opts.clock, MOUNT_WATCH_MS, async () => {
      if (this.closing !== undefined) return
      if (!await isFuseMounted(mnt)) {
        this.opts.log.info('mount disappeared (external unmount)', { mountpoint: mnt })
        void this.shutdown(false).then(() => { this.endedResolve('external') })
      }
    }, err => { this.opts.log.warn('mount watch failed', { err }) })
  }

  /** Commit open files, unmount, release everything. Resolves with the count of files whose commit failed. */
  async unmount (): Promise<number> {
    const failed = await this.shutdown(true)
    this.endedResolve('unmounted')
    return failed
  }

  private shutdown (unmountKernel: boolean): Promise<number> {
    if (this.closing !== undefined) return this.closing
    this.closing = (async () => {
      this.stopWatch?.()
      this.fs.mirrorAttrs(undefined)
      this.fs.setFlushFree(undefined)
      this.fs.setNativeReads(undefined)
      // No write is answered by the addon from here on; those it answered run first.
      this.fs.setAsyncWrites(undefined)
      this.fuse?.drainWrites()
      await this.fs.afterQueued()
      let failed = await this.fs.flushAll()
      if (unmountKernel && this.fuse !== undefined) await this.kernelUnmount(this.fuse)
      // Anything written between the first flush and the unmount.
      failed += await this.fs.flushAll()
      await this.fs.close().catch(err => { this.opts.log.warn('closing the file layer', { err }) })
      await this.pool.close()
      await this.opts.client.close().catch(() => {})
      return failed
    })()
    return this.closing
  }

  private async kernelUnmount (fuse: FuseClass): Promise<void> {
    const mnt = this.mountpoint
    try {
      await new Promise<void>((resolve, reject) => { fuse.unmount(err => { if (err === null || err === undefined) resolve(); else reject(err) }) })
      return
    } catch (err) {
      this.opts.log.warn('fusermount -uz failed, trying the other ways', { err })
    }
    if (!await releaseFuseMount(mnt).catch(() => false)) this.opts.log.error('could not unmount', { mountpoint: mnt })
  }
}
