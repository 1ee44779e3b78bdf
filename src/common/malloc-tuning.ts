// Keep freed stream buffers in the process instead of handing them back to the kernel.
//
// glibc malloc serves requests of 128 KiB and more with mmap and gives free heap memory
// back to the kernel as soon as 128 KiB lie free at its top. A data stream in Node
// allocates two fresh 64 KiB buffers per network read (the socket's read buffer and the
// HTTP parser's copy of the body) and frees them at the next GC; with those defaults
// the same memory goes back to the kernel and faults in again, page by page. Measured
// on a 256 MiB HTTP read: 20,000-80,000 minor page faults and 0.25-1.0 s system time,
// against a steady ~17,000 and 0.25-0.35 s with the thresholds raised.
//
// Node has no mallopt(), but glibc raises both thresholds for the rest of the process
// (mmap to the freed size, trim to twice that) when a block it had mmapped is freed:
// its "dynamic mmap threshold". So we take one 16 MiB buffer and drop it at once; its
// pages are never touched, and it is freed at the next GC. Free memory kept at the top
// of the heap is then bounded by 32 MiB. With another libc this is one short-lived,
// untouched allocation and changes nothing.

/** Size of the dropped buffer: below glibc's 32 MiB cap on the dynamic threshold. */
export const MALLOC_PRIME_BYTES = 16 * 1024 * 1024

let done = false

/** Once per process, before data streams start. */
export function raiseMallocThresholds (): void {
  if (done) return
  done = true
  void Buffer.allocUnsafeSlow(MALLOC_PRIME_BYTES)
}
