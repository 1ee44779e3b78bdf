// Types for fuse-native 2.2.6 as patched by patches/fuse-native+2.2.6.patch (the caller
// of every op as a last argument, nanosecond stat times, BigInt utimens). fuse-native
// ships no types; only src/fuse imports it.
declare module 'fuse-native' {
  namespace Fuse {
    /** Who made the request (fuse_get_context() of the libfuse worker thread). */
    interface Caller { uid: number, gid: number, pid: number }

    interface Stat {
      mode: number
      uid: number
      gid: number
      size: number
      nlink: number
      ino: number
      dev?: number
      rdev?: number
      blksize?: number
      blocks?: number
      /** Milliseconds (Date or number): the stock fields, used when *Ns are absent. */
      atime?: Date | number
      mtime?: Date | number
      ctime?: Date | number
      /** Nanoseconds since the epoch (patched build): win over atime/mtime/ctime. */
      atimeNs?: bigint | string
      mtimeNs?: bigint | string
      ctimeNs?: bigint | string
    }

    interface Statfs {
      bsize: number
      frsize: number
      blocks: number
      bfree: number
      bavail: number
      files: number
      ffree: number
      favail: number
      fsid: number
      flag: number
      namemax: number
    }

    /** Result callback: 0 or a negative errno, then the op's value. */
    type Cb<T = void> = (err: number, value?: T) => void
    /** read/write: the byte count, or a negative errno. */
    type CountCb = (result: number) => void

    interface Operations {
      init?: (cb: Cb, caller: Caller) => void
      access?: (path: string, mode: number, cb: Cb, caller: Caller) => void
      statfs?: (path: string, cb: Cb<Statfs>, caller: Caller) => void
      getattr?: (path: string, cb: Cb<Stat>, caller: Caller) => void
      fgetattr?: (path: string, fd: number, cb: Cb<Stat>, caller: Caller) => void
      flush?: (path: string, fd: number, cb: Cb, caller: Caller) => void
      fsync?: (path: string, datasync: number, fd: number, cb: Cb, caller: Caller) => void
      fsyncdir?: (path: string, datasync: number, fd: number, cb: Cb, caller: Caller) => void
      readdir?: (path: string, cb: (err: number, names?: string[], stats?: Stat[]) => void, caller: Caller) => void
      truncate?: (path: string, size: number, cb: Cb, caller: Caller) => void
      ftruncate?: (path: string, fd: number, size: number, cb: Cb, caller: Caller) => void
      /** Nanoseconds since the epoch, or null: leave that time unchanged. */
      utimens?: (path: string, atime: bigint | null, mtime: bigint | null, cb: Cb, caller: Caller) => void
      readlink?: (path: string, cb: Cb<string>, caller: Caller) => void
      chown?: (path: string, uid: number, gid: number, cb: Cb, caller: Caller) => void
      chmod?: (path: string, mode: number, cb: Cb, caller: Caller) => void
      mknod?: (path: string, mode: number, dev: number, cb: Cb, caller: Caller) => void
      open?: (path: string, flags: number, cb: Cb<number>, caller: Caller) => void
      opendir?: (path: string, flags: number, cb: Cb<number>, caller: Caller) => void
      read?: (path: string, fd: number, buf: Buffer, len: number, pos: number, cb: CountCb, caller: Caller) => void
      write?: (path: string, fd: number, buf: Buffer, len: number, pos: number, cb: CountCb, caller: Caller) => void
      release?: (path: string, fd: number, cb: Cb, caller: Caller) => void
      releasedir?: (path: string, fd: number, cb: Cb, caller: Caller) => void
      create?: (path: string, mode: number, flags: number, cb: Cb<number>, caller: Caller) => void
      unlink?: (path: string, cb: Cb, caller: Caller) => void
      rename?: (src: string, dest: string, cb: Cb, caller: Caller) => void
      link?: (src: string, dest: string, cb: Cb, caller: Caller) => void
      symlink?: (target: string, path: string, cb: Cb, caller: Caller) => void
      mkdir?: (path: string, mode: number, cb: Cb, caller: Caller) => void
      rmdir?: (path: string, cb: Cb, caller: Caller) => void
    }

    /** Per-op timeouts in ms (false: none); `default` for the ops not named. */
    type Timeouts = number | false | ({ default?: number } & Partial<Record<keyof Operations, number | false>>)

    interface Options {
      /** Copied verbatim into `-o fsname=...`: also carries extra libfuse options. */
      fsname?: string
      subtype?: string
      allowOther?: boolean
      allowRoot?: boolean
      defaultPermissions?: boolean
      autoUnmount?: boolean
      debug?: boolean
      force?: boolean
      mkdir?: boolean
      maxRead?: number
      timeout?: Timeouts
    }
  }

  class Fuse {
    constructor (mnt: string, ops: Fuse.Operations, opts?: Fuse.Options)
    readonly mnt: string
    mount (cb: (err: Error | null) => void): void
    unmount (cb: (err: Error | null) => void): void
    static unmount (mnt: string, cb: (err: Error | null) => void): void
    /**
     * hissdfs patch: answer the kernel's getattr of `path` from native memory for `ttlMs`
     * (a directory's attributes mirrored from the mount's own cache). No-ops while not mounted.
     */
    attrCacheSet (path: string, stat: Fuse.Stat, ttlMs: number): void
    attrCacheDelete (path: string): void
    attrCacheClear (): void
    /** hissdfs patch: answer the kernel's flush of handle `fd` natively (true) or through ops.flush (false). */
    flushFree (fd: number, on: boolean): void
    /**
     * hissdfs patch: writes of handle `fd` answered by the addon at once (on) and handed
     * to the onAsyncWrite handler in order, before any op that came in after them; the
     * handler's promise settles once the write is part of the mount's state.
     */
    asyncWrites (fd: number, on: boolean): void
    onAsyncWrite (handler: (fd: number, pos: number, buf: Buffer) => Promise<void>): void
    /** Hand every write the addon has queued to the onAsyncWrite handler now. */
    drainWrites (): void
    /**
     * hissdfs patch: native reads. pieceSet hands the addon a cached piece of a block (the
     * buffer must stay unchanged until pieceDelete of it returns); readMap gives handle `fd`
     * its file's size and blocks (Float64Array of offset, block id, generation per block),
     * or takes them away with null; readProgress is the end of the last read of `fd`
     * answered natively since the previous call, or -1. No-ops while not mounted.
     */
    pieceSet (block: number, gen: number, idx: number, buf: Buffer): void
    pieceDelete (block: number, gen: number, idx: number): void
    pieceClear (): void
    readMap (fd: number, size: number, pieceBytes: number, layout: Float64Array | null): void
    readProgress (fd: number): number
    static readonly ENOENT: number
    static readonly EIO: number
  }

  export = Fuse
}
