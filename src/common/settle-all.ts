// Wait for every one of several concurrent operations, then fail with the first error.
// Promise.all rejects at the first failure while the others still run: a FUSE read
// answered then would let a late copy land in a buffer that libfuse has already handed to
// the next request, and a DataServer would close a file handle still in use.

export async function settleAll (ps: ReadonlyArray<Promise<unknown>>): Promise<void> {
  if (ps.length === 1) { await ps[0]; return }
  const rs = await Promise.allSettled(ps)
  for (const r of rs) if (r.status === 'rejected') throw r.reason
}
