// Namespace calls go out as the calling user (so the NameServer records them as owner
// and checks their permissions as well as the kernel did), one client per identity,
// created on demand and kept in a small LRU. The caller and its groups come from the
// patched fuse-native (see fuse-context.ts).
import type { Clock } from '../common/clock.js'
import type { HissFs, Identity } from '../client/types.js'
import { CallerIdentities, type CallerContext } from './fuse-context.js'

export type OpContext = CallerContext

export const MAX_POOLED_CLIENTS = 32

export class ClientPool {
  private readonly clients = new Map<string, HissFs>()
  private readonly ids: CallerIdentities

  constructor (
    /** The mount's own client (its identity: root for an allow_other mount). */
    readonly self: HissFs,
    private readonly selfIdentity: Identity,
    private readonly make: (id: Identity) => HissFs,
    clock: Clock,
  ) {
    this.ids = new CallerIdentities({ clock })
  }

  /** Whether forCaller(ctx) is the mount's own client (so its calls carry the mount's identity). */
  actsAsSelf (ctx: OpContext | undefined): boolean {
    // pid 0: a request the kernel sends on its own; never act as "uid 0" for it.
    return ctx === undefined || ctx.pid <= 0 || ctx.uid === this.selfIdentity.uid
  }

  /** The client acting for the caller of an op (the mount's own when unknown or same user). */
  async forCaller (ctx: OpContext | undefined): Promise<HissFs> {
    if (ctx === undefined || this.actsAsSelf(ctx)) return this.self
    const id = await this.ids.identity(ctx)
    const key = `${id.uid}:${id.gids.join(',')}`
    let c = this.clients.get(key)
    if (c !== undefined) {
      this.clients.delete(key)
      this.clients.set(key, c)
      return c
    }
    c = this.make(id)
    this.clients.set(key, c)
    while (this.clients.size > MAX_POOLED_CLIENTS) {
      const oldest = this.clients.entries().next()
      if (oldest.done === true) break
      this.clients.delete(oldest.value[0])
      // Namespace-only clients hold no leases: closing one just drops its sockets.
      void oldest.value[1].close().catch(() => {})
    }
    return c
  }

  async close (): Promise<void> {
    const all = [...this.clients.values()]
    this.clients.clear()
    await Promise.all(all.map(c => c.close().catch(() => {})))
  }
}
