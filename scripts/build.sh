#!/usr/bin/env bash
# Builds the release wasm once and packages it twice:
#   pkg/                 the npm package: ES module (wasm-bindgen `web` target), .d.ts, package.json,
#                        and node.js (the same module for Node: init() reads the .wasm from disk)
#   pkg/script/          the script-tag build: one classic script, wasm embedded, global ResumableWasm
#                        (typed by script/resumable-wasm.d.ts)
# Both carry src/api/dom.js, the DOM helpers of Uploader in plain JS.
# Both .wasm files go through wasm-opt -Os from the npm package `binaryen`, the JS through esbuild --minify.
set -euo pipefail
cd "$(dirname "$0")/.."

out="${OUT_DIR:-pkg}"
wasm_opt=node_modules/.bin/wasm-opt
# wasm-opt, to a fixed point (--converge). Without an inlining limit -Os came out 212 B smaller
# gzipped than -Oz (rustc's own opt-level stays "z": "s" was 12.8 KB larger).
# --one-caller-inline-max-function-size=20: a function called from one place is inlined only when
# small (binaryen's default inlines it whatever its size): the big single-caller helpers kept as
# functions leave their callers' code in shapes gzip finds again. With it, -Oz: 3,631 B smaller
# gzipped than the -Os build before (two-file; script tag 3,392 B), raw 243,884 -> 245,503 B.
# With -Os instead the gzip was 318 B smaller, but the raw wasm grew to 250,259 B, past webpack's
# 244 KiB asset-size hint (a warning e2e 09 refuses). Limits from 10 to 30 came within 250 B of
# each other; unlimited was 4.1 KB larger. One call per helper costs nothing an upload feels.
# Twice --flatten --rereloop: the control flow flattened and laid out again by binaryen's
# relooper before the next pass: 477 B smaller gzipped when added to -Os (one round 414 B, three
# 405 B); about 11 s more per wasm.
# --low-memory-unused lets wasm-opt fold `ptr + C` (0 <= C < 1024)
# into a load/store offset; the two differ only when ptr + C wraps past 4 GiB into the first KiB,
# which no Rust pointer does (our memory is a few MiB; the stack's first KiB is reached only at a
# 1 MiB-deep stack). About 0.5 KiB gzip.
wasm_opt_flags=(--one-caller-inline-max-function-size=20 -Oz --low-memory-unused --flatten --rereloop -Oz --flatten --rereloop -Oz --converge)
version="$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)"

# Panic locations name their source files; without a remap those are this machine's cargo
# registry paths (`$CARGO_HOME/registry/src/index.crates.io-<hash>/js-sys-…/src/…`), which would
# ship in the wasm, differ from machine to machine, and cost bytes: mapped to `js-sys-…/src/…`.
remaps=()
for dir in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
  [ -d "$dir" ] && remaps+=("--remap-path-prefix=$dir=")
done
RUSTFLAGS="${RUSTFLAGS:-} ${remaps[*]}" \
  cargo build -p resumable-wasm --target wasm32-unknown-unknown --release --quiet
raw="${CARGO_TARGET_DIR:-target}"/wasm32-unknown-unknown/release/resumable_wasm.wasm

rm -rf "$out" && mkdir -p "$out/script"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT

# ES module build (bundlers and plain <script type="module">).
wasm-bindgen "$raw" --target web --out-dir "$out" --out-name resumable_wasm
# The DOM helpers (assignBrowse, assignDrop, unAssignDrop) are plain JS installed on the class.
printf '\n;%s(Uploader);\n' "$(cat src/api/dom.js)" >>"$out/resumable_wasm.js"
"$wasm_opt" "${wasm_opt_flags[@]}" "$out/resumable_wasm_bg.wasm" -o "$tmp/opt.wasm"
mv "$tmp/opt.wasm" "$out/resumable_wasm_bg.wasm"
# The import/export names linking the two files, shortened in both (hashes do not compress).
node scripts/short-names.mjs "$out/resumable_wasm_bg.wasm" "$out/resumable_wasm.js"

# Classic-script build: the no-modules glue plus the wasm as base64, so one file works from any
# origin (a separate .wasm fetched from a CDN would need CORS of its own).
wasm-bindgen "$raw" --target no-modules --no-modules-global __resumableWasmBindgen \
  --no-typescript --out-dir "$tmp/nm" --out-name resumable_wasm
"$wasm_opt" "${wasm_opt_flags[@]}" "$tmp/nm/resumable_wasm_bg.wasm" -o "$tmp/nm/opt.wasm"
node scripts/short-names.mjs "$tmp/nm/opt.wasm" "$tmp/nm/resumable_wasm.js"
node scripts/script-tag.mjs "$tmp/nm/resumable_wasm.js" src/api/dom.js "$tmp/nm/opt.wasm" "$out/script/resumable-wasm.js" "$version"

# Minify the JS glue; the .d.ts documents the API. Public names are kept (`Uploader.name` stays
# "Uploader"): by scripts/keep-names.mjs in the ES module, by esbuild --keep-names in the script.
esbuild=node_modules/.bin/esbuild
node scripts/keep-names.mjs "$out/resumable_wasm.js"
"$esbuild" "$out/resumable_wasm.js" --minify --format=esm --log-level=warning \
  --outfile="$tmp/glue.js" && mv "$tmp/glue.js" "$out/resumable_wasm.js"
"$esbuild" "$out/script/resumable-wasm.js" --minify --keep-names --format=iife --legal-comments=inline --log-level=warning \
  --outfile="$tmp/script.js" && mv "$tmp/script.js" "$out/script/resumable-wasm.js"

# The worker part of `background`, for the app's service worker (importScripts or import):
# a plain script, minified like the rest.
"$esbuild" src/api/sw.js --minify --log-level=warning --outfile="$out/sw.js"
# The page part of `background` (src/api/background.js), an ES module the glue imports only
# when the option is on: beside the ES-module glue and beside the script-tag file (whose
# `import('./background.js')` resolves against the script's own URL).
"$esbuild" src/api/background.js --minify --format=esm --log-level=warning --outfile="$out/background.js"
cp "$out/background.js" "$out/script/background.js"
printf 'export {};\n' >"$out/sw.d.ts"

# The Node entry (init() reads the .wasm from disk) and the script-tag build's global, typed.
cp src/api/node.js src/api/node.d.ts "$out/"
cp src/api/script.d.ts "$out/script/resumable-wasm.d.ts"
node scripts/package-json.mjs "$out" "$version"
cp README.md CHANGELOG.md "$out/"
[ -f LICENSE ] && cp LICENSE "$out/" || true
echo "build: wrote $out/ (npm package) and $out/script/resumable-wasm.js (script tag)" >&2
