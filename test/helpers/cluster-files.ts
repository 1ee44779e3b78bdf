// File-level tools for the process-level tests: temp dirs, test data, block replica
// files on a DataServer's disk (`blk_<id>_<gen>` anywhere under its directory).
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, open, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { Readable } from 'node:stream'
import type { TestLike } from './cluster.js'

export async function tempDir (t: Pick<TestLike, 'teardown'>, prefix = 'hiss-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

export function sha256 (b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex')
}

export interface BlockFile {
  /** Absolute path. */
  path: string
  /** Path relative to the DataServer directory (e.g. current/0a/blk_10_1). */
  rel: string
  id: number
  gen: number
}

const BLOCK_FILE = /^blk_([0-9]+)_([0-9]+)$/

/** Every finalised-looking replica file under `dir` (checksum and temp files excluded). */
export async function findBlockFiles (dir: string): Promise<BlockFile[]> {
  const out: BlockFile[] = []
  async function walk (d: string): Promise<void> {
    let entries
    try {
      entries = await readdir(d, { withFileTypes: true })
    } catch {
      return // vanished while we looked (deletes race with the walk)
    }
    for (const e of entries) {
      const p = join(d, e.name)
      if (e.isDirectory()) { await walk(p); continue }
      const m = BLOCK_FILE.exec(e.name)
      if (m !== null) out.push({ path: p, rel: relative(dir, p), id: Number(m[1]), gen: Number(m[2]) })
    }
  }
  await walk(dir)
  return out
}

/** Invert one byte of a file in place (simulated bit rot). */
export async function flipByte (file: string, offset: number): Promise<void> {
  const fh = await open(file, 'r+')
  try {
    const b = Buffer.alloc(1)
    await fh.read(b, 0, 1, offset)
    b[0] = (b[0] as number) ^ 0xff
    await fh.write(b, 0, 1, offset)
    await fh.sync()
  } finally {
    await fh.close()
  }
}

export function randomData (n: number): Buffer {
  return randomBytes(n)
}

/**
 * `total` bytes of incompressible test data, generated chunk by chunk (never held
 * whole), hashed as it goes: `hash()` gives the sha256 once the stream has ended.
 */
export function generatedStream (total: number, chunkBytes = 1024 * 1024): { stream: Readable, hash: () => string } {
  const base = randomBytes(chunkBytes)
  const h = createHash('sha256')
  let sent = 0
  let index = 0
  let digest: string | undefined
  const stream = new Readable({
    highWaterMark: chunkBytes,
    read () {
      if (sent >= total) { this.push(null); return }
      const n = Math.min(chunkBytes, total - sent)
      const chunk = Buffer.from(base.subarray(0, n))
      // Make every chunk distinct, so a block served from the wrong place shows.
      if (n >= 4) chunk.writeUInt32BE(index >>> 0, 0)
      index++
      sent += n
      h.update(chunk)
      this.push(chunk)
    },
  })
  return {
    stream,
    hash: () => {
      digest ??= h.digest('hex')
      return digest
    },
  }
}
