// FileStat (the wire shape) -> the stat fuse-native hands to the kernel, and the
// cluster's capacity -> statvfs.
import type Fuse from 'fuse-native'
import type { FileStat, StatfsReply } from '../common/protocol.js'

export const S_IFMT = 0o170000
export const S_IFREG = 0o100000
export const S_IFDIR = 0o040000
export const S_IFLNK = 0o120000

/** Preferred I/O size reported to programs (cp, dd pick their buffer from it). */
export const IO_BLOCK_BYTES = 128 * 1024

const TYPE_BITS = { file: S_IFREG, dir: S_IFDIR, symlink: S_IFLNK } as const

export function toFuseStat (st: FileStat): Fuse.Stat {
  const size = st.type === 'symlink' && st.target !== undefined ? Buffer.byteLength(st.target) : st.size
  return {
    mode: TYPE_BITS[st.type] | (st.mode & 0o7777),
    uid: st.uid,
    gid: st.gid,
    size,
    nlink: st.nlink > 0 ? st.nlink : 1,
    // fuse-native passes st_ino as 32 bits.
    ino: st.ino >>> 0,
    blksize: IO_BLOCK_BYTES,
    // 512-byte units, as du expects: the file's bytes without its blocks of zeros stored
    // sparse (FileStat.allocated); replicas are not counted.
    blocks: Math.ceil((st.allocated ?? size) / 512),
    atimeNs: st.atimeNs,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
  }
}

const U32 = 0xffffffff

export function toFuseStatfs (s: StatfsReply): Fuse.Statfs {
  // Counts are 32-bit in fuse-native: grow the fragment size until they fit.
  let frsize = 4096
  while (Math.ceil(s.capacity / frsize) > U32 && frsize < 2 ** 30) frsize *= 2
  const blocks = Math.floor(s.capacity / frsize)
  const bfree = Math.min(blocks, Math.floor(Math.max(0, s.remaining) / frsize))
  const files = Math.min(U32, s.files + 1_000_000_000)
  return {
    bsize: frsize,
    frsize,
    blocks,
    bfree,
    bavail: bfree,
    files,
    ffree: Math.min(U32, files - s.files),
    favail: Math.min(U32, files - s.files),
    fsid: 0x48495353, // "HISS"
    flag: 0,
    namemax: 255,
  }
}
