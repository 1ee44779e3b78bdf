#!/usr/bin/env node
// `hissdfs`: the command line. Client commands go through the client library only;
// `nameserver` and `dataserver` run the server roles in the foreground.
import { CommanderError } from 'commander'
import { buildProgram } from './program.js'
import { EXIT_FAIL, EXIT_USAGE } from './errors.js'

/** After the command finished, give stdout this long to drain, then exit regardless. */
const EXIT_GRACE_MS = 2000

async function main (): Promise<void> {
  const program = buildProgram()
  try {
    await program.parseAsync(process.argv)
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version "fail" with exit code 0; real usage errors are exit 2.
      process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE
    } else {
      process.stderr.write(`hissdfs: ${(err as Error)?.message ?? String(err)}\n`)
      process.exitCode = EXIT_FAIL
    }
  }
  // A leaked socket or timer must never keep a finished command alive.
  setTimeout(() => process.exit(), EXIT_GRACE_MS).unref()
}

void main()
