#!/usr/bin/env bash
# Runs the wasm32 tests: engine scenarios under Node, and the browser tests (tests/web_transport.rs)
# in each engine of $BROWSERS (default: chromium firefox webkit, in that order) against a
# server-fixture this script starts on a free port and stops afterwards. The first engine runs
# every wasm32 test binary; the others run web_transport alone.
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

target/debug/server-fixture --no-page --api-listen 127.0.0.1:0 --cors reflect \
  --max-lifetime 900 >"$log/out" 2>"$log/err" &
fixture_pid=$!
for _ in $(seq 1 100); do [ -s "$log/out" ] && break; sleep 0.1; done
api="$(head -n1 "$log/out" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).api))')"
[ -n "$api" ] || { echo "test-wasm: fixture did not start"; cat "$log/err"; exit 1; }

export UPLOAD_FIXTURE_URL="$api"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-180}"
# The runner isolates its page (COEP require-corp) by default, which would block the no-cors
# reachability probe the CORS diagnosis relies on; real pages are not isolated.
export WASM_BINDGEN_TEST_NO_ORIGIN_ISOLATION=1
export WASM_BINDGEN_TEST_WEBDRIVER_JSON="$PWD/tests/webdriver.json"

tests=()
for browser in ${BROWSERS:-chromium firefox webkit}; do
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
  echo "test-wasm: $browser" >&2
  "${run[@]}" cargo test -p resumable-wasm --target wasm32-unknown-unknown "${tests[@]}"
  tests=(--test web_transport)
done
