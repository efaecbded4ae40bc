// Assembles the one-file script-tag build: wasm-bindgen's no-modules glue, the DOM helpers
// (src/api/dom.js), the optimised wasm
// gzipped and base64-encoded, and a bootstrap that defines the global `ResumableWasm` with a
// `ready` promise. The wasm is inflated with the browser's DecompressionStream: base64 of raw
// wasm would not compress in transit, base64 of gzip is about as small as the two-file build.
import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const [glue, dom, wasm, out, version] = process.argv.slice(2);
const glueText = readFileSync(glue, 'utf8');
const domText = readFileSync(dom, 'utf8');
const wasmB64 = gzipSync(readFileSync(wasm), { level: 9 }).toString('base64');

const text = `/*! resumable-wasm ${version} (script-tag build) | MIT OR Apache-2.0 */
(function (global) {
"use strict";
${glueText}
var bindgen = __resumableWasmBindgen;
;${domText}(bindgen.Uploader);
var b64 = "${wasmB64}";
function gzipped() {
  var bin = atob(b64), buf = new Uint8Array(bin.length);
  for (var i = 0; i < bin.length; i++) buf[i] = bin.charCodeAt(i);
  return buf;
}
function wasmBytes() {
  if (typeof DecompressionStream === "undefined") {
    return Promise.reject(new Error("resumable-wasm: this browser lacks DecompressionStream; use the ES-module build"));
  }
  var stream = new Blob([gzipped()]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Response(stream).arrayBuffer();
}
var api = { version: ${JSON.stringify(version)} };
api.ready = wasmBytes().then(function (bytes) { return bindgen({ module_or_path: bytes }); }).then(function () {
  for (var k in bindgen) if (k !== "initSync" && Object.prototype.hasOwnProperty.call(bindgen, k)) api[k] = bindgen[k];
  return api;
});
global.ResumableWasm = api;
})(typeof globalThis !== "undefined" ? globalThis : self);
`;
writeFileSync(out, text);
