#!/usr/bin/env bash
# Installing the tools must leave a checkout as it found it (no rewritten lockfile, no stray
# files). Runs scripts/ensure-tools.sh in a fresh clone that has no node_modules/, so the npm
# install really happens (from npm's cache when it is warm), and fails if `git status` differs
# before and after. The clone carries this checkout's uncommitted changes too, so what is tested
# is the working tree, not only the last commit. A second run must then find nothing to install.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'test-clean-tree: %s\n' "$*" >&2; }
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
clone="$tmp/clone"

git clone -q . "$clone"
# Overlay the working tree: tracked files as they are now, deletions, and new files that are not
# ignored (node_modules/, target/ and the other ignored outputs stay behind).
git ls-files -z --deleted | (cd "$clone" && xargs -0 -r rm -f --)
git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    mkdir -p "$clone/$(dirname "$f")"
    cp -P "$f" "$clone/$f"
  done
[ ! -e "$clone/node_modules" ] || { say "the clone has a node_modules/ before the install"; exit 1; }

before="$(git -C "$clone" status --porcelain)"
say "running scripts/ensure-tools.sh in a fresh clone ($clone)"
(cd "$clone" && scripts/ensure-tools.sh)
after="$(git -C "$clone" status --porcelain)"
[ -x "$clone/node_modules/.bin/wasm-opt" ] || { say "the install did not provide node_modules/.bin/wasm-opt"; exit 1; }
if [ "$before" != "$after" ]; then
  say "installing the tools changed the checkout (git status --porcelain, before vs after):"
  diff <(printf '%s\n' "$before") <(printf '%s\n' "$after") >&2 || true
  git -C "$clone" diff --stat >&2
  exit 1
fi

# Idempotent: the second run installs nothing.
second="$(cd "$clone" && scripts/ensure-tools.sh 2>&1)"
if [ -n "$second" ]; then
  say "a second run of ensure-tools was not silent (it should find everything installed):"
  printf '%s\n' "$second" >&2
  exit 1
fi
say "ok: the install left the checkout unchanged, and a second run installs nothing"
