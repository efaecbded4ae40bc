#!/usr/bin/env bash
# Runs the end-to-end core (tests/engines/) through WebDriver once per engine of $BROWSERS
# (default: chromium firefox webkit, in that order). WebKitGTK's MiniBrowser needs an X display:
# xvfb-run gives it one when there is none.
set -euo pipefail
cd "$(dirname "$0")/.."

# BROWSERS set but empty means every engine, as in the Makefile.
browsers="${BROWSERS:-chromium firefox webkit}"
[ -n "${browsers// /}" ] || browsers="chromium firefox webkit"
run_timeout="${ENGINE_RUN_TIMEOUT_S:-1500}"
# The fixtures an engine run starts (tests/e2e/harness.mjs) outlive the run's time limit: a slow
# run fails on its own limit, never because its servers exited under it.
export FIXTURE_MAX_LIFETIME_S=$((run_timeout + 300))

for browser in $browsers; do
  run=(env E2E_BROWSER="$browser")
  case "$browser" in
    chromium | firefox) ;;
    webkit) [ -n "${DISPLAY:-}" ] || run=(xvfb-run -a "${run[@]}") ;;
    *) echo "test-engines: unknown browser '$browser' in BROWSERS (chromium, firefox, webkit)" >&2; exit 2 ;;
  esac
  echo "test-engines: $browser" >&2
  # Bounded: a browser that stops answering fails this engine instead of holding CI to its limit.
  # At least ENGINE_MIN_TESTS must pass (scripts/node-tests.sh: zero tests is not a pass).
  timeout --kill-after=30 "$run_timeout" "${run[@]}" \
    scripts/node-tests.sh "test-engines: $browser" "${ENGINE_MIN_TESTS:-21}" tests/engines/*.test.mjs
done
