// Helpers for NameServer unit tests: a core on a temp dir driven by a ManualClock, and
// fake DataServers that talk to the core directly (no HTTP).
import { ManualClock } from '../../../src/common/clock.js'
import { parseConfig, type HissConfig, type HissConfigInput } from '../../../src/common/config.js'
import { silentLogger } from '../../../src/common/log.js'
import type { BlockRef, DataServerCommand, FileStat, ReplicaTuple } from '../../../src/common/protocol.js'
import { NameServerCore } from '../../../src/nameserver/core.js'
import type { Identity } from '../../../src/nameserver/permissions.js'

export interface TestLike { testdir (): string, teardown (fn: () => unknown): void }

export const SECRET = 'unit-test-secret-0123456789abcdef'
export const ROOT: Identity = { uid: 0, gids: [0] }
export const ALICE: Identity = { uid: 1000, gids: [1000, 2000] }
export const BOB: Identity = { uid: 1001, gids: [1001] }

export const BASE_CONFIG: Partial<HissConfigInput> = {
  'cluster.secret': SECRET,
  'nameserver.sync': 'normal',
  'block.size': 64 * 1024,
  'replication': 2,
  'replication.min': 1,
  'heartbeat.interval.ms': 1000,
  'heartbeat.dead.ms': 10000,
  'replication.interval.ms': 1000,
  'replication.pending.timeout.ms': 5000,
  'lease.timeout.ms': 5000,
  'safemode.extension.ms': 0,
  'client.timeout.ms': 2000,
}

/** Deterministic random numbers (mulberry32), so placement is repeatable. */
export function seeded (seed = 42): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface CoreHandle { core: NameServerCore, clock: ManualClock, cfg: HissConfig, dir: string }

export function makeCore (t: TestLike, over: Partial<HissConfigInput> = {}, dir = t.testdir(), clock = new ManualClock()): CoreHandle {
  const cfg = parseConfig({ 'nameserver.address': '127.0.0.1:0', 'nameserver.root.dir': dir, ...BASE_CONFIG, ...over })
  const core = new NameServerCore(cfg, { clock, log: silentLogger, random: seeded() })
  t.teardown(() => { core.close() })
  return { core, clock, cfg, dir }
}

/** A DataServer that exists only as calls into the core. */
export class FakeDs {
  capacity = 10 * 1024 * 1024 * 1024
  remaining: number
  activeStreams = 0

  constructor (readonly core: NameServerCore, readonly id: string, readonly address: string, remaining = 1024 * 1024 * 1024) {
    this.remaining = remaining
  }

  private stats (): { capacity: number, used: number, remaining: number, activeStreams: number } {
    return { capacity: this.capacity, used: this.capacity - this.remaining, remaining: this.remaining, activeStreams: this.activeStreams }
  }

  register (blocks: ReplicaTuple[] = []): this {
    this.core.dataservers.register({ id: this.id, address: this.address, ...this.stats() })
    this.report(blocks)
    return this
  }

  /** Commands from the heartbeat reply; throws if told to re-register. */
  heartbeat (): DataServerCommand[] {
    const r = this.core.dataservers.heartbeat({ id: this.id, address: this.address, blocks: 0, ...this.stats() })
    if (r.reregister === true) throw new Error(`${this.id} told to re-register`)
    return r.commands
  }

  report (blocks: ReplicaTuple[]): void { this.core.dataservers.blockReport({ id: this.id, blocks }) }
  received (...blocks: ReplicaTuple[]): void { this.core.dataservers.incremental({ id: this.id, received: blocks }) }
  corrupt (...blocks: Array<[number, number]>): void { this.core.dataservers.incremental({ id: this.id, corrupt: blocks }) }
}

export function cluster (core: NameServerCore, n: number, opts: { hosts?: number } = {}): FakeDs[] {
  const out: FakeDs[] = []
  for (let i = 0; i < n; i++) {
    const host = opts.hosts === undefined ? `10.0.0.${i + 1}` : `10.0.0.${(i % opts.hosts) + 1}`
    out.push(new FakeDs(core, `ds${i}`, `${host}:${9000 + i}`).register())
  }
  return out
}

export function deletesIn (cmds: DataServerCommand[]): Array<[number, number]> {
  return cmds.flatMap(c => c.type === 'delete' ? c.blocks : [])
}

/**
 * Write a file through the core as a client would: open (create), one addblock per
 * length, every target reports the replica, commit.
 */
export async function writeFile (core: NameServerCore, dss: FakeDs[], path: string, lengths: number[], opts: { who?: Identity, clientId?: string, replication?: number, overwrite?: boolean } = {}): Promise<{ stat: FileStat, blocks: BlockRef[], holders: string[][] }> {
  const who = opts.who ?? ROOT
  const open = core.writes.open({ path, clientId: opts.clientId ?? 'client-1', create: true, overwrite: opts.overwrite, replication: opts.replication }, who)
  const blocks: BlockRef[] = []
  const holders: string[][] = []
  for (const length of lengths) {
    const add = core.writes.addBlock(open.writeId)
    const b = { id: add.block.id, gen: add.block.gen, length }
    for (const t of add.targets) dss.find(d => d.id === t.id)!.received([b.id, b.gen, length])
    blocks.push(b)
    holders.push(add.targets.map(t => t.id))
  }
  const stat = await core.writes.commit({ writeId: open.writeId, blocks, size: lengths.reduce((a, b) => a + b, 0) })
  return { stat, blocks, holders }
}
