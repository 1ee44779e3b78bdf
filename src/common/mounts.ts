// The kernel's view of FUSE mounts, for everything that has to know whether a
// mountpoint is live or release a dead one: the mount itself, `make run`'s launcher
// and the tests. No fuse-native here (the CLI must not load it).
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'

function decodeMountinfoPath (s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
}

/** Is a FUSE file system mounted at `path` (per /proc/self/mountinfo)? */
export async function isFuseMounted (path: string): Promise<boolean> {
  const text = await readFile('/proc/self/mountinfo', 'utf8')
  for (const line of text.split('\n')) {
    const parts = line.split(' ')
    const sep = parts.indexOf('-')
    if (sep < 0 || parts[4] === undefined) continue
    if (decodeMountinfoPath(parts[4]) === path && (parts[sep + 1] ?? '').startsWith('fuse')) return true
  }
  return false
}

function run (cmd: string, args: string[]): Promise<boolean> {
  return new Promise(resolve => {
    execFile(cmd, args, { timeout: 30000 }, err => { resolve(err === null) })
  })
}

/**
 * Release the FUSE mount at `dir` even when its process is gone: fusermount (libfuse2's,
 * then fuse3's), lazily, and `umount -l` as root's last resort. True once nothing is
 * mounted there.
 */
export async function releaseFuseMount (dir: string): Promise<boolean> {
  for (const [cmd, args] of [['fusermount', ['-u', '-z', dir]], ['fusermount3', ['-u', '-z', dir]], ['umount', ['-l', dir]]] as const) {
    if (!await isFuseMounted(dir)) return true
    await run(cmd, [...args])
  }
  return !await isFuseMounted(dir)
}
