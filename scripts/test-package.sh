#!/usr/bin/env bash
# make test-package: the built package as the tools that check npm packages see it, on the
# tarball `npm pack` makes of pkg/ (what `npm publish` would upload, not the folder):
#   - publint: packaging errors (files missing from the tarball, exports that point nowhere,
#     fields that disagree with each other); its warnings fail too (--strict);
#   - @arethetypeswrong/cli (attw): every entry point resolves to JavaScript and to types under
#     each of TypeScript's module resolutions (node10, node16 from ESM and from CJS, bundler),
#     the worker part `resumable-wasm/sw.js` (`background`) included;
#   - CHANGELOG.md has a section for the version being packed (the README's release steps).
# Neither tool reaches the network: publint reads the tarball, attw runs with
# --no-definitely-typed (it would otherwise look up @types/resumable-wasm on the registry).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'test-package: %s\n' "$*" >&2; }
pkg="${PKG_DIR:-pkg}"
[ -f "$pkg/package.json" ] || { say "no $pkg/package.json: run make build first"; exit 1; }
version="$(node -p "require('./$pkg/package.json').version")"

grep -q "^## \[$version\]" CHANGELOG.md \
  || { say "CHANGELOG.md has no '## [$version]' section (README: Releasing)"; exit 1; }

tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
tarball="$tmp/$(npm pack "./$pkg" --pack-destination "$tmp" --json --loglevel=error \
  | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0, "utf8"))[0].filename)')"
say "checking $(basename "$tarball")"

node_modules/.bin/publint run "$tarball" --strict

# The ignores, each on purpose:
# - entry ./resumable_wasm_bg.wasm: the wasm is an asset to fetch or read (init() loads it;
#   `import.meta.resolve('resumable-wasm/resumable_wasm_bg.wasm')` finds its file), not a module
#   with types: a declaration for it would claim an import that no bundler or runtime gives.
# - rule cjs-resolves-to-esm: the package is ES modules only, on purpose (wasm-bindgen's glue
#   finds the .wasm through import.meta.url). From a CommonJS file TypeScript then says to use
#   import(), which is the truth; Node 20.19 and later also require() it.
node_modules/.bin/attw "$tarball" --no-definitely-typed --no-emoji --no-color \
  --exclude-entrypoints ./resumable_wasm_bg.wasm \
  --ignore-rules cjs-resolves-to-esm
say "publint and attw pass on the packed tarball"
