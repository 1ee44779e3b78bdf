// Inputs made once: a random-data file (MooseFS stores zeros sparsely, so /dev/zero
// would flatter it) kept in a cache directory with its SHA-256, and a tarball of a
// real source tree from node_modules, made at the start of each run.
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readFile, rename, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runOk } from './proc.js'

export interface Inputs {
  randomFile: string
  randomBytes: number
  randomSha256: string
  treeName: string
  treeDir: string
  tarball: string
  /** Entries in the tarball (files, directories, links). */
  treeEntries: number
  treeFiles: number
  treeBytes: number
}

export async function sha256File (file: string): Promise<string> {
  const h = createHash('sha256')
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) h.update(chunk as Buffer)
  return h.digest('hex')
}

async function randomFile (cacheDir: string, bytes: number): Promise<{ file: string, sha: string }> {
  const file = join(cacheDir, `random-${bytes}.bin`)
  const shaFile = `${file}.sha256`
  try {
    const [st, sha] = await Promise.all([stat(file), readFile(shaFile, 'utf8')])
    if (st.size === bytes && /^[0-9a-f]{64}$/.test(sha.trim())) return { file, sha: sha.trim() }
  } catch { /* make it */ }
  const tmp = `${file}.tmp`
  await runOk('head', ['-c', String(bytes), '/dev/urandom'], { timeoutMs: 600000, stdoutFile: tmp })
  const sha = await sha256File(tmp)
  await rename(tmp, file)
  await writeFile(shaFile, sha + '\n')
  return { file, sha }
}

export async function prepareInputs (repo: string, cacheDir: string, bytes: number, treeCandidates: string[]): Promise<Inputs> {
  const rnd = await randomFile(cacheDir, bytes)
  let treeName: string | undefined
  for (const name of treeCandidates) {
    try {
      if ((await stat(join(repo, 'node_modules', name))).isDirectory()) { treeName = name; break }
    } catch { /* next */ }
  }
  if (treeName === undefined) throw new Error(`none of node_modules/{${treeCandidates.join(',')}} exists: run npm ci`)
  const treeDir = join(repo, 'node_modules', treeName)
  const tarball = join(cacheDir, `tree-${treeName}.tar`)
  await runOk('tar', ['cf', tarball, '-C', join(repo, 'node_modules'), treeName], { timeoutMs: 300000 })
  const listing = await runOk('tar', ['tvf', tarball], { timeoutMs: 300000 })
  const lines = listing.stdout.trim().split('\n')
  const files = lines.filter((l) => l.startsWith('-'))
  const treeBytes = files.reduce((sum, l) => sum + Number(l.trim().split(/\s+/)[2] ?? 0), 0)
  return {
    randomFile: rnd.file,
    randomBytes: bytes,
    randomSha256: rnd.sha,
    treeName,
    treeDir,
    tarball,
    treeEntries: lines.length,
    treeFiles: files.length,
    treeBytes,
  }
}
