// The benchmark's sizes: the full run and the reduced QUICK run (a few minutes).
export interface BenchOptions {
  quick: boolean
  reps: number
  /** Sequential write/read file size (bytes); also the CLI put/cat size. */
  seqBytes: number
  smallFiles: number
  smallFileBytes: number
  /** Tree under node_modules that is tarred once and extracted (first that exists). */
  treeCandidates: string[]
  mkdirs: number
  stats: number
  fioFileBytes: number
  fioSeconds: number
  fioFsyncSeconds: number
  /** NameServer load: operations per phase, for each concurrency. */
  nsOps: number
  nsConcurrency: number[]
  /** NameServer memory: files created (in directories of nsFillDirSize) before its RSS is read. */
  nsFillFiles: number
  nsFillDirSize: number
  nsFillConcurrency: number
  /** Files stat'ed at random afterwards (each must exist). */
  nsFillVerify: number
  /** Run the HissDFS processes under `node --cpu-prof` (--profile). */
  profile: boolean
}

/** The NameServer memory target is stated for this many files. */
export const NS_FILL_TARGET_FILES = 1_000_000

const MiB = 1024 * 1024

export function benchOptions (quick: boolean): BenchOptions {
  if (quick) {
    return {
      quick,
      reps: 1,
      seqBytes: 256 * MiB,
      smallFiles: 300,
      smallFileBytes: 4096,
      treeCandidates: ['yaml', 'zod', 'typescript'],
      mkdirs: 200,
      stats: 400,
      fioFileBytes: 64 * MiB,
      fioSeconds: 5,
      fioFsyncSeconds: 5,
      // As in the full run: 300 operations per phase lasted ~50 ms at 32 clients, so JIT
      // warm-up and connection set-up made most of the figure.
      nsOps: 2000,
      nsConcurrency: [1, 8, 32],
      nsFillFiles: 20_000,
      nsFillDirSize: 1000,
      nsFillConcurrency: 32,
      nsFillVerify: 200,
      profile: false,
    }
  }
  return {
    quick,
    reps: 3,
    seqBytes: 1024 * MiB,
    smallFiles: 2000,
    smallFileBytes: 4096,
    treeCandidates: ['es-toolkit', 'typescript'],
    mkdirs: 1000,
    stats: 2000,
    fioFileBytes: 256 * MiB,
    fioSeconds: 20,
    fioFsyncSeconds: 10,
    // 2,000 operations per phase lasted ~0.1 s at 32 clients: the same NameServer gave
    // 11,600-27,300 stat/s from one phase to the next (GC pauses, JIT, the scheduler),
    // 19,000-28,000 with 20,000 operations (~1 s a phase). QUICK keeps 2,000.
    nsOps: 20_000,
    nsConcurrency: [1, 8, 32],
    nsFillFiles: NS_FILL_TARGET_FILES,
    nsFillDirSize: 1000,
    nsFillConcurrency: 32,
    nsFillVerify: 1000,
    profile: false,
  }
}

export function formatBytes (n: number): string {
  if (n >= 1024 * MiB && n % (1024 * MiB) === 0) return `${n / (1024 * MiB)} GiB`
  if (n >= MiB && n % MiB === 0) return `${n / MiB} MiB`
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`
  return `${n} B`
}
