// A block the NameServer knows to be zeros (LocatedBlock.zero: stored sparse, as a hole
// in a file is) is read without asking a DataServer: its bytes are known. A sparse file's
// holes then cost no replica reads, checksum work or network, and stay readable while
// the DataServers that hold them are down.
import { Readable } from 'node:stream'

/** Zeros are handed out at most this many at a time (each piece freshly allocated). */
export const ZERO_PIECE_BYTES = 1024 * 1024

/** `length` zero bytes, in pieces of at most ZERO_PIECE_BYTES. */
export function * zeroPieces (length: number): Generator<Buffer> {
  // Fresh pieces: a consumer may keep or change what it is given.
  for (let left = length; left > 0; left -= ZERO_PIECE_BYTES) yield Buffer.alloc(Math.min(left, ZERO_PIECE_BYTES))
}

/** A stream of `length` zero bytes. */
export function zeroStream (length: number): Readable {
  return Readable.from(zeroPieces(length), { objectMode: false })
}
