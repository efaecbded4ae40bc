#!/usr/bin/env bash
# Installs what the build, demo and tests need, idempotently: a second run takes seconds.
#   - the wasm32-unknown-unknown Rust target
#   - wasm-bindgen-cli at exactly the version of the wasm-bindgen crate in Cargo.lock
#   - the browsers (only when needed: pass --browser), through scripts/ensure-browsers.sh: Debian's
#     chromium + chromium-driver, Firefox ESR + geckodriver and WebKitGTK + WebKitWebDriver
#   - the npm dev dependencies (binaryen's wasm-opt, esbuild, playwright-core, selenium-webdriver,
#     typescript, vite, webpack, publint, @arethetypeswrong/cli, the reference clients), from the
#     committed package-lock.json without rewriting it
#   - moto's S3-compatible server (the object store of the S3 tests and the "direct to S3" demo), with
#     pip into its own virtualenv at .tools/moto-venv (ignored), from PyPI
set -euo pipefail
cd "$(dirname "$0")/.."

want_browser=0
for arg in "$@"; do
  case "$arg" in
    --browser) want_browser=1 ;;
    *) echo "ensure-tools: unknown argument $arg" >&2; exit 2 ;;
  esac
done

say() { printf 'ensure-tools: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else say "need root for: $*"; return 1; fi; }

# 1. Rust target.
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown \
    || { say "could not add wasm32-unknown-unknown: install it with 'rustup target add wasm32-unknown-unknown'"; exit 1; }
fi

# 2. wasm-bindgen-cli pinned to the crate in Cargo.lock (the CLI refuses a different version).
wbg_version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
if [ -z "$wbg_version" ]; then say "no wasm-bindgen in Cargo.lock"; exit 1; fi
have_wbg="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
have_runner="$(wasm-bindgen-test-runner --version 2>/dev/null | awk '{print $2}' || true)"
if [ "$have_wbg" != "$wbg_version" ] || [ "$have_runner" != "$wbg_version" ]; then
  say "installing wasm-bindgen-cli $wbg_version (have '${have_wbg:-none}'); this takes a few minutes once"
  cargo install -f wasm-bindgen-cli --version "$wbg_version" --locked \
    || cargo install -f wasm-bindgen-cli --version "$wbg_version"
fi

# 3. The browsers, from Debian: Chromium and its driver always (the e2e suite runs in it), Firefox
# and WebKit for the engines in $BROWSERS; one apt-get run for all of them.
if [ "$want_browser" = 1 ]; then
  scripts/ensure-browsers.sh
fi

# 4. npm dev dependencies, exactly as the committed package-lock.json pins them. `npm ci`, never
# `npm install`: ci installs from the lockfile without writing it (it fails instead when
# package.json and the lockfile disagree), while install rewrites the lockfile whenever its idea of
# the dependency tree differs from the committed one, leaving a modified tracked file behind. The
# lockfile lists the optional packages of every platform (rollup's and esbuild's native builds),
# as `npm install` writes it; ci fetches only those for this machine. To change a dependency:
# edit package.json, run `npm install`, commit both files.
# Skipped when node_modules/ already matches the lockfile (scripts/node-modules-match-lock.mjs).
if ! why="$(node scripts/node-modules-match-lock.mjs 2>&1)"; then
  say "${why#node-modules-match-lock: }: installing npm dev dependencies from package-lock.json (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

# 5. moto's server: the S3-compatible store the S3 multipart tests upload to (bucket CORS rules,
# preflights, the multipart API). pip into a virtualenv of its own under the ignored .tools/, so
# nothing outside the worktree changes; skipped when its moto_server already runs.
moto_venv=.tools/moto-venv
if ! "$moto_venv/bin/moto_server" --help >/dev/null 2>&1; then
  say "installing moto[server] into $moto_venv (the S3 store of the tests); once, about a minute"
  python3 -m venv "$moto_venv" \
    || { say "python3 -m venv failed: install Debian's python3-venv (apt-get install python3-venv)"; exit 1; }
  "$moto_venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5.1,<6'
fi
