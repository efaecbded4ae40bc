#!/usr/bin/env bash
# Runs the wasm32 tests: engine scenarios under Node, and the browser tests in headless Chromium
# against a server-fixture this script starts on a free port and stops afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

log="$(mktemp -d)"
fixture_pid=""
cleanup() { [ -n "$fixture_pid" ] && kill "$fixture_pid" 2>/dev/null; rm -rf "$log"; }
trap cleanup EXIT

target/debug/server-fixture --no-page --api-listen 127.0.0.1:0 --cors reflect \
  --max-lifetime 900 >"$log/out" 2>"$log/err" &
fixture_pid=$!
for _ in $(seq 1 100); do [ -s "$log/out" ] && break; sleep 0.1; done
field() { head -n1 "$log/out" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[process.argv[1]]))' "$1"; }
api="$(field api)"
[ -n "$api" ] || { echo "test-wasm: fixture did not start"; cat "$log/err"; exit 1; }

export UPLOAD_FIXTURE_URL="$api"
# The test page is on its own origin: its /__fixture calls present the fixture's control token.
export UPLOAD_FIXTURE_TOKEN="$(field control_token)"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-180}"
export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
# The runner isolates its page (COEP require-corp) by default, which would block the no-cors
# reachability probe the CORS diagnosis relies on; real pages are not isolated.
export WASM_BINDGEN_TEST_NO_ORIGIN_ISOLATION=1
export WASM_BINDGEN_TEST_WEBDRIVER_JSON="$PWD/tests/webdriver.json"
cargo test -p resumable-wasm --target wasm32-unknown-unknown
