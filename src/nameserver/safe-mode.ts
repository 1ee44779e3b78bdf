// Safe mode after a start: block locations are soft state, so until enough DataServers
// have reported (the threshold fraction of referenced blocks with a live replica, held
// for an extension period) the NameServer must not conclude that blocks are missing or
// that replicas are orphans worth deleting. It leaves safe mode once and for all.

export interface SafeModeOptions { threshold: number, extensionMs: number }

export class SafeMode {
  private on = true
  private reachedAt: number | undefined

  constructor (private readonly opts: SafeModeOptions) {}

  get active (): boolean { return this.on }

  /**
   * Update with the current counts; returns true when this call left safe mode. With no
   * blocks at all there is nothing to wait for.
   */
  update (safeBlocks: number, totalBlocks: number, now: number): boolean {
    if (!this.on) return false
    if (totalBlocks === 0) { this.on = false; return true }
    if (safeBlocks / totalBlocks < this.opts.threshold) { this.reachedAt = undefined; return false }
    this.reachedAt ??= now
    if (now - this.reachedAt >= this.opts.extensionMs) { this.on = false; return true }
    return false
  }

  /** Leave at once (administrator's decision). */
  leave (): void { this.on = false }

  status (): { active: boolean, reachedAt: number | undefined } { return { active: this.on, reachedAt: this.reachedAt } }
}
