#!/usr/bin/env bash
# Runs the wasm32 tests: engine scenarios under Node, and the browser tests (tests/web_transport.rs)
# in each engine of $BROWSERS (default: chromium firefox webkit, in that order) against a
# server-fixture this script starts on a free port and stops afterwards. The first engine runs
# every wasm32 test binary; the others run web_transport alone.
#   scripts/test-wasm.sh [cargo test arguments, e.g. --test web_transport -- a_filter]
# Fails when a test binary that should carry tests ran none (a filter matching nothing, tests
# compiled out, a runner that found nothing): "0 passed" is not a pass.
#
# wasm-bindgen-test-runner drives chromedriver and geckodriver directly. It has no WebKitGTK
# support of its own, but its Safari path (SAFARIDRIVER) drives WebKitWebDriver: it opens the
# session with empty capabilities, and WebKitWebDriver then starts its default browser, WebKitGTK's
# MiniBrowser, which needs an X display (xvfb-run when there is none).
set -euo pipefail
cd "$(dirname "$0")/.."

log="$(mktemp -d)"
fixture_pid=""
cleanup() { [ -n "$fixture_pid" ] && kill "$fixture_pid" 2>/dev/null; rm -rf "$log"; }
trap cleanup EXIT

# One fixture serves every engine's run (each up to WASM_BINDGEN_TEST_TIMEOUT per binary, plus
# its build): its lifetime, a guard against an orphan, covers them all; the trap stops it.
target/debug/server-fixture --no-page --api-listen 127.0.0.1:0 --cors reflect \
  --max-lifetime 7200 >"$log/out" 2>"$log/err" &
fixture_pid=$!
for _ in $(seq 1 100); do [ -s "$log/out" ] && break; sleep 0.1; done
field() { head -n1 "$log/out" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[process.argv[1]]))' "$1"; }
api="$(field api)"
[ -n "$api" ] || { echo "test-wasm: fixture did not start"; cat "$log/err"; exit 1; }

export UPLOAD_FIXTURE_URL="$api"
# The test page is on its own origin: its /__fixture calls present the fixture's control token.
export UPLOAD_FIXTURE_TOKEN="$(field control_token)"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-180}"
# The runner isolates its page (COEP require-corp) by default, which would block the no-cors
# reachability probe the CORS diagnosis relies on; real pages are not isolated.
export WASM_BINDGEN_TEST_NO_ORIGIN_ISOLATION=1
export WASM_BINDGEN_TEST_WEBDRIVER_JSON="$PWD/tests/webdriver.json"

# Tests passed per test binary in one engine's run, from cargo's "Running tests/<name>.rs
# (target/…)" headers and the runner's "test result: ok. N passed" lines.
passed_per_binary() {
  awk '
    /^ +Running .*\(/ { bin = $2; sub(/^tests\//, "", bin); sub(/\.rs$/, "", bin) }
    /^ *Doc-tests / { bin = "doc-tests" }
    /^test result: ok\./ { n[bin] += $4; total += $4 }
    END { for (b in n) print b, n[b]; print "(total)", total + 0 }' "$1"
}

status=0
first=1
browsers="${BROWSERS:-chromium firefox webkit}"
[ -n "${browsers// /}" ] || browsers="chromium firefox webkit"
for browser in $browsers; do
  # The runner takes the first driver variable it finds (GECKODRIVER, then SAFARIDRIVER, then
  # CHROMEDRIVER), so each engine unsets the others'.
  case "$browser" in
    chromium) run=(env -u GECKODRIVER -u SAFARIDRIVER CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}") ;;
    firefox) run=(env -u SAFARIDRIVER GECKODRIVER="${GECKODRIVER:-$(command -v geckodriver)}") ;;
    webkit)
      run=(env -u GECKODRIVER SAFARIDRIVER="${WEBKITWEBDRIVER:-/usr/bin/WebKitWebDriver}")
      [ -n "${DISPLAY:-}" ] || run=(xvfb-run -a "${run[@]}") ;;
    *) echo "test-wasm: unknown browser '$browser' in BROWSERS (chromium, firefox, webkit)" >&2; exit 2 ;;
  esac
  # Without arguments the first engine runs every wasm32 binary, the others web_transport alone;
  # with arguments (a selection) every engine runs that selection.
  if [ $# -gt 0 ]; then args=("$@")
  elif [ "$first" = 1 ]; then args=()
  else args=(--test web_transport)
  fi
  must_have_tests=(web_transport)
  [ "$first" = 1 ] && must_have_tests=(engine_scenarios web_transport)
  echo "test-wasm: $browser" >&2
  "${run[@]}" cargo test -p resumable-wasm --target wasm32-unknown-unknown "${args[@]}" 2>&1 | tee "$log/test-$browser"
  passed="$(passed_per_binary "$log/test-$browser")"
  count_of() { awk -v b="$1" '$1 == b { print $2 }' <<<"$passed"; }
  for bin in "${must_have_tests[@]}"; do
    n="$(count_of "$bin")"
    if [ -z "$n" ] && [ $# -gt 0 ]; then continue; fi
    if [ "${n:-0}" -eq 0 ]; then
      echo "test-wasm: $browser: tests/$bin.rs ran ${n:-no} tests (expected at least one)" >&2
      status=1
    fi
  done
  if [ "$(count_of '(total)')" -eq 0 ]; then echo "test-wasm: $browser: no test ran" >&2; status=1; fi
  scenarios="$(count_of engine_scenarios)"
  echo "test-wasm: $browser:${scenarios:+ $scenarios engine scenario tests,} $(count_of web_transport) browser tests passed" >&2
  first=0
done
exit "$status"
