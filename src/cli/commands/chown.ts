// `hissdfs chown [-R] OWNER[:GROUP] PATH...` (also `:GROUP`): set a file's owner and/or
// group on the NameServer. OWNER and GROUP are numeric ids or names of this machine
// (/etc/passwd, /etc/group), as chown(1) takes them; the cluster stores numbers. Only
// the superuser may give a file away; an owner may change its group to one of their
// own groups (the NameServer checks). With -R, symlinks themselves are changed.
import { readFileSync } from 'node:fs'
import type { Command } from 'commander'
import { HissError } from '../../common/errors.js'
import { clientAction, onPath } from '../run-client.js'
import { forEachTarget, type RecursiveOpts } from '../walk.js'

/** A user or group: a decimal id, or a name looked up in an /etc file (name:x:id:...). */
function resolveId (v: string, file: '/etc/passwd' | '/etc/group', what: string): number {
  if (/^\d{1,10}$/.test(v)) {
    const n = Number(v)
    if (n <= 0xfffffffe) return n
  }
  let text = ''
  try { text = readFileSync(file, 'utf8') } catch {}
  for (const line of text.split('\n')) {
    const f = line.split(':')
    if (f[0] === v && f[2] !== undefined && /^\d+$/.test(f[2])) return Number(f[2])
  }
  throw HissError.EINVAL(`invalid ${what} ${JSON.stringify(v)}: not a number and not in ${file}`)
}

export function parseOwner (spec: string): { uid?: number, gid?: number } {
  const i = spec.indexOf(':')
  const user = i < 0 ? spec : spec.slice(0, i)
  const group = i < 0 ? '' : spec.slice(i + 1)
  if (user === '' && group === '') throw HissError.EINVAL(`invalid owner ${JSON.stringify(spec)}: OWNER, OWNER:GROUP or :GROUP`)
  return {
    ...(user === '' ? {} : { uid: resolveId(user, '/etc/passwd', 'user') }),
    ...(group === '' ? {} : { gid: resolveId(group, '/etc/group', 'group') }),
  }
}

export function registerChown (program: Command): void {
  program.command('chown')
    .description('change owner and/or group (OWNER, OWNER:GROUP or :GROUP; ids or local names)')
    .option('-R, --recursive', 'also every file and directory below each PATH')
    .argument('<owner>', 'OWNER[:GROUP] or :GROUP')
    .argument('<path...>', 'remote paths')
    .action(clientAction<RecursiveOpts>('chown', async (ctx, args, opts) => {
      const ids = await onPath(args[0] as string, async () => parseOwner(args[0] as string))
      await forEachTarget(ctx, args[1] as string[], opts.recursive === true, async (path, _st, below) => {
        await ctx.fs.setattr(path, { ...ids, ...(below ? { nofollow: true } : {}) })
      })
    }))
}
