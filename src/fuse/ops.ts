// Translation only: each FUSE op is one call into the file-system layer, answered
// through bridge(): a value becomes cb(0, value), an error its negative errno from the
// HissError table (EIO for anything else, which is also logged: it is a bug).
import type Fuse from 'fuse-native'
import { isHissError, toNegativeErrno } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import type { HissFuseFs } from './fuse-fs.js'

type Reply<T> = (err: number, value?: T) => void

export function createOps (fs: HissFuseFs, log: Logger): Fuse.Operations {
  const trace = log.level === 'debug'
  function bridge<T> (p: Promise<T>, cb: Reply<T>, what?: () => string): void {
    const t0 = trace ? performance.now() : 0
    p.then(v => {
      if (trace) log.debug('op', { op: what?.(), ms: +(performance.now() - t0).toFixed(2) })
      cb(0, v)
    }, (err: unknown) => {
      const errno = toNegativeErrno(err)
      if (!isHissError(err) && typeof (err as { errno?: unknown })?.errno !== 'number') {
        log.error('unexpected error in a FUSE op', { err })
      } else {
        if (trace) log.debug('op failed', { op: what?.(), errno, code: (err as { code?: unknown }).code, ms: +(performance.now() - t0).toFixed(2) })
      }
      cb(errno)
    })
  }
  // read and write answer with the byte count in the error position.
  const count = (cb: Fuse.CountCb): Reply<number> => (err, n) => { cb(err < 0 ? err : n ?? 0) }
  // Writes the addon answered by itself (HissFuseFs.asyncWrite) run before anything that
  // came in after them: an op on a handle waits for those of its file, an op on a path
  // for all of them. Nothing queued: the op runs at once.
  const byPath = <T>(run: () => Promise<T>): Promise<T> => {
    const w = fs.afterQueued()
    return w === undefined ? run() : w.then(run)
  }
  const byFd = <T>(fd: number, run: () => Promise<T>): Promise<T> => {
    const w = fs.afterFd(fd)
    return w === undefined ? run() : w.then(run)
  }

  return {
    getattr: (path, cb, c) => bridge(byPath(() => fs.getattr(path, c)), cb, () => `getattr ${path}`),
    fgetattr: (path, fd, cb, c) => bridge(byFd(fd, () => fs.getattr(path, c)), cb, () => `fgetattr ${path}`),
    readdir: (path, cb, c) => bridge(byPath(() => fs.readdir(path, c)), (err, r) => cb(err, r?.names, r?.stats), () => `readdir ${path}`),
    access: (path, mode, cb, c) => bridge(byPath(() => fs.access(path, mode, c)), cb, () => `access ${path}`),
    statfs: (path, cb, c) => bridge(byPath(() => fs.statfs(path, c)), cb, () => `statfs ${path}`),
    readlink: (path, cb, c) => bridge(byPath(() => fs.readlink(path, c)), cb, () => `readlink ${path}`),
    mkdir: (path, mode, cb, c) => bridge(byPath(() => fs.mkdir(path, mode, c)), cb, () => `mkdir ${path}`),
    rmdir: (path, cb, c) => bridge(byPath(() => fs.rmdir(path, c)), cb, () => `rmdir ${path}`),
    unlink: (path, cb, c) => bridge(byPath(() => fs.unlink(path, c)), cb, () => `unlink ${path}`),
    rename: (src, dst, cb, c) => bridge(byPath(() => fs.rename(src, dst, c)), cb, () => `rename ${src} -> ${dst}`),
    symlink: (target, path, cb, c) => bridge(byPath(() => fs.symlink(target, path, c)), cb, () => `symlink ${path} -> ${target}`),
    chmod: (path, mode, cb, c) => bridge(byPath(() => fs.chmod(path, mode, c)), cb, () => `chmod ${path}`),
    chown: (path, uid, gid, cb, c) => bridge(byPath(() => fs.chown(path, uid, gid, c)), cb, () => `chown ${path}`),
    utimens: (path, atime, mtime, cb, c) => bridge(byPath(() => fs.utimens(path, atime, mtime, c)), cb, () => `utimens ${path} ${String(atime)} ${String(mtime)}`),
    mknod: (path, mode, dev, cb, c) => bridge(byPath(() => fs.mknod(path, mode, dev, c)), cb, () => `mknod ${path}`),
    create: (path, mode, flags, cb, c) => bridge(byPath(() => fs.create(path, mode, flags, c)), cb, () => `create ${path} ${flags.toString(8)}`),
    open: (path, flags, cb, c) => bridge(byPath(() => fs.open(path, flags, c)), cb, () => `open ${path} ${flags.toString(8)}`),
    read: (_path, fd, buf, len, pos, cb) => bridge(byFd(fd, () => fs.read(fd, buf, len, pos)), count(cb), () => `read ${fd} ${pos}+${len}`),
    write: (_path, fd, buf, len, pos, cb, c) => bridge(byFd(fd, () => fs.write(fd, buf, len, pos, c)), count(cb), () => `write ${fd} ${pos}+${len}`),
    flush: (_path, fd, cb) => bridge(byFd(fd, () => fs.flush(fd)), cb, () => `flush ${fd}`),
    fsync: (_path, datasync, fd, cb) => bridge(byFd(fd, () => fs.fsync(fd, datasync)), cb, () => `fsync ${fd}`),
    release: (_path, fd, cb) => bridge(byFd(fd, () => fs.release(fd)), cb, () => `release ${fd}`),
    truncate: (path, size, cb, c) => bridge(byPath(() => fs.truncate(path, size, c)), cb, () => `truncate ${path} ${size}`),
    fsyncdir: (path, _datasync, _fd, cb) => bridge(byPath(() => fs.fsyncdir(path)), cb, () => `fsyncdir ${path}`),
    link: (src, dst, cb, c) => bridge(byPath(() => fs.link(src, dst, c)), cb, () => `link ${src} -> ${dst}`),
    ftruncate: (_path, fd, size, cb) => bridge(byFd(fd, () => fs.ftruncate(fd, size)), cb, () => `ftruncate ${fd} ${size}`),
  }
}
