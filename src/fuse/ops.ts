// Translation only: each FUSE op is one call into the file-system layer, answered
// through bridge(): a value becomes cb(0, value), an error its negative errno from the
// HissError table (EIO for anything else, which is also logged: it is a bug).
import type Fuse from 'fuse-native'
import { isHissError, toNegativeErrno } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import type { HissFuseFs } from './fuse-fs.js'

type Reply<T> = (err: number, value?: T) => void

export function createOps (fs: HissFuseFs, log: Logger): Fuse.Operations {
  function bridge<T> (p: Promise<T>, cb: Reply<T>): void {
    p.then(v => { cb(0, v) }, (err: unknown) => {
      const errno = toNegativeErrno(err)
      if (!isHissError(err) && typeof (err as { errno?: unknown })?.errno !== 'number') {
        log.error('unexpected error in a FUSE op', { err })
      } else {
        log.debug('op failed', { errno, err })
      }
      cb(errno)
    })
  }
  // read and write answer with the byte count in the error position.
  const count = (cb: Fuse.CountCb): Reply<number> => (err, n) => { cb(err < 0 ? err : n ?? 0) }

  return {
    getattr: (path, cb, c) => bridge(fs.getattr(path, c), cb),
    fgetattr: (path, _fd, cb, c) => bridge(fs.getattr(path, c), cb),
    readdir: (path, cb, c) => bridge(fs.readdir(path, c), (err, r) => cb(err, r?.names, r?.stats)),
    access: (path, mode, cb, c) => bridge(fs.access(path, mode, c), cb),
    statfs: (path, cb, c) => bridge(fs.statfs(path, c), cb),
    readlink: (path, cb, c) => bridge(fs.readlink(path, c), cb),
    mkdir: (path, mode, cb, c) => bridge(fs.mkdir(path, mode, c), cb),
    rmdir: (path, cb, c) => bridge(fs.rmdir(path, c), cb),
    unlink: (path, cb, c) => bridge(fs.unlink(path, c), cb),
    rename: (src, dst, cb, c) => bridge(fs.rename(src, dst, c), cb),
    symlink: (target, path, cb, c) => bridge(fs.symlink(target, path, c), cb),
    chmod: (path, mode, cb, c) => bridge(fs.chmod(path, mode, c), cb),
    chown: (path, uid, gid, cb, c) => bridge(fs.chown(path, uid, gid, c), cb),
    utimens: (path, atime, mtime, cb, c) => bridge(fs.utimens(path, atime, mtime, c), cb),
    mknod: (path, mode, dev, cb, c) => bridge(fs.mknod(path, mode, dev, c), cb),
    create: (path, mode, cb, c) => bridge(fs.create(path, mode, c), cb),
    open: (path, flags, cb, c) => bridge(fs.open(path, flags, c), cb),
    read: (_path, fd, buf, len, pos, cb) => bridge(fs.read(fd, buf, len, pos), count(cb)),
    write: (_path, fd, buf, len, pos, cb, c) => bridge(fs.write(fd, buf, len, pos, c), count(cb)),
    flush: (_path, fd, cb) => bridge(fs.flush(fd), cb),
    fsync: (_path, datasync, fd, cb) => bridge(fs.fsync(fd, datasync), cb),
    release: (_path, fd, cb) => bridge(fs.release(fd), cb),
    truncate: (path, size, cb, c) => bridge(fs.truncate(path, size, c), cb),
    ftruncate: (_path, fd, size, cb) => bridge(fs.ftruncate(fd, size), cb),
  }
}
