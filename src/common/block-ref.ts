// The one way to build a BlockRef: its three fields, and `zero` only when set (the wire
// form omits it otherwise, and the NameServer's commit schema takes nothing else).
import type { BlockRef } from './protocol.js'

export function blockRef (id: number, gen: number, length: number, zero: boolean): BlockRef {
  return zero ? { id, gen, length, zero: true } : { id, gen, length }
}

/** The BlockRef fields of a block-like object (a LocatedBlock, a reply), its zero flag kept. */
export function bareBlockRef (b: BlockRef): BlockRef {
  return blockRef(b.id, b.gen, b.length, b.zero === true)
}
