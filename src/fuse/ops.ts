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

  return {
    getattr: (path, cb, c) => bridge(fs.getattr(path, c), cb, () => `getattr ${path}`),
    fgetattr: (path, _fd, cb, c) => bridge(fs.getattr(path, c), cb, () => `fgetattr ${path}`),
    readdir: (path, cb, c) => bridge(fs.readdir(path, c), (err, r) => cb(err, r?.names, r?.stats), () => `readdir ${path}`),
    access: (path, mode, cb, c) => bridge(fs.access(path, mode, c), cb, () => `access ${path}`),
    statfs: (path, cb, c) => bridge(fs.statfs(path, c), cb, () => `statfs ${path}`),
    readlink: (path, cb, c) => bridge(fs.readlink(path, c), cb, () => `readlink ${path}`),
    mkdir: (path, mode, cb, c) => bridge(fs.mkdir(path, mode, c), cb, () => `mkdir ${path}`),
    rmdir: (path, cb, c) => bridge(fs.rmdir(path, c), cb, () => `rmdir ${path}`),
    unlink: (path, cb, c) => bridge(fs.unlink(path, c), cb, () => `unlink ${path}`),
    rename: (src, dst, cb, c) => bridge(fs.rename(src, dst, c), cb, () => `rename ${src} -> ${dst}`),
    symlink: (target, path, cb, c) => bridge(fs.symlink(target, path, c), cb, () => `symlink ${path} -> ${target}`),
    chmod: (path, mode, cb, c) => bridge(fs.chmod(path, mode, c), cb, () => `chmod ${path}`),
    chown: (path, uid, gid, cb, c) => bridge(fs.chown(path, uid, gid, c), cb, () => `chown ${path}`),
    utimens: (path, atime, mtime, cb, c) => bridge(fs.utimens(path, atime, mtime, c), cb, () => `utimens ${path} ${String(atime)} ${String(mtime)}`),
    mknod: (path, mode, dev, cb, c) => bridge(fs.mknod(path, mode, dev, c), cb, () => `mknod ${path}`),
    create: (path, mode, flags, cb, c) => bridge(fs.create(path, mode, flags, c), cb, () => `create ${path} ${flags.toString(8)}`),
    open: (path, flags, cb, c) => bridge(fs.open(path, flags, c), cb, () => `open ${path} ${flags.toString(8)}`),
    read: (_path, fd, buf, len, pos, cb) => bridge(fs.read(fd, buf, len, pos), count(cb), () => `read ${fd} ${pos}+${len}`),
    write: (_path, fd, buf, len, pos, cb, c) => bridge(fs.write(fd, buf, len, pos, c), count(cb), () => `write ${fd} ${pos}+${len}`),
    flush: (_path, fd, cb) => bridge(fs.flush(fd), cb, () => `flush ${fd}`),
    fsync: (_path, datasync, fd, cb) => bridge(fs.fsync(fd, datasync), cb, () => `fsync ${fd}`),
    release: (_path, fd, cb) => bridge(fs.release(fd), cb, () => `release ${fd}`),
    truncate: (path, size, cb, c) => bridge(fs.truncate(path, size, c), cb, () => `truncate ${path} ${size}`),
    fsyncdir: (path, _datasync, _fd, cb) => bridge(fs.fsyncdir(path), cb, () => `fsyncdir ${path}`),
    link: (src, dst, cb, c) => bridge(fs.link(src, dst, c), cb, () => `link ${src} -> ${dst}`),
    ftruncate: (_path, fd, size, cb) => bridge(fs.ftruncate(fd, size), cb, () => `ftruncate ${fd} ${size}`),
  }
}
