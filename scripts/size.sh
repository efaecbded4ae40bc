#!/usr/bin/env bash
# Prints the raw and gzip -9 sizes of what users download, and fails when they exceed the budget:
# the two-file build (.wasm + ES-module glue) SIZE_BUDGET_KIB, the script-tag file
# SCRIPT_BUDGET_KIB (gzip -9, KiB = 1024 B). `make test` runs it after the build.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT_DIR:-pkg}"
budget_kib="${SIZE_BUDGET_KIB:-112}"
script_budget_kib="${SCRIPT_BUDGET_KIB:-116}"
gz() { gzip -9c "$1" | wc -c; }
row() { printf '%-34s %9s B raw %9s B gzip\n' "$1" "$(wc -c <"$1")" "$(gz "$1")"; }
row "$out"/resumable_wasm_bg.wasm
row "$out"/resumable_wasm.js
row "$out"/script/resumable-wasm.js
total=$(( $(gz "$out"/resumable_wasm_bg.wasm) + $(gz "$out"/resumable_wasm.js) ))
script=$(gz "$out"/script/resumable-wasm.js)
awk -v t="$total" -v b="$budget_kib" 'BEGIN { printf "two-file build (.wasm + glue), gzip: %d B (%.1f KiB; budget %s KiB)\n", t, t / 1024, b }'
awk -v t="$script" -v b="$script_budget_kib" 'BEGIN { printf "script-tag file, gzip: %d B (%.1f KiB; budget %s KiB)\n", t, t / 1024, b }'
status=0
if (( total > budget_kib * 1024 )); then
  echo "size: the two-file build is over its ${budget_kib} KiB budget by $(( total - budget_kib * 1024 )) B" >&2
  status=1
fi
if (( script > script_budget_kib * 1024 )); then
  echo "size: the script-tag file is over its ${script_budget_kib} KiB budget by $(( script - script_budget_kib * 1024 )) B" >&2
  status=1
fi
exit "$status"
