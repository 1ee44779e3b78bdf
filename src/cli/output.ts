// Writing to stdout with backpressure: large listings and file contents must not pile
// up in memory when stdout is a slow pipe.
import { once } from 'node:events'

export async function writeOut (text: string | Buffer, stream: NodeJS.WritableStream = process.stdout): Promise<void> {
  if (!stream.write(text)) await once(stream, 'drain')
}

export async function writeLines (lines: readonly string[], stream: NodeJS.WritableStream = process.stdout): Promise<void> {
  // Batch into moderately sized writes: one syscall per line is slow for big trees.
  let buf = ''
  for (const l of lines) {
    buf += l + '\n'
    if (buf.length >= 64 * 1024) { await writeOut(buf, stream); buf = '' }
  }
  if (buf !== '') await writeOut(buf, stream)
}

export function writeErr (line: string): void {
  process.stderr.write(line.endsWith('\n') ? line : line + '\n')
}

export function printJson (value: unknown): Promise<void> {
  return writeOut(JSON.stringify(value, null, 2) + '\n')
}
