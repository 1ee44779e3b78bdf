// A seeded PRNG for tests: same seed, same run, so a failure is reproducible.

/** mulberry32: small, fast, good enough to drive a fuzzer; same seed, same run. */
export class Rng {
  private s: number
  constructor (readonly seed: number) { this.s = seed >>> 0 }

  /** [0, 1) */
  next (): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0
    let t = this.s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** Integer in [0, n). */
  below (n: number): number { return Math.floor(this.next() * n) }

  /** Integer in [lo, hi]. */
  int (lo: number, hi: number): number { return lo + Math.floor(this.next() * (hi - lo + 1)) }
  bool (p = 0.5): boolean { return this.next() < p }
  pick<T> (a: readonly T[]): T {
    if (a.length === 0) throw new Error('pick from an empty list')
    return a[Math.floor(this.next() * a.length)] as T
  }

  bytes (n: number): Buffer {
    const b = Buffer.alloc(n)
    for (let i = 0; i < n; i += 4) {
      const v = Math.floor(this.next() * 4294967296)
      for (let k = 0; k < 4 && i + k < n; k++) b[i + k] = (v >>> (8 * k)) & 0xff
    }
    return b
  }

  /** Printable ASCII string. */
  ascii (n: number): string {
    let s = ''
    for (let i = 0; i < n; i++) s += String.fromCharCode(this.int(32, 126))
    return s
  }

  /** A fork with its own stream (one per worker), still determined by the seed. */
  fork (k: number): Rng { return new Rng((Math.imul(this.seed ^ 0x9e3779b9, k + 1) + k) >>> 0) }
}
