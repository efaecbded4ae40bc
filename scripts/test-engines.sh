#!/usr/bin/env bash
# Runs the end-to-end core (tests/engines/) through WebDriver once per engine of $BROWSERS
# (default: chromium firefox webkit, in that order). WebKitGTK's MiniBrowser needs an X display:
# xvfb-run gives it one when there is none.
set -euo pipefail
cd "$(dirname "$0")/.."

for browser in ${BROWSERS:-chromium firefox webkit}; do
  run=(env E2E_BROWSER="$browser")
  case "$browser" in
    chromium | firefox) ;;
    webkit) [ -n "${DISPLAY:-}" ] || run=(xvfb-run -a "${run[@]}") ;;
    *) echo "test-engines: unknown browser '$browser' in BROWSERS (chromium, firefox, webkit)" >&2; exit 2 ;;
  esac
  echo "test-engines: $browser" >&2
  "${run[@]}" node --test --test-concurrency=1 tests/engines/
done
