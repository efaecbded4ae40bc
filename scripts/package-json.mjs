// Writes pkg/package.json for the npm package built by scripts/build.sh.
import { writeFileSync } from 'node:fs';

const [dir, version] = process.argv.slice(2);
const pkg = {
  name: 'resumable-wasm',
  version,
  description: 'Resumable, CORS-aware chunked file uploads for the browser (Rust + WebAssembly), Resumable.js/Flow.js protocol compatible',
  license: 'MIT OR Apache-2.0',
  type: 'module',
  main: './resumable_wasm.js',
  module: './resumable_wasm.js',
  types: './resumable_wasm.d.ts',
  exports: {
    '.': { types: './resumable_wasm.d.ts', import: './resumable_wasm.js', default: './resumable_wasm.js' },
    './resumable_wasm_bg.wasm': './resumable_wasm_bg.wasm',
    './script': './script/resumable-wasm.js',
    './package.json': './package.json',
  },
  files: ['resumable_wasm.js', 'resumable_wasm.d.ts', 'resumable_wasm_bg.wasm', 'resumable_wasm_bg.wasm.d.ts', 'script/', 'README.md', 'LICENSE'],
  sideEffects: false,
  keywords: ['upload', 'resumable', 'chunked', 'cors', 'wasm', 'resumable.js', 'flow.js'],
};
writeFileSync(`${dir}/package.json`, JSON.stringify(pkg, null, 2) + '\n');
