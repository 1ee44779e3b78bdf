// The two baselines: a plain directory on the disk (raw) and the same disk through a
// FUSE passthrough (bindfs -o big_writes: without big_writes libfuse2 sends 4 KiB writes).
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { isMounted, unmount } from './mounts.js'
import { Daemon, pollUntil } from './proc.js'
import type { BenchSystem } from './system.js'
import { lazyUnmountSync, type Teardown } from './teardown.js'

const noCopiesToCheck = async (): Promise<undefined> => undefined

export async function startRaw (base: string): Promise<BenchSystem> {
  const dir = join(base, 'raw')
  await mkdir(dir, { recursive: true })
  return { name: 'raw', family: 'raw', replication: 1, dir, checkReplicas: noCopiesToCheck, daemons: () => [], health: async () => undefined }
}

export async function startBindfs (base: string, logs: string, teardown: Teardown): Promise<BenchSystem> {
  const src = join(base, 'bindfs-src')
  const mnt = join(base, 'mnt', 'bindfs')
  await mkdir(src, { recursive: true })
  await mkdir(mnt, { recursive: true })
  const d = new Daemon('bindfs', 'bindfs', ['-f', '-o', 'big_writes', src, mnt], join(logs, 'bindfs.log'))
  teardown.add('bindfs', async () => { await unmount(mnt); await d.stop() }, () => { lazyUnmountSync(mnt); d.stopSync() })
  await pollUntil('bindfs mounted', 20000, async () => {
    if (!d.running) throw new Error(`bindfs exited: ${d.lastOutput()}`)
    return (await isMounted(mnt)) ? true : undefined
  })
  return { name: 'bindfs', family: 'bindfs', replication: 1, dir: mnt, checkReplicas: noCopiesToCheck,
    daemons: () => [{ role: 'bindfs', pid: d.pid }],
    health: async () => {
      if (!d.running) return `bindfs exited: ${d.lastOutput()}`
      return (await isMounted(mnt)) ? undefined : `${mnt} is no longer mounted`
    },
  }
}
