// Writes pkg/package.json for the npm package built by scripts/build.sh.
import { writeFileSync } from 'node:fs';

const [dir, version] = process.argv.slice(2);
// Entry points, each with its types (checked by publint and attw in `make test-package`):
//   .        the ES module for browsers and bundlers (`init()` fetches the .wasm beside it)
//   ./node   the same API for Node >= 20, Deno and Bun (`init()` reads the .wasm from disk)
//   ./script the script-tag build: a classic script defining the global `ResumableWasm`; its
//            types declare that global (`/// <reference types="resumable-wasm/script" />`)
//   ./sw.js  the worker part of `background`, for the app's own service worker
//            (`importScripts` or `import`); a script with no exports (its types say so)
//   background.js (also in script/) the page part of `background`, which the glue imports
//            itself (a relative import(), no entry point of its own)
//   ./resumable_wasm_bg.wasm the wasm itself, an asset to fetch or read, not a module
// `script/package.json` points TypeScript's legacy `node10` resolution, which ignores `exports`,
// at the script's files; `node.js`/`node.d.ts` sit at the root for the same reason.
const pkg = {
  name: 'resumable-wasm',
  version,
  description: 'Resumable, CORS-aware chunked file uploads for the browser and Node (Rust + WebAssembly), Resumable.js/Flow.js protocol compatible',
  license: 'MIT OR Apache-2.0',
  type: 'module',
  main: './resumable_wasm.js',
  module: './resumable_wasm.js',
  types: './resumable_wasm.d.ts',
  exports: {
    '.': { types: './resumable_wasm.d.ts', import: './resumable_wasm.js', default: './resumable_wasm.js' },
    './node': { types: './node.d.ts', import: './node.js', default: './node.js' },
    './script': { types: './script/resumable-wasm.d.ts', default: './script/resumable-wasm.js' },
    './sw.js': { types: './sw.d.ts', default: './sw.js' },
    './resumable_wasm_bg.wasm': './resumable_wasm_bg.wasm',
    './package.json': './package.json',
  },
  files: [
    'resumable_wasm.js', 'resumable_wasm.d.ts', 'resumable_wasm_bg.wasm', 'resumable_wasm_bg.wasm.d.ts',
    'node.js', 'node.d.ts', 'background.js', 'sw.js', 'sw.d.ts', 'script/', 'README.md', 'CHANGELOG.md', 'LICENSE',
  ],
  sideEffects: ['./script/resumable-wasm.js'],
  // Node 20 is the oldest with everything the client uses there: fetch, FormData, Blob and
  // File as globals (File since 20.0), fs.openAsBlob; tested on Node 20 (tests/node).
  engines: { node: '>=20' },
  // The browsers the README's "Browser support" states, for tools that read this field (Babel,
  // autoprefixer, bundler targets): WebAssembly reference types, ES2020 modules, fetch with
  // AbortController; DecompressionStream for the script-tag build.
  browserslist: ['chrome >= 96', 'edge >= 96', 'firefox >= 113', 'safari >= 16.4', 'ios_saf >= 16.4'],
  keywords: ['upload', 'resumable', 'chunked', 'cors', 'wasm', 'resumable.js', 'flow.js', 'node'],
};
writeFileSync(`${dir}/package.json`, JSON.stringify(pkg, null, 2) + '\n');
// For `node10` resolution only (it reads `main`/`types` of the folder's package.json). `type`
// keeps the script's module kind what the root says; the script runs the same either way.
const script = { type: 'module', main: './resumable-wasm.js', types: './resumable-wasm.d.ts' };
writeFileSync(`${dir}/script/package.json`, JSON.stringify(script, null, 2) + '\n');
