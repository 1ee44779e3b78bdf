// Depth-first walk of a remote directory tree, entries in name order, for the commands
// that take -R (ls, chmod, chown). A directory that cannot be listed is reported through
// onError and skipped; the walk goes on with its siblings.
import type { DirEntry, FileStat } from '../common/protocol.js'
import { joinPath } from '../common/paths.js'
import type { HissFs } from '../client/types.js'
import { displayPath, toRemotePath } from './remote-path.js'

/** The -R option of the commands that take it. */
export interface RecursiveOpts { recursive?: boolean }

/**
 * Visit every entry below `dir`, each before its children (depth-first, name order).
 * Only one listing per level is held, not the tree.
 */
export async function walk (fs: HissFs, dir: string, visit: (e: DirEntry, path: string) => Promise<void> | void, onError: (p: string, e: unknown) => void): Promise<void> {
  let entries: DirEntry[]
  try {
    entries = await fs.list(dir)
  } catch (err) {
    onError(dir, err)
    return
  }
  for (const e of entries) {
    const p = joinPath(dir, e.name)
    await visit(e, p)
    if (e.type === 'dir') await walk(fs, p, visit, onError)
  }
}

/**
 * Apply `change` to each PATH argument and, with `recursive`, to everything below the
 * directories among them (each before what is below it, see walk). `st` is the entry's stat (of the
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
      await walk(ctx.fs, p, async (e, path) => {
        try {
          await change(path, e, true)
        } catch (err) {
          ctx.fail(path, err)
        }
      }, (q, e) => ctx.fail(q, e))
    } catch (err) {
      ctx.fail(displayPath(raw), err)
    }
  }
}
