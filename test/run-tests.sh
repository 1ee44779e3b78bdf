#!/usr/bin/env bash
# Runs the tap suite under the given directories (default dist/test) and ends with one
# plain summary line, "N passed, N failed[, N skipped]", taken from tap's own counts.
set -uo pipefail
dirs=("$@")
[ ${#dirs[@]} -gt 0 ] || dirs=(dist/test)
files=$(find "${dirs[@]}" -name '*.test.js' | sort)
if [ -z "$files" ]; then
  echo "no test files under ${dirs[*]}"
  echo "0 passed, 1 failed"
  exit 1
fi
out=$(mktemp)
# --reporter=tap keeps tap's raw output, which we both show and count.
node_modules/.bin/tap --reporter=tap --disable-coverage --allow-empty-coverage --jobs=1 --timeout=900 $files 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
node test/summarize-tap.mjs "$out"
sum=$?
rm -f "$out"
if [ $status -ne 0 ] || [ $sum -ne 0 ]; then exit 1; fi
