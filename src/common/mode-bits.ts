// The POSIX owner/group/other choice of permission bits, shared by the NameServer's
// checks and the mount's (the one place the mount must check on its own: a create that
// lost a race opens the file another client made, past the kernel's checks).

export const R = 4
export const W = 2
export const X = 1

/** Whether the rwx class that applies to `who` holds every bit of `want` (R|W|X). */
export function modeAllows (node: { uid: number, gid: number, mode: number }, who: { uid: number, gids: readonly number[] }, want: number): boolean {
  let bits: number
  if (who.uid === node.uid) bits = (node.mode >> 6) & 7
  else if (who.gids.includes(node.gid)) bits = (node.mode >> 3) & 7
  else bits = node.mode & 7
  return (bits & want) === want
}
