// A progress bar for put/get of large files, on stderr and only when stderr is a
// terminal: scripts and pipes see nothing extra.
import { humanBytes } from './format.js'

/** Below this size a transfer is too quick for a bar to help. */
export const PROGRESS_MIN_BYTES = 4 * 1024 * 1024

export interface Progress {
  update (bytes: number): void
  stop (): void
}

const NO_PROGRESS: Progress = { update () {}, stop () {} }

export async function createProgress (label: string, total: number | undefined, stream: NodeJS.WriteStream = process.stderr): Promise<Progress> {
  if (stream.isTTY !== true || total === undefined || total < PROGRESS_MIN_BYTES) return NO_PROGRESS
  // Loaded only for a terminal: scripts should not pay for it.
  const { default: cliProgress } = await import('cli-progress')
  const bar = new cliProgress.SingleBar({
    stream,
    format: `${label} |{bar}| {percentage}% {done}/{size} {rate} ETA {eta_formatted}`,
    hideCursor: true,
    clearOnComplete: false,
    etaBuffer: 50,
    fps: 5,
  }, cliProgress.Presets.shades_classic)
  const started = Date.now()
  const size = humanBytes(total)
  bar.start(total, 0, { done: humanBytes(0), size, rate: '' })
  let stopped = false
  return {
    update (bytes: number): void {
      if (stopped) return
      const secs = (Date.now() - started) / 1000
      const rate = secs > 0 ? `${humanBytes(Math.round(bytes / secs))}/s` : ''
      bar.update(Math.min(bytes, total), { done: humanBytes(bytes), size, rate })
    },
    stop (): void {
      if (stopped) return
      stopped = true
      bar.stop()
    },
  }
}
