#!/usr/bin/env bash
# `make bench [QUICK=1]`: install the peers from Debian when missing, build HissDFS and
# the harness, run the benchmark (bench/src/main.ts). Extra arguments go to the harness
# (--quick, --no-hissdfs).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "make bench must run as root (it mounts FUSE file systems, drops caches, installs packages)" >&2
  exit 1
fi

missing=""
command -v bindfs >/dev/null 2>&1 || missing="$missing bindfs"
command -v mfsmaster >/dev/null 2>&1 || missing="$missing moosefs-master"
command -v mfschunkserver >/dev/null 2>&1 || missing="$missing moosefs-chunkserver"
{ command -v mfsmount >/dev/null 2>&1 && command -v mfssetgoal >/dev/null 2>&1; } || missing="$missing moosefs-client"
command -v fio >/dev/null 2>&1 || missing="$missing fio"
if [ -n "$missing" ]; then
  echo "installing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq </dev/null
  apt-get install -y -qq $missing </dev/null
fi

# HissDFS: built as far as it compiles (tsc emits even with type errors elsewhere);
# the harness reports HissDFS rows as "not available" when its entry points are missing
# or do not start.
mkdir -p bench/work
if ! node_modules/.bin/tsc -p tsconfig.json >bench/work/tsc.log 2>&1; then
  echo "note: tsc reported errors building HissDFS ($(grep -c 'error TS' bench/work/tsc.log) errors, see bench/work/tsc.log); benchmarking what was emitted"
fi
node_modules/.bin/tsc -p bench/tsconfig.json
# The harness's own tests (seconds): a harness that computes wrong ratios or verdicts
# must not produce a report.
if ! bash test/run-tests.sh dist/bench/test >bench/work/bench-test.log 2>&1; then
  tail -n 30 bench/work/bench-test.log >&2
  echo "bench: the harness's own tests failed (bench/work/bench-test.log); not running the benchmark" >&2
  exit 1
fi
echo "bench: harness tests: $(tail -n 1 bench/work/bench-test.log)"

exec node dist/bench/src/main.js "$@"
