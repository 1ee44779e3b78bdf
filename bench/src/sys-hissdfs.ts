// HissDFS on loopback: a NameServer, three DataServers and one hissdfs-mount, started
// from the repo's dist/ with their own configs and data directories under the run
// directory. One cluster per replication factor (3 and 1), every config of it saying
// that replication, so the r1 and r3 rows cannot mix.
import { randomBytes } from 'node:crypto'
import { access, mkdir, writeFile, readFile, unlink } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { JsonHttp, ROOT_IDENTITY } from './http-json.js'
import { isMounted, unmount } from './mounts.js'
import { freePorts } from './ports.js'
import { Daemon, pollUntil } from './proc.js'
import type { BenchSystem, DaemonRef } from './system.js'
import { lazyUnmountSync, type Teardown } from './teardown.js'

export interface HissPaths { cli: string, mount: string }

export function hissPaths (repo: string): HissPaths {
  return { cli: join(repo, 'dist', 'src', 'cli', 'main.js'), mount: join(repo, 'dist', 'src', 'fuse', 'main.js') }
}

/** Undefined when the built HissDFS entry points exist, else why not. */
export async function hissMissing (repo: string): Promise<string | undefined> {
  const p = hissPaths(repo)
  for (const f of [p.cli, p.mount]) {
    try { await access(f) } catch { return `${relative(repo, f)} not built` }
  }
  return undefined
}

interface PingReply { safeMode?: boolean, liveDataServers?: number }
interface BlocksReply { blocks?: Array<{ locations?: unknown[] }> }

export class HissCluster {
  private readonly daemonList: Daemon[] = []
  readonly mnt: string
  readonly clientConfig: string
  nsAddress = ''
  private http: JsonHttp | undefined

  /**
   * @param profileDir when set, every HissDFS process of this cluster runs under
   *   `node --cpu-prof` writing to `<profileDir>/<system>/<role>` (see nodeArgs).
   */
  constructor (
    private readonly repo: string,
    private readonly base: string,
    private readonly logs: string,
    readonly replication: 1 | 3,
    private readonly teardown: Teardown,
    private readonly profileDir?: string,
  ) {
    this.mnt = join(base, 'mnt', `hissdfs-r${replication}`)
    this.clientConfig = join(base, `hissdfs-r${replication}`, 'client.json')
    this.nsDir = join(base, `hissdfs-r${replication}`, 'ns')
  }

  /** The NameServer's root directory (its on-disk store). */
  readonly nsDir: string

  private get name (): string { return `hissdfs-r${this.replication}` }

  /** Node flags for a HissDFS process of this cluster: the CPU profiler when profiling. */
  nodeArgs (role: string): string[] {
    return this.profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${join(this.profileDir, this.name, role)}`]
  }

  /** A profiled process needs time to write its profile after SIGTERM. */
  private get graceMs (): number { return this.profileDir === undefined ? 15000 : 60000 }

  private spawn (role: string, args: string[]): Daemon {
    const d = new Daemon(role, process.execPath, [...this.nodeArgs(role), ...args], join(this.logs, `${this.name}-${role}.log`))
    this.daemonList.push(d)
    return d
  }

  /** The NameServer's process id (undefined before start). */
  get nsPid (): number | undefined {
    return this.daemonList.find((d) => d.role === 'nameserver')?.pid
  }

  async start (): Promise<void> {
    this.teardown.add(this.name, async () => { await this.stop() }, () => {
      lazyUnmountSync(this.mnt)
      for (const d of this.daemonList) d.stopSync()
    })
    const paths = hissPaths(this.repo)
    const dir = join(this.base, this.name)
    await mkdir(dir, { recursive: true })
    const [nsPort, ...dsPorts] = await freePorts(4)
    this.nsAddress = `127.0.0.1:${nsPort ?? 0}`
    const common = {
      'nameserver.address': this.nsAddress,
      'cluster.secret': randomBytes(24).toString('hex'),
      'replication': this.replication,
      'safemode.extension.ms': 0,
      'log.level': 'warn',
    }
    await mkdir(this.nsDir, { recursive: true })
    const nsCfg = join(dir, 'nameserver.json')
    await writeFile(nsCfg, JSON.stringify({ ...common, 'nameserver.root.dir': this.nsDir }, null, 2))
    await writeFile(this.clientConfig, JSON.stringify(common, null, 2))

    const ns = this.spawn('nameserver', [paths.cli, 'nameserver', '--config', nsCfg])
    await ns.waitForLine(/listening on/i, 60000)
    for (let i = 1; i <= 3; i++) {
      const dsDir = join(dir, `ds${i}`)
      await mkdir(dsDir, { recursive: true })
      const cfg = join(dir, `dataserver${i}.json`)
      await writeFile(cfg, JSON.stringify({ ...common, 'dataserver.root.dir': dsDir, 'dataserver.address': `127.0.0.1:${dsPorts[i - 1] ?? 0}` }, null, 2))
      const ds = this.spawn(`dataserver${i}`, [paths.cli, 'dataserver', '--config', cfg])
      await ds.waitForLine(/listening on/i, 60000)
    }
    this.http = new JsonHttp(this.nsAddress, 4, ROOT_IDENTITY)
    const http = this.http
    await pollUntil('3 live DataServers and safe mode off', 60000, async () => {
      const ping = await http.ok('GET', '/v1/ping') as PingReply
      return (ping.safeMode === false && (ping.liveDataServers ?? 0) >= 3) ? true : undefined
    }, 250)

    await mkdir(this.mnt, { recursive: true })
    const mount = this.spawn('mount', [paths.mount, '--config', this.clientConfig, this.mnt])
    await mount.waitForLine(/mounted at/i, 60000)
    if (!(await isMounted(this.mnt))) throw new Error(`hissdfs-mount said it mounted, but ${this.mnt} is not in /proc/mounts`)

    // Smoke test: a small file through the mount reads back and has its copies.
    const probe = join(this.mnt, '.bench-probe')
    const data = randomBytes(100000)
    await writeFile(probe, data)
    const back = await readFile(probe)
    if (!back.equals(data)) throw new Error('smoke test: a 100 kB file read back different through the mount')
    const problem = await this.checkReplicas(probe)
    if (problem !== undefined) throw new Error(`smoke test: ${problem}`)
    await unlink(probe)
  }

  /** Every block of the file has `replication` live locations (polls up to 15 s: reports are asynchronous). */
  async checkReplicas (file: string): Promise<string | undefined> {
    const http = this.http
    if (http === undefined) return 'not started'
    const remote = '/' + relative(this.mnt, file)
    try {
      await pollUntil('replicas', 15000, async () => {
        const r = await http.ok('GET', `/v1/ns/blocks?path=${encodeURIComponent(remote)}`) as BlocksReply
        const counts = (r.blocks ?? []).map((b) => b.locations?.length ?? 0)
        const bad = counts.filter((c) => c !== this.replication)
        if (bad.length > 0) throw new Error(`${bad.length} of ${counts.length} blocks have ${[...new Set(bad)].join('/')} replicas, replication ${this.replication}`)
        return true
      }, 500)
      return undefined
    } catch (err) {
      return (err as Error).message.replace(/^replicas: not after 15 s \((.*)\)$/, '$1')
    }
  }

  daemons (): DaemonRef[] {
    return this.daemonList.map((d) => ({ role: d.role, pid: d.pid }))
  }

  /** Tell whether every daemon of the cluster is still running (a crash breaks the rows). */
  deadDaemon (): string | undefined {
    const dead = this.daemonList.find((d) => !d.running)
    return dead === undefined ? undefined : `${dead.role} exited: ${dead.lastOutput()}`
  }

  /** Unmount, then stop the mount process, the DataServers (together) and the NameServer. Idempotent. */
  async stop (): Promise<void> {
    this.http?.close()
    await unmount(this.mnt)
    const byRole = (re: RegExp): Daemon[] => this.daemonList.filter((d) => re.test(d.role))
    for (const group of [byRole(/^mount$/), byRole(/^dataserver/), byRole(/^nameserver$/)]) {
      await Promise.all(group.map(async (d) => { await d.stop(this.graceMs) }))
    }
  }

  view (): BenchSystem {
    return {
      name: this.replication === 3 ? 'hissdfs-r3' : 'hissdfs-r1',
      family: 'hissdfs',
      replication: this.replication,
      dir: this.mnt,
      checkReplicas: async (file) => await this.checkReplicas(file),
      daemons: () => this.daemons(),
      health: async () => {
        const dead = this.deadDaemon()
        if (dead !== undefined) return dead
        return (await isMounted(this.mnt)) ? undefined : `${this.mnt} is no longer mounted`
      },
    }
  }
}
