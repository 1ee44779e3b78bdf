// `chmod` mode arguments: octal (755, 0644, 2750) or symbolic clauses as chmod(1) takes
// them, comma-separated: [ugoa]*[+-=][rwxXst]* (no who means a; the umask is not
// applied: a remote file has no process umask to honour). X adds execute only to
// directories and to files that already have some execute bit.
import { HissError } from '../common/errors.js'

export type ModeChange = (mode: number, isDir: boolean) => number

const OCTAL = /^[0-7]{1,4}$/
const CLAUSE = /^([ugoa]*)([-+=])([rwxXst]*)$/

const WHO_BITS: Record<string, number> = { u: 0o4700, g: 0o2070, o: 0o1007 }

export function parseMode (spec: string): ModeChange {
  if (OCTAL.test(spec)) {
    const m = parseInt(spec, 8)
    return () => m
  }
  const clauses = spec.split(',').map(c => {
    const m = CLAUSE.exec(c)
    if (m === null) throw HissError.EINVAL(`invalid mode ${JSON.stringify(spec)}: octal (e.g. 755) or symbolic (e.g. u+x,go-w)`)
    return { who: m[1] === '' || m[1]!.includes('a') ? 'ugo' : m[1]!, op: m[2]!, perms: m[3]! }
  })
  return (mode, isDir) => {
    let out = mode & 0o7777
    for (const { who, op, perms } of clauses) {
      // The bits the clause's users can hold (rwx per class, setuid/setgid, sticky).
      let scope = 0
      for (const w of who) scope |= WHO_BITS[w]!
      let bits = 0
      for (const p of perms) {
        if (p === 'r') bits |= 0o444
        else if (p === 'w') bits |= 0o222
        else if (p === 'x') bits |= 0o111
        else if (p === 'X') { if (isDir || (out & 0o111) !== 0) bits |= 0o111 }
        else if (p === 's') bits |= 0o6000
        else if (p === 't') bits |= 0o1000
      }
      // Sticky belongs to "other" in chmod(1)'s table but is set by a or o only.
      if ((bits & 0o1000) !== 0 && !who.includes('o')) bits &= ~0o1000
      bits &= scope
      if (op === '+') out |= bits
      else if (op === '-') out &= ~bits
      else out = (out & ~(scope & 0o0777)) | bits
    }
    return out
  }
}
