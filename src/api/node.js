// resumable-wasm/node: the package for Node 20 and later (also Deno and Bun): the same client as
// the browser's, whose init() with no argument reads the .wasm next to this file from disk. The
// browser entry loads it with fetch(new URL('resumable_wasm_bg.wasm', import.meta.url)), and
// Node's fetch cannot read a file: URL. scripts/build.sh copies this file to pkg/node.js.
import { readFile } from 'node:fs/promises';
import initWasm from './resumable_wasm.js';

export * from './resumable_wasm.js';

/** Loads the wasm: from `input` when given (as the browser entry's init), else from disk. */
export default async function init(input) {
  if (input !== undefined) return initWasm(input);
  const bytes = await readFile(new URL('./resumable_wasm_bg.wasm', import.meta.url));
  return initWasm({ module_or_path: bytes });
}
