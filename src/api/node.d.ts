// Types of resumable-wasm/node (src/api/node.js): the package's API, with an init() that
// reads the .wasm from disk when called without an argument.
import type { InitInput, InitOutput } from './resumable_wasm.js';

export * from './resumable_wasm.js';

/**
 * Loads the wasm. Without an argument it reads `resumable_wasm_bg.wasm` next to this module
 * from disk; with one, it is the browser entry's `init` (bytes, a `WebAssembly.Module`, …).
 */
export default function init(
  input?: { module_or_path: InitInput | Promise<InitInput> },
): Promise<InitOutput>;
