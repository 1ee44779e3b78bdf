// A local model of a file's bytes, for tests that write through the system and compare.

/** `model` with `data` written at `off`: grown (zero-filled) when the write ends past it. */
export function writeAt (model: Buffer, data: Uint8Array, off: number): Buffer {
  let out = model
  if (off + data.length > out.length) {
    out = Buffer.alloc(off + data.length)
    model.copy(out)
  }
  out.set(data, off)
  return out
}
