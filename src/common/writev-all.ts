// Writing every byte of a list of buffers with writev: a short write continues with what
// is left (buffers sliced, never copied). One loop for the DataServer's write-behind
// (at the file's position) and the mount's spool (at given offsets); writeAllSync is the
// blocking form for the CLI writing received bytes to a local file or stdout.
import { writeSync } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'

/** `list` without its first `n` bytes. */
export function afterBytes<T extends Uint8Array> (list: readonly T[], n: number): T[] {
  const rest: T[] = []
  let skip = n
  for (const b of list) {
    if (skip >= b.length) { skip -= b.length; continue }
    rest.push(skip > 0 ? b.subarray(skip) as T : b)
    skip = 0
  }
  return rest
}

/**
 * Write all of `bufs` (`total` bytes) at `position`, or at the file's current position
 * when it is undefined. A writev that makes no progress fails (EIO) instead of looping.
 */
export async function writevAll (fh: FileHandle, bufs: readonly Uint8Array[], total: number, position?: number): Promise<void> {
  let done = 0
  let list = [...bufs]
  while (done < total) {
    const { bytesWritten } = await fh.writev(list, position === undefined ? undefined : position + done)
    if (bytesWritten === 0) throw Object.assign(new Error('writev made no progress'), { code: 'EIO' })
    done += bytesWritten
    list = afterBytes(list, bytesWritten)
  }
}

/** write(2) every byte of `bytes` to `fd` at its position (a short write continues). */
export function writeAllSync (fd: number, bytes: Uint8Array): void {
  let off = 0
  while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off)
}
