#!/usr/bin/env bash
# Prints the raw and gzip -9 sizes of what users download.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT_DIR:-pkg}"
row() { printf '%-34s %9s B raw %9s B gzip\n' "$1" "$(wc -c <"$1")" "$(gzip -9c "$1" | wc -c)"; }
row "$out"/resumable_wasm_bg.wasm
row "$out"/resumable_wasm.js
row "$out"/script/resumable-wasm.js
total=$(( $(gzip -9c "$out"/resumable_wasm_bg.wasm | wc -c) + $(gzip -9c "$out"/resumable_wasm.js | wc -c) ))
awk -v t="$total" 'BEGIN { printf "two-file build (.wasm + glue), gzip: %d B (%.1f KiB; budget 80 KiB)\n", t, t / 1024 }'
