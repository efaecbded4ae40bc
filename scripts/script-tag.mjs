// Assembles the one-file script-tag build: wasm-bindgen's no-modules glue, the optimised wasm as
// base64, and a bootstrap that defines the global `ResumableWasm` with a `ready` promise.
import { readFileSync, writeFileSync } from 'node:fs';

const [glue, wasm, out, version] = process.argv.slice(2);
const glueText = readFileSync(glue, 'utf8');
const wasmB64 = readFileSync(wasm).toString('base64');

const text = `/*! resumable-wasm ${version} (script-tag build) | MIT OR Apache-2.0 */
(function (global) {
"use strict";
${glueText}
var bindgen = __resumableWasmBindgen;
var b64 = "${wasmB64}";
function bytes() {
  var bin = atob(b64), buf = new Uint8Array(bin.length);
  for (var i = 0; i < bin.length; i++) buf[i] = bin.charCodeAt(i);
  return buf;
}
var api = { version: ${JSON.stringify(version)} };
api.ready = bindgen({ module_or_path: bytes() }).then(function () {
  for (var k in bindgen) if (k !== "initSync" && Object.prototype.hasOwnProperty.call(bindgen, k)) api[k] = bindgen[k];
  return api;
});
global.ResumableWasm = api;
})(typeof globalThis !== "undefined" ? globalThis : self);
`;
writeFileSync(out, text);
