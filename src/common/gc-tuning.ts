// V8 garbage-collector setting for the processes that move block data: the mount and
// the DataServer.
//
// Every byte either of them moves arrives in buffers Node allocates per socket read
// (the HTTP client's and server's 64 KiB reads, the parser's body slices; the mount
// also gets an external 128 KiB buffer per FUSE read). Their own heaps are small
// (~10 MB), so the external memory kept starting incremental marking, with concurrent
// marking threads and write barriers active most of the time. Mount, sequential read
// (bench/io-micro.sh, dd of 256 MiB): ~27 mark-compacts and 1.55-1.8 s CPU with it,
// 0-4 and 0.7-1.0 s without. DataServers (three, replication 3, 256 MiB): `hissdfs put`
// 1.29-1.65 s CPU per DataServer and 2.8-3.3 s with it, 1.0-1.3 s and 2.4-2.55 s
// without; dd conv=fsync through the mount 0.95-1.3 s CPU each and 2.6-2.9 s, against
// 0.52-0.8 s and 1.7-2.2 s. Old-generation collections then happen when the heap reaches
// its limit, atomically; with heaps of tens of MB those pauses are a few ms. (Not for the
// NameServer: its heap is the namespace cache, where incremental marking keeps pauses
// short.)
//
// A node flag passed explicitly (execArgv or NODE_OPTIONS) naming incremental marking wins.
import { setFlagsFromString } from 'node:v8'

export const DATA_PATH_V8_FLAGS = '--no-incremental-marking'

/** Apply DATA_PATH_V8_FLAGS unless the user set incremental marking themselves; true when applied. */
export function tuneGc (execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): boolean {
  if (execArgv.some(a => a.includes('incremental-marking')) || nodeOptions.includes('incremental-marking')) return false
  setFlagsFromString(DATA_PATH_V8_FLAGS)
  return true
}
