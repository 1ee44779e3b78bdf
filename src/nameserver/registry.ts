// The DataServers the NameServer knows: address, last storage report, liveness (by the
// monotonic clock) and the queue of commands waiting for the next heartbeat reply.
import { splitHostPort } from '../common/config.js'
import type { DataServerCommand, StorageReport } from '../common/protocol.js'

export interface DataServerInfo extends StorageReport {
  id: string
  address: string
  /** Host part of the address: placement spreads replicas across hosts. */
  host: string
  state: 'live' | 'dead'
  /** Monotonic ms of the last register/heartbeat. */
  lastSeen: number
  /** Monotonic ms of the last full block report since registering; undefined before. */
  fullReportAt: number | undefined
  /** Monotonic ms we last asked for a full report. */
  reportAskedAt: number
  /** Bytes promised to new replicas since the last heartbeat (placement's estimate). */
  scheduledBytes: number
  /** Replicate commands waiting for the next heartbeat reply. */
  queue: DataServerCommand[]
}

export class Registry {
  private readonly servers = new Map<string, DataServerInfo>()

  constructor (private readonly deadAfterMs: number) {}

  get (id: string): DataServerInfo | undefined { return this.servers.get(id) }
  isLive (id: string): boolean { return this.servers.get(id)?.state === 'live' }
  all (): DataServerInfo[] { return [...this.servers.values()] }
  live (): DataServerInfo[] { return this.all().filter(d => d.state === 'live') }

  /** Register (or re-register) a DataServer. Returns true when it was not live before. */
  register (id: string, address: string, report: StorageReport, now: number): boolean {
    const prev = this.servers.get(id)
    const wasLive = prev?.state === 'live'
    this.servers.set(id, {
      id,
      address,
      host: splitHostPort(address).host,
      ...pickReport(report),
      state: 'live',
      lastSeen: now,
      fullReportAt: undefined,
      reportAskedAt: now,
      scheduledBytes: 0,
      queue: wasLive ? prev.queue : [],
    })
    return !wasLive
  }

  /** A heartbeat from a live DataServer; undefined when it must register again. */
  heartbeat (id: string, address: string, report: StorageReport, now: number): DataServerInfo | undefined {
    const ds = this.servers.get(id)
    if (ds === undefined || ds.state !== 'live' || ds.address !== address) return undefined
    Object.assign(ds, pickReport(report))
    ds.lastSeen = now
    ds.scheduledBytes = 0
    return ds
  }

  /** Forget a DataServer's liveness (clean shutdown): it stays listed as dead. */
  markDead (id: string): DataServerInfo | undefined {
    const ds = this.servers.get(id)
    if (ds === undefined || ds.state === 'dead') return undefined
    ds.state = 'dead'
    ds.queue = []
    ds.scheduledBytes = 0
    return ds
  }

  /** DataServers whose last heartbeat is older than the dead interval; they are marked dead. */
  expire (now: number): DataServerInfo[] {
    const died: DataServerInfo[] = []
    for (const ds of this.servers.values()) {
      if (ds.state === 'live' && now - ds.lastSeen > this.deadAfterMs) {
        this.markDead(ds.id)
        died.push(ds)
      }
    }
    return died
  }

  takeQueue (ds: DataServerInfo): DataServerCommand[] {
    const q = ds.queue
    ds.queue = []
    return q
  }
}

function pickReport (r: StorageReport): StorageReport {
  return { capacity: r.capacity, used: r.used, remaining: r.remaining, activeStreams: r.activeStreams }
}
