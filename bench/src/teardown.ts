// Teardown steps registered as things start, run last-in-first-out: at the normal end,
// on an error, and on Ctrl-C/SIGTERM. A synchronous fallback runs from process 'exit'
// for whatever the async path did not reach (so nothing is left mounted or running).
import { spawnSync } from 'node:child_process'
import { killRunningCommands } from './proc.js'

interface Step { name: string, run: () => Promise<void>, runSync: () => void, done: boolean }

export class Teardown {
  private readonly steps: Step[] = []
  private running: Promise<void> | undefined
  /** Set on Ctrl-C/SIGTERM: the run must start nothing new. */
  aborting = false

  add (name: string, run: () => Promise<void>, runSync: () => void): void {
    this.steps.push({ name, run, runSync, done: false })
  }

  async runAll (): Promise<void> {
    this.running ??= (async () => {
      for (const step of [...this.steps].reverse()) {
        if (step.done) continue
        try {
          await step.run()
        } catch (err) {
          process.stderr.write(`teardown ${step.name}: ${(err as Error).message}\n`)
        }
        step.done = true
      }
    })()
    await this.running
  }

  runAllSync (): void {
    for (const step of [...this.steps].reverse()) {
      if (step.done) continue
      try { step.runSync() } catch { /* best effort */ }
      step.done = true
    }
  }

  /** Ctrl-C / SIGTERM: kill running commands, tear everything down, exit 130. */
  installSignalHandlers (): void {
    let caught = false
    const onSignal = (sig: NodeJS.Signals): void => {
      if (caught) return
      caught = true
      this.aborting = true
      process.stderr.write(`\n${sig}: stopping every benchmark process and unmounting...\n`)
      killRunningCommands()
      const hard = setTimeout(() => { this.runAllSync(); process.exit(130) }, 60000)
      void this.runAll().finally(() => { clearTimeout(hard); process.exit(130) })
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    process.on('SIGHUP', onSignal)
    process.on('exit', () => { this.runAllSync() })
  }
}

export function lazyUnmountSync (mnt: string): void {
  spawnSync('fusermount', ['-u', '-z', mnt], { stdio: 'ignore' })
}
