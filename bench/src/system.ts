// What a workload needs from a system under test: a directory to work in, a way to
// check that a written file has the copies the system promises, and the daemons
// whose memory we record.
export type SystemName = 'raw' | 'bindfs' | 'moosefs-r3' | 'hissdfs-r3' | 'moosefs-r1' | 'hissdfs-r1'

/** The order of the columns in every table. */
export const SYSTEM_ORDER: readonly SystemName[] = ['raw', 'bindfs', 'moosefs-r3', 'hissdfs-r3', 'moosefs-r1', 'hissdfs-r1']

export interface DaemonRef { role: string, pid: number }

export interface BenchSystem {
  readonly name: SystemName
  readonly family: 'raw' | 'bindfs' | 'moosefs' | 'hissdfs'
  readonly replication: number
  /** The directory every workload writes under (a mount point or a directory in one). */
  readonly dir: string
  /** Undefined when the file has the expected copies, else what is wrong. */
  checkReplicas: (file: string) => Promise<string | undefined>
  daemons: () => DaemonRef[]
  /** Undefined while every daemon runs and the mount is there, else what broke. */
  health: () => Promise<string | undefined>
}

/** A system that could not be started: its cells read "not available: reason". */
export interface Unavailable { name: SystemName, reason: string }
