// The layering from DESIGN.md, checked on the sources: common depends on nothing of
// ours; NameServer and DataServer never import each other (they share only common);
// the client is the only code that speaks HTTP as a client (got); the CLI and the
// mount reach the cluster only through the client library; fuse-native stays in
// src/fuse.
import t from 'tap'
import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const SRC = fileURLToPath(new URL('../../../../src/', import.meta.url))

async function sources (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...await sources(p))
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p)
  }
  return out
}

/** Every module specifier a file imports (static and dynamic). */
function specifiers (text: string): string[] {
  const out: string[] = []
  // `import ... from '...'` (also spread over several lines) and bare `import '...'`.
  for (const m of text.matchAll(/(?:^|\n)(?:import|export)\b[^'"]*?from\s+'([^']+)'/g)) out.push(m[1]!)
  for (const m of text.matchAll(/(?:^|\n)import\s+'([^']+)'/g)) out.push(m[1]!)
  for (const m of text.matchAll(/import\(\s*'([^']+)'\s*\)/g)) out.push(m[1]!)
  return out
}

/** The part a file belongs to ("common", "nameserver", ...), or the package it names. */
function partOf (fromFile: string, spec: string): string {
  if (!spec.startsWith('.')) return `pkg:${spec.split('/')[0]}`
  const target = relative(SRC, join(fromFile, '..', spec))
  return target.split('/')[0]!
}

const ALLOWED: Record<string, (dep: string, file: string) => boolean> = {
  common: d => d === 'common' || (d.startsWith('pkg:') && d !== 'pkg:got' && d !== 'pkg:fuse-native'),
  nameserver: d => ['common', 'nameserver'].includes(d) || (d.startsWith('pkg:') && d !== 'pkg:got' && d !== 'pkg:fuse-native'),
  dataserver: d => ['common', 'dataserver'].includes(d) || (d.startsWith('pkg:') && d !== 'pkg:got' && d !== 'pkg:fuse-native'),
  client: d => ['common', 'client'].includes(d) || (d.startsWith('pkg:') && d !== 'pkg:fuse-native'),
  fuse: d => ['common', 'client', 'fuse'].includes(d) || (d.startsWith('pkg:') && d !== 'pkg:got'),
  // The daemon commands start the servers; every other command goes through the client.
  cli: (d, file) => ['common', 'client', 'cli'].includes(d) ||
    (['nameserver', 'dataserver'].includes(d) && /commands\/(nameserver|dataserver)\.ts$/.test(file)) ||
    (d.startsWith('pkg:') && d !== 'pkg:got' && d !== 'pkg:fuse-native'),
}

t.test('imports follow the layering', async t => {
  const files = await sources(SRC)
  t.ok(files.length > 50, `read ${files.length} source files`)
  const bad: string[] = []
  for (const f of files) {
    const part = relative(SRC, f).split('/')[0]!
    const rule = ALLOWED[part]
    if (rule === undefined) { bad.push(`${relative(SRC, f)}: unknown part ${part}`); continue }
    for (const spec of specifiers(await readFile(f, 'utf8'))) {
      if (spec.startsWith('node:')) continue
      const dep = partOf(f, spec)
      if (!rule(dep, f)) bad.push(`${relative(SRC, f)} imports ${spec} (${dep})`)
    }
  }
  t.same(bad, [], 'no import crosses a boundary')
})

t.test('the checker sees a crossing', async t => {
  // The rule table itself must be able to fail: a DataServer file importing the
  // NameServer, and a FUSE file importing got, are refused.
  t.notOk(ALLOWED.dataserver!(partOf(join(SRC, 'dataserver/x.ts'), '../nameserver/core.js'), 'x'))
  t.notOk(ALLOWED.fuse!(partOf(join(SRC, 'fuse/x.ts'), 'got'), 'x'))
  t.same(specifiers("import {\n  a,\n  b,\n} from './a.js'\nconst m = await import('../b.js')"), ['./a.js', '../b.js'])
})
