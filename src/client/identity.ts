// Who the client acts as. In HDFS "simple" mode the client asserts its identity and the
// NameServer checks permissions against it; we do the same with the process's ids.
import type { Identity } from './types.js'

/** The current process's uid and groups (primary group first, no duplicates). */
export function processIdentity (): Identity {
  const uid = process.getuid?.() ?? 0
  const gid = process.getgid?.() ?? 0
  const groups = process.getgroups?.() ?? []
  return { uid, gids: [gid, ...groups.filter(g => g !== gid)] }
}
