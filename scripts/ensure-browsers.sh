#!/usr/bin/env bash
# Installs the browser engines that `make test` drives, idempotently (a second run takes a
# second): Chromium always (the e2e suite and the demo test run in it), Firefox and WebKit for the
# engines named in $BROWSERS (default: chromium firefox webkit):
#   chromium Debian's chromium and chromium-driver
#   firefox  Debian's firefox-esr, and geckodriver from crates.io at a pinned version (cargo
#            install, about 3 minutes once)
#   webkit   Debian's webkit2gtk-driver (WebKitWebDriver, which drives WebKitGTK's MiniBrowser)
#            and xvfb: MiniBrowser has no headless mode, so the tests give it a virtual display
set -euo pipefail

geckodriver_version=0.37.1
browsers="${BROWSERS:-chromium firefox webkit}"

say() { printf 'ensure-browsers: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else say "need root for: $*"; return 1; fi; }
wants() { [[ " $browsers " == *" $1 "* ]]; }

debs=()
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then debs+=(chromium chromium-driver); fi
if wants firefox && ! command -v firefox-esr >/dev/null; then debs+=(firefox-esr); fi
if wants webkit; then
  command -v WebKitWebDriver >/dev/null || debs+=(webkit2gtk-driver)
  command -v xvfb-run >/dev/null || debs+=(xvfb xauth)
fi
if [ "${#debs[@]}" -gt 0 ]; then
  say "installing Debian's ${debs[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${debs[@]}" >/dev/null
fi

if wants firefox; then
  have="$(geckodriver --version 2>/dev/null | awk 'NR == 1 { print $2 }' || true)"
  if [ "$have" != "$geckodriver_version" ]; then
    say "installing geckodriver $geckodriver_version (have '${have:-none}'); this takes a few minutes once"
    cargo install -q geckodriver --version "$geckodriver_version" --locked
  fi
fi
