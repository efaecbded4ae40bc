#!/usr/bin/env bash
# Runs node's test runner on test files, one file at a time, and fails unless at least MIN tests
# passed: `node --test` itself exits 0 when it ran nothing (a renamed file, a glob that matched
# nothing on a later Node), so "0 passed" is not taken for a pass.
#   scripts/node-tests.sh LAYER MIN FILE...
# LAYER names the run in messages; pass the files as an explicit shell glob
# (tests/e2e/*.test.mjs): one that matches nothing stays literal and fails here.
set -euo pipefail
cd "$(dirname "$0")/.."
layer="$1"
min="$2"
shift 2
[ "$#" -gt 0 ] || { echo "$layer: no test files given" >&2; exit 1; }
for f in "$@"; do
  [ -f "$f" ] || { echo "$layer: no test file '$f' (a glob that matched nothing?)" >&2; exit 1; }
done
tap="$(mktemp)"
trap 'rm -f "$tap"' EXIT
# spec for the reader; TAP into a file for the counts of its final summary (`# pass N`).
node --test --test-concurrency=1 --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" "$@"
summary() { awk -v key="$1" '$0 ~ "^# " key " " { n = $3 } END { print n + 0 }' "$tap"; }
tests="$(summary tests)"
pass="$(summary pass)"
not_run=$(($(summary skipped) + $(summary todo)))
echo "$layer: $pass of $tests tests passed in $# files (at least $min expected)" >&2
if [ "$pass" -lt "$min" ]; then
  echo "$layer: $pass tests passed, expected at least $min: a test file or its tests went missing" >&2
  exit 1
fi
if [ "$not_run" -gt 0 ]; then
  echo "$layer: $not_run tests skipped or todo: every test must run" >&2
  exit 1
fi
