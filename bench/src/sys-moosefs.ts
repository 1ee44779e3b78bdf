// MooseFS on loopback: one master, three chunkservers, one mfsmount, each with its own
// config and data directory under the run directory. Two directories in the mount carry
// goal 3 and goal 1: the moosefs-r3 and moosefs-r1 systems.
//
// MooseFS refuses 127.x addresses on purpose; the master remaps 127.0.0.1 to 0.0.0.0
// and the chunkservers connect to 0.0.0.0 while binding 127.0.0.1, so the traffic
// stays on loopback (see shared/BENCH-NOTES.md). Daemons run at nice 0 (their default
// is -19) so that the comparison with Node processes is fair.
import { copyFile, mkdir, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isMounted, unmount } from './mounts.js'
import { freePorts } from './ports.js'
import { Daemon, pollUntil, run, runOk } from './proc.js'
import type { BenchSystem, DaemonRef } from './system.js'
import { lazyUnmountSync, type Teardown } from './teardown.js'

const EMPTY_METADATA = '/var/lib/mfs/metadata.mfs.empty'

export const MOOSEFS_NOTES = [
  'MooseFS daemons and mfsmount run at nice 0 (NICE_LEVEL = 0, -o mfsnice=0) instead of their default -19.',
  'MooseFS chunkservers keep HDD_FSYNC_BEFORE_CLOSE = 0 (the default): a client fsync returns when the data reached the chunkservers\' memory, not their disk.',
]

function cfgText (entries: Record<string, string | number>): string {
  return Object.entries(entries).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n'
}

/** Copies per chunk from `mfsfileinfo` output; [] when the file has no chunks. */
export function copiesPerChunk (fileinfo: string): number[] {
  const counts: number[] = []
  for (const line of fileinfo.split('\n')) {
    if (/^\s*chunk \d+:/.test(line)) counts.push(0)
    else if (/^\s*copy \d+:.*VALID/.test(line) && counts.length > 0) counts[counts.length - 1] = (counts[counts.length - 1] ?? 0) + 1
  }
  return counts
}

export class MoosefsCluster {
  private readonly daemonList: Daemon[] = []
  readonly mnt: string

  constructor (private readonly base: string, private readonly logs: string, private readonly teardown: Teardown) {
    this.mnt = join(base, 'mnt', 'moosefs')
  }

  private spawn (role: string, cmd: string, args: string[]): Daemon {
    const d = new Daemon(role, cmd, args, join(this.logs, `${role}.log`))
    this.daemonList.push(d)
    return d
  }

  async start (): Promise<void> {
    this.teardown.add('moosefs', async () => { await this.stop() }, () => {
      lazyUnmountSync(this.mnt)
      for (const d of this.daemonList) d.stopSync()
    })
    const [mlPort, csPort, clPort, ...csservPorts] = await freePorts(6)
    if (mlPort === undefined || csPort === undefined || clPort === undefined) throw new Error('no free ports')
    const masterDir = join(this.base, 'moosefs', 'master')
    await mkdir(masterDir, { recursive: true })
    await copyFile(EMPTY_METADATA, join(masterDir, 'metadata.mfs'))
    await writeFile(join(masterDir, 'mfsexports.cfg'), '127.0.0.1 / rw,alldirs,admin,maproot=0:0\n')
    await writeFile(join(masterDir, 'mfstopology.cfg'), '')
    await writeFile(join(masterDir, 'mfsmaster.cfg'), cfgText({
      WORKING_USER: 'root',
      WORKING_GROUP: 'root',
      NICE_LEVEL: 0,
      LOCK_MEMORY: 0,
      DATA_PATH: masterDir,
      EXPORTS_FILENAME: join(masterDir, 'mfsexports.cfg'),
      TOPOLOGY_FILENAME: join(masterDir, 'mfstopology.cfg'),
      MATOML_LISTEN_HOST: '127.0.0.1',
      MATOML_LISTEN_PORT: mlPort,
      MATOCS_LISTEN_HOST: '127.0.0.1',
      MATOCS_LISTEN_PORT: csPort,
      MATOCL_LISTEN_HOST: '127.0.0.1',
      MATOCL_LISTEN_PORT: clPort,
      REMAP_BITS: 32,
      REMAP_SOURCE_IP_CLASS: '127.0.0.1',
      REMAP_DESTINATION_IP_CLASS: '0.0.0.0',
    }))
    const master = this.spawn('mfsmaster', 'mfsmaster', ['-f', '-c', join(masterDir, 'mfsmaster.cfg')])
    await master.waitForLine(/mfsmaster daemon initialized properly/, 30000)

    for (let i = 1; i <= 3; i++) {
      const csDir = join(this.base, 'moosefs', `cs${i}`)
      const hddDir = join(csDir, 'hdd')
      await mkdir(hddDir, { recursive: true })
      await writeFile(join(csDir, 'mfshdd.cfg'), `${hddDir}\n`)
      await writeFile(join(csDir, 'mfschunkserver.cfg'), cfgText({
        WORKING_USER: 'root',
        WORKING_GROUP: 'root',
        NICE_LEVEL: 0,
        LOCK_MEMORY: 0,
        DATA_PATH: csDir,
        HDD_CONF_FILENAME: join(csDir, 'mfshdd.cfg'),
        HDD_LEAVE_SPACE_DEFAULT: '256MiB',
        BIND_HOST: '127.0.0.1',
        MASTER_HOST: '0.0.0.0',
        MASTER_PORT: csPort,
        CSSERV_LISTEN_HOST: '127.0.0.1',
        CSSERV_LISTEN_PORT: csservPorts[i - 1] ?? 0,
      }))
      const cs = this.spawn(`mfschunkserver${i}`, 'mfschunkserver', ['-f', '-c', join(csDir, 'mfschunkserver.cfg')])
      await cs.waitForLine(/connected to Master/, 30000)
    }

    await mkdir(this.mnt, { recursive: true })
    const mount = this.spawn('mfsmount', 'mfsmount', [this.mnt, '-f', '-H', '127.0.0.1', '-P', String(clPort), '-o', 'mfsnice=0'])
    await pollUntil('mfsmount mounted', 30000, async () => {
      if (!mount.running) throw new Error(`mfsmount exited: ${mount.lastOutput()}`)
      return (await isMounted(this.mnt)) ? true : undefined
    })

    for (const r of [3, 1]) {
      const dir = join(this.mnt, `r${r}`)
      await mkdir(dir, { recursive: true })
      await runOk('mfssetgoal', ['-r', String(r), dir], { timeoutMs: 30000 })
      await runOk('mfssettrashtime', ['-r', '0', dir], { timeoutMs: 30000 })
    }
    // A chunk gets as many copies as there are chunkservers registered when it is
    // created: wait until a probe file in the goal-3 directory really gets 3.
    const probe = join(this.mnt, 'r3', '.probe')
    await pollUntil('3 MooseFS chunkservers serving', 60000, async () => {
      await writeFile(probe, Buffer.alloc(65536, 7))
      const problem = await this.checkCopies(probe, 3)
      await unlink(probe)
      return problem === undefined ? true : undefined
    }, 500)
  }

  async checkCopies (file: string, goal: number): Promise<string | undefined> {
    const r = await run('mfsfileinfo', [file], { timeoutMs: 30000 })
    if (r.code !== 0) return `mfsfileinfo: exit ${String(r.code)}`
    const counts = copiesPerChunk(r.stdout)
    const bad = counts.filter((c) => c !== goal)
    if (bad.length > 0) return `${bad.length} of ${counts.length} chunks have ${bad.join('/')} copies, goal ${goal}`
    return undefined
  }

  /** Unmount, then stop mfsmount, the chunkservers (together) and the master. Idempotent. */
  async stop (): Promise<void> {
    await unmount(this.mnt)
    const byRole = (re: RegExp): Daemon[] => this.daemonList.filter((d) => re.test(d.role))
    for (const group of [byRole(/^mfsmount$/), byRole(/^mfschunkserver/), byRole(/^mfsmaster$/)]) {
      await Promise.all(group.map(async (d) => { await d.stop(30000) }))
    }
  }

  async health (): Promise<string | undefined> {
    const dead = this.daemonList.find((d) => !d.running)
    if (dead !== undefined) return `${dead.role} exited: ${dead.lastOutput()}`
    return (await isMounted(this.mnt)) ? undefined : `${this.mnt} is no longer mounted`
  }

  daemons (): DaemonRef[] {
    return this.daemonList.map((d) => ({ role: d.role, pid: d.pid }))
  }

  view (replication: 1 | 3): BenchSystem {
    return {
      name: replication === 3 ? 'moosefs-r3' : 'moosefs-r1',
      family: 'moosefs',
      replication,
      dir: join(this.mnt, `r${replication}`),
      checkReplicas: async (file) => await pollUntil('copies', 15000, async () => {
        const p = await this.checkCopies(file, replication)
        if (p !== undefined) throw new Error(p)
        return 'ok'
      }).then(() => undefined, (err: Error) => err.message),
      daemons: () => this.daemons(),
      health: async () => await this.health(),
    }
  }
}
