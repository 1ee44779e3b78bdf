// The fd table: FUSE file handles -> the open-file state of their inode plus what is
// per handle (open flags, read-ahead cursor). Numbers start at 1 because fuse-native
// treats a handle of 0 as "none".
import { HissError } from '../common/errors.js'
import { newReadCursor, type OpenFile, type ReadCursor } from './open-file.js'

export const O_ACCMODE = 0o3
export const O_RDONLY = 0o0
export const O_WRONLY = 0o1
export const O_RDWR = 0o2
export const O_APPEND = 0o2000
export const O_TRUNC = 0o1000

const MAX_FD = 0x7fffffff

export interface Handle extends ReadCursor {
  readonly fd: number
  readonly file: OpenFile
  readonly flags: number
  readonly append: boolean
  readonly writable: boolean
  /** Reads of this handle may be answered outside JS (it has a native read map). */
  mapped: boolean
  /** Its writes are answered by the addon and queued for us (see HissFuseFs.asyncWrite). */
  async: boolean
  /** The first error of a queued write, for the handle's next write, flush or fsync. */
  asyncError: unknown
}

export class HandleTable {
  private readonly handles = new Map<number, Handle>()
  private next = 1

  get size (): number { return this.handles.size }

  open (file: OpenFile, flags: number): Handle {
    let fd = this.next
    while (this.handles.has(fd)) fd = fd >= MAX_FD ? 1 : fd + 1
    this.next = fd >= MAX_FD ? 1 : fd + 1
    const acc = flags & O_ACCMODE
    const h: Handle = {
      fd,
      file,
      flags,
      append: (flags & O_APPEND) !== 0,
      writable: acc === O_WRONLY || acc === O_RDWR,
      mapped: false,
      async: false,
      asyncError: undefined,
      ...newReadCursor(),
    }
    this.handles.set(fd, h)
    file.refs++
    if (h.writable) file.writers++
    return h
  }

  get (fd: number): Handle {
    const h = this.handles.get(fd)
    if (h === undefined) throw HissError.from('EBADF', `handle ${fd}`)
    return h
  }

  /** Remove a handle; the caller decides what the last close of its file does. */
  close (fd: number): Handle {
    const h = this.get(fd)
    this.handles.delete(fd)
    h.file.refs--
    if (h.writable) h.file.writers--
    return h
  }

  /** The handle, if `fd` is open. */
  find (fd: number): Handle | undefined { return this.handles.get(fd) }

  all (): Handle[] { return [...this.handles.values()] }
}
