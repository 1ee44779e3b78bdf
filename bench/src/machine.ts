// Facts about the machine and the software measured, recorded with every result.
import { cpus, loadavg, release, totalmem, uptime } from 'node:os'
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs'
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { run } from './proc.js'

export interface MachineFacts {
  cpuModel: string
  cores: number
  memoryGiB: number
  disk: { device: string, fsType: string, sizeGiB: number, availGiB: number, rotational: string }
  kernel: string
  os: string
  versions: Record<string, string>
  loadAvgStart: number[]
  loadAvgEnd?: number[]
  /** Seconds since boot, at start. */
  uptimeS?: number
  /** The ext4lazyinit kernel thread was running at start (it zeroes inode tables after a boot). */
  ext4LazyInit?: boolean
  /** Microseconds to create one empty file in the work directory, measured at start. */
  createUs?: number
}

/** Whether a kernel thread of that name runs now. */
async function kernelThread (name: string): Promise<boolean> {
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue
    if ((await readText(`/proc/${pid}/comm`)) === name) return true
  }
  return false
}

/**
 * The cost of creating a file where the systems keep their data (median of 200): right
 * after a boot, while ext4lazyinit runs, it was 850 us instead of 26 us here, which
 * slows every file-creating workload (and the mount's and DataServers' own files).
 */
function createCostUs (workDir: string): number {
  const dir = mkdtempSync(join(workDir, 'create-cost-'))
  try {
    const times: number[] = []
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now()
      closeSync(openSync(join(dir, `f${i}`), 'wx'))
      times.push((performance.now() - t0) * 1000)
    }
    times.sort((a, b) => a - b)
    return Math.round(times[100]!)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function firstLine (cmd: string, args: string[]): Promise<string> {
  try {
    const r = await run(cmd, args, { timeoutMs: 15000 })
    const text = (r.stdout.trim() !== '' ? r.stdout : r.stderr).trim()
    return r.code === 0 || text !== '' ? (text.split('\n')[0] ?? '').trim() : 'not found'
  } catch {
    return 'not found'
  }
}

async function readText (file: string): Promise<string> {
  try { return (await readFile(file, 'utf8')).trim() } catch { return 'unknown' }
}

export async function machineFacts (repo: string, workDir: string): Promise<MachineFacts> {
  const df = await run('df', ['-PT', '-B1', workDir], { timeoutMs: 15000 })
  const cols = (df.stdout.trim().split('\n')[1] ?? '').split(/\s+/)
  const device = cols[0] ?? 'unknown'
  const dev = device.replace(/^\/dev\//, '').replace(/p?\d+$/, '')
  const pkg = JSON.parse(await readFile(`${repo}/package.json`, 'utf8')) as { version?: string }
  const head = await firstLine('git', ['-C', repo, 'rev-parse', '--short', 'HEAD'])
  const dirty = await run('git', ['-C', repo, 'status', '--porcelain'], { timeoutMs: 15000 })
  const osRelease = await readText('/etc/os-release')
  const pretty = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(osRelease)?.[1] ?? 'unknown'
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30 * 10) / 10,
    disk: {
      device,
      fsType: cols[1] ?? 'unknown',
      sizeGiB: Math.round(Number(cols[2] ?? 0) / 2 ** 30),
      availGiB: Math.round(Number(cols[4] ?? 0) / 2 ** 30),
      rotational: await readText(`/sys/block/${dev}/queue/rotational`),
    },
    kernel: release(),
    os: `${pretty} (debian_version ${await readText('/etc/debian_version')})`,
    versions: {
      hissdfs: `${pkg.version ?? '?'} (git ${head}${dirty.stdout.trim() !== '' ? ', uncommitted changes' : ''})`,
      node: process.version,
      moosefs: await firstLine('mfsmaster', ['-v']),
      bindfs: await firstLine('bindfs', ['--version']),
      fio: await firstLine('fio', ['--version']),
      tar: await firstLine('tar', ['--version']),
      coreutils: await firstLine('dd', ['--version']),
    },
    loadAvgStart: loadavg().map((v) => Math.round(v * 100) / 100),
    uptimeS: Math.round(uptime()),
    ext4LazyInit: await kernelThread('ext4lazyinit'),
    createUs: createCostUs(workDir),
  }
}
