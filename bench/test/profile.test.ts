// The CPU profile summariser on small synthetic .cpuprofile inputs: self time from
// samples and timeDeltas, idle split off, aggregation over profiles, the Markdown and
// the directory walk (unreadable profiles and roles without one are reported).
import t from 'tap'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { profileTreeMarkdown, shortUrl, summarizeProfiles, summarizeProfileTree, summaryMarkdown, type CpuProfile } from '../src/profile.js'

const REPO = '/work/repo'

function frame (functionName: string, url = '', lineNumber = -1): { functionName: string, url: string, lineNumber: number, columnNumber: number } {
  return { functionName, url, lineNumber, columnNumber: 0 }
}

function profile (): CpuProfile {
  return {
    nodes: [
      { id: 1, callFrame: frame('(root)'), children: [2, 3, 4, 6] },
      { id: 2, callFrame: frame('(program)') },
      { id: 3, callFrame: frame('(idle)') },
      { id: 4, callFrame: frame('handle', `file://${REPO}/dist/src/nameserver/core.js`, 9), children: [5] },
      { id: 5, callFrame: frame('crc', `file://${REPO}/node_modules/@node-rs/crc32/index.js`, 0) },
      { id: 6, callFrame: frame('', 'node:internal/streams/readable', 41) },
    ],
    startTime: 1000,
    endTime: 1600,
    // Timestamps 1010, 1110, 1210, 1310, 1410, 1450; each sample lasts until the next, the last until endTime.
    samples: [4, 4, 3, 5, 6, 2],
    timeDeltas: [10, 100, 100, 100, 100, 40],
  }
}

t.test('self time per function from samples and timeDeltas', async (t) => {
  const s = summarizeProfiles([profile()], REPO)
  t.equal(s.profiles, 1)
  t.equal(s.totalUs, 590)
  t.equal(s.idleUs, 100)
  t.same(s.functions.map((f) => [f.name, f.location, f.selfUs]), [
    ['handle', 'dist/src/nameserver/core.js:10', 200],
    ['(program)', '', 150],
    ['crc', 'node_modules/@node-rs/crc32/index.js:1', 100],
    ['(anonymous)', 'node:internal/streams/readable:42', 40],
  ])
})

t.test('profiles of one process are summed; the same function in two places stays apart', async (t) => {
  const other = profile()
  other.nodes.push({ id: 7, callFrame: frame('handle', `file://${REPO}/dist/src/dataserver/x.js`, 4) })
  other.samples = [7, 4]
  other.timeDeltas = [0, 50]
  other.endTime = other.startTime + 60
  const s = summarizeProfiles([profile(), other], REPO)
  t.equal(s.profiles, 2)
  t.equal(s.totalUs, 590 + 60)
  const handles = s.functions.filter((f) => f.name === 'handle')
  t.same(handles.map((f) => [f.location, f.selfUs]), [['dist/src/nameserver/core.js:10', 210], ['dist/src/dataserver/x.js:5', 50]])
})

t.test('a profile without samples adds nothing', async (t) => {
  const s = summarizeProfiles([{ nodes: [], startTime: 0, endTime: 10 }], REPO)
  t.equal(s.totalUs, 0)
  t.same(s.functions, [])
  t.match(summaryMarkdown('x / y', s), /No busy samples/)
})

t.test('shortUrl', async (t) => {
  t.equal(shortUrl(`file://${REPO}/dist/src/a.js`, REPO), 'dist/src/a.js')
  t.equal(shortUrl('file:///elsewhere/node_modules/got/dist/source/index.js', REPO), 'node_modules/got/dist/source/index.js')
  t.equal(shortUrl('node:fs', REPO), 'node:fs')
  t.equal(shortUrl('file:///tmp/with%20space.js', REPO), '/tmp/with space.js')
})

t.test('Markdown: top N by self time, share of busy time', async (t) => {
  const md = summaryMarkdown('hissdfs-r3 / nameserver', summarizeProfiles([profile()], REPO), 2)
  t.match(md, /^### hissdfs-r3 \/ nameserver\n\n1 profile\(s\); 0\.0 s sampled, 0\.0 s busy \(83%\)/)
  const lines = md.split('\n').filter((l) => l.startsWith('| '))
  t.equal(lines.length, 3, 'header and two rows')
  t.match(lines[1], /\| 0 +\| 40\.8% +\| `handle` +\| `dist\/src\/nameserver\/core\.js:10` \|/)
  t.notMatch(md, /idle`/)
})

t.test('the directory tree: per system and role, unreadable files and missing profiles reported', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'bench-prof-'))
  t.teardown(async () => { await rm(root, { recursive: true, force: true }) })
  await mkdir(join(root, 'hissdfs-r3', 'nameserver'), { recursive: true })
  await mkdir(join(root, 'hissdfs-r3', 'mount'), { recursive: true })
  await mkdir(join(root, 'hissdfs-r1', 'cli-put'), { recursive: true })
  await writeFile(join(root, 'hissdfs-r3', 'nameserver', 'CPU.1.cpuprofile'), JSON.stringify(profile()))
  await writeFile(join(root, 'hissdfs-r3', 'nameserver', 'CPU.2.cpuprofile'), '{"nodes": [')
  await writeFile(join(root, 'hissdfs-r3', 'nameserver', 'notes.txt'), 'not a profile')
  await writeFile(join(root, 'hissdfs-r1', 'cli-put', 'CPU.3.cpuprofile'), JSON.stringify(profile()))
  const tree = await summarizeProfileTree(root, REPO)
  t.same(tree.map((e) => [e.system, e.role, e.summary.profiles, e.unreadable.length]), [
    ['hissdfs-r1', 'cli-put', 1, 0],
    ['hissdfs-r3', 'mount', 0, 0],
    ['hissdfs-r3', 'nameserver', 1, 1],
  ])
  const md = profileTreeMarkdown('Profiles', ['intro'], tree)
  t.match(md, /### hissdfs-r3 \/ mount\n\nNo profile was written/)
  t.match(md, /- unreadable: CPU\.2\.cpuprofile/)
  t.match(md, /### hissdfs-r1 \/ cli-put\n\n1 profile/)
  t.same(await summarizeProfileTree(join(root, 'absent'), REPO), [])
})
