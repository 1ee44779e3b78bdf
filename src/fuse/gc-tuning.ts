// V8 garbage-collector setting for the mount process.
//
// Every byte the mount reads from a DataServer arrives through Node's HTTP client,
// which allocates two ArrayBuffers per 64 KiB socket read (the read buffer and the
// parser's copy of the body), and every FUSE read hands us an external 128 KiB buffer.
// The mount's own heap is small (~10 MB), so V8 kept starting incremental marking,
// which ran ~27 mark-compacts per 256 MiB read, with concurrent marking threads and
// write barriers active most of the time: about half of the mount's CPU on a
// sequential read (bench/io-micro.sh, dd of 256 MiB: 1.55-1.8 s CPU -> 0.7-1.0 s with
// incremental marking off; 0-4 mark-compacts instead of 26-33 on the same data path
// without FUSE). Old-generation collections then happen when the heap reaches its
// limit, atomically; with a heap of tens of MB those pauses are a few ms.
//
// A node flag passed explicitly (execArgv or NODE_OPTIONS) naming incremental marking wins.
import { setFlagsFromString } from 'node:v8'

export const MOUNT_V8_FLAGS = '--no-incremental-marking'

/** Apply MOUNT_V8_FLAGS unless the user set incremental marking themselves; true when applied. */
export function tuneGc (execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): boolean {
  if (execArgv.some(a => a.includes('incremental-marking')) || nodeOptions.includes('incremental-marking')) return false
  setFlagsFromString(MOUNT_V8_FLAGS)
  return true
}
