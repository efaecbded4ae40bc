#!/usr/bin/env bash
# Runs the wasm32 tests: engine scenarios under Node, and the browser tests in headless Chromium
# against a server-fixture this script starts on a free port and stops afterwards.
#   scripts/test-wasm.sh [cargo test arguments, e.g. --test web_transport -- a_filter]
# Fails when a test binary that should carry tests ran none (a filter matching nothing, tests
# compiled out, a runner that found nothing): "0 passed" is not a pass.
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
cargo test -p resumable-wasm --target wasm32-unknown-unknown "$@" 2>&1 | tee "$log/test"

# Tests passed per test binary, from cargo's "Running tests/<name>.rs (target/…)" headers and
# the runner's "test result: ok. N passed" lines. Without arguments every binary below must run and pass at
# least one test; with arguments (a selection), those of them that ran.
must_have_tests=(engine_scenarios web_transport)
passed="$(awk '
  /^ +Running .*\(/ { bin = $2; sub(/^tests\//, "", bin); sub(/\.rs$/, "", bin) }
  /^ *Doc-tests / { bin = "doc-tests" }
  /^test result: ok\./ { n[bin] += $4; total += $4 }
  END { for (b in n) print b, n[b]; print "(total)", total + 0 }' "$log/test")"
count_of() { awk -v b="$1" '$1 == b { print $2 }' <<<"$passed"; }
status=0
for bin in "${must_have_tests[@]}"; do
  n="$(count_of "$bin")"
  if [ -z "$n" ] && [ $# -gt 0 ]; then continue; fi
  if [ "${n:-0}" -eq 0 ]; then
    echo "test-wasm: tests/$bin.rs ran ${n:-no} tests (expected at least one)" >&2
    status=1
  fi
done
if [ "$(count_of '(total)')" -eq 0 ]; then echo "test-wasm: no test ran" >&2; status=1; fi
[ "$status" = 0 ] && echo "test-wasm: $(count_of engine_scenarios) engine scenario tests, $(count_of web_transport) browser tests passed" >&2
exit "$status"
