// Depth-first walk of a remote directory tree, entries in name order, for the commands
// that take -R (ls, chmod, chown). A directory that cannot be listed is reported through
// onError and skipped; the walk goes on with its siblings.
import type { DirEntry, FileStat } from '../common/protocol.js'
import { joinPath } from '../common/paths.js'
import type { HissFs } from '../client/types.js'
import { displayPath, toRemotePath } from './remote-path.js'

export async function walk (fs: HissFs, dir: string, out: Array<{ st: DirEntry, path: string }>, onError: (p: string, e: unknown) => void): Promise<void> {
  let entries: DirEntry[]
  try {
    entries = await fs.list(dir)
  } catch (err) {
    onError(dir, err)
    return
  }
  for (const e of entries) {
    const p = joinPath(dir, e.name)
    out.push({ st: e, path: p })
    if (e.type === 'dir') await walk(fs, p, out, onError)
  }
}

/**
 * Apply `change` to each PATH argument and, with `recursive`, to everything below the
 * directories among them (depth-first, by full path). `st` is the entry's stat (of the
 * target, for an argument; of the entry itself, below it). Each failure is reported
 * for its own path and the rest go on.
 */
export async function forEachTarget (
  ctx: { fs: HissFs, fail: (path: string | undefined, err: unknown) => void },
  raws: string[], recursive: boolean,
  change: (path: string, st: FileStat, below: boolean) => Promise<void>,
): Promise<void> {
  for (const raw of raws) {
    try {
      const p = toRemotePath(raw)
      const st = await ctx.fs.stat(p)
      await change(p, st, false)
      if (!recursive || st.type !== 'dir') continue
      const below: Array<{ st: DirEntry, path: string }> = []
      await walk(ctx.fs, p, below, (q, e) => ctx.fail(q, e))
      for (const e of below) {
        try {
          await change(e.path, e.st, true)
        } catch (err) {
          ctx.fail(e.path, err)
        }
      }
    } catch (err) {
      ctx.fail(displayPath(raw), err)
    }
  }
}
