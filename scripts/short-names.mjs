// Shortens the names the wasm and its wasm-bindgen glue share: every import of the glue module
// (`__wbg_set_signal_0b2eee78907e5ba7` and so on) and every hashed export (closure shims). Those
// names are only the link between the two files, never visible to users, and their 16-hex-digit
// hashes do not compress: each is written once in the wasm and up to three times in the glue.
//
//   node scripts/short-names.mjs <file.wasm> <glue.js>   (both rewritten in place)
//
// The custom sections `producers` and `target_features`, read by tools only, are dropped too.
// The wasm's import and export sections are rebuilt with the new names (and the glue module
// is called `w`); in the glue every
// whole-word occurrence of an old name is replaced. The script fails rather than guess: a name
// missing from the glue, or a new name already used there, stops the build.
import { readFileSync, writeFileSync } from 'node:fs';

const [wasmPath, jsPath] = process.argv.slice(2);
const wasm = readFileSync(wasmPath);
let js = readFileSync(jsPath, 'utf8');

function fail(message) {
  console.error(`short-names: ${message}`);
  process.exit(1);
}

// --- reading and writing the binary format ---------------------------------------------------
let pos = 0;
function u32() {
  let result = 0, shift = 0, byte;
  do {
    byte = wasm[pos++];
    result += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return result;
}
function name() {
  const len = u32();
  const s = wasm.toString('utf8', pos, pos + len);
  pos += len;
  return s;
}
function leb(n) {
  const out = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return Buffer.from(out);
}
const encName = (s) => Buffer.concat([leb(Buffer.byteLength(s)), Buffer.from(s, 'utf8')]);
function limits() {
  const flags = wasm[pos++];
  u32();
  if (flags & 1) u32();
}

if (wasm.readUInt32LE(0) !== 0x6d736100) fail(`${wasmPath} is not a wasm module`);

// Short names: `$a` … `$Z`, `$aa` …, skipping any already in the glue.
const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
let counter = 0;
const escape = (s) => s.replace(/[$]/g, '\\$');
const used = (s) => new RegExp(`(?<![\\w$])${escape(s)}(?![\\w$])`).test(js);
function nextName() {
  for (;;) {
    let n = counter++, s = '';
    do {
      s = alphabet[n % alphabet.length] + s;
      n = Math.floor(n / alphabet.length) - 1;
    } while (n >= 0);
    s = `$${s}`;
    if (!used(s)) return s;
  }
}

// The glue module's name is written in every import entry: one letter will do.
const SHORT_MODULE = 'w';

const renames = new Map();
// Exports the glue only reaches as `wasm.name`: renamed in those member accesses alone.
const members = new Map();
const memberRe = (name) => new RegExp(`(?<![\\w$])wasm\\.${escape(name)}(?![\\w$])`, 'g');
function rename(old) {
  if (!renames.has(old)) {
    if (!used(old)) fail(`${old} is not in ${jsPath}`);
    renames.set(old, nextName());
  }
  return renames.get(old);
}

const parts = [wasm.subarray(0, 8)];
pos = 8;
let glueModule = null;
const importNames = [];
while (pos < wasm.length) {
  const sectionStart = pos;
  const id = wasm[pos++];
  const size = u32();
  const end = pos + size;
  if (id === 2) {
    const entries = [];
    const count = u32();
    for (let i = 0; i < count; i++) {
      const module = name();
      const field = name();
      const descStart = pos;
      const kind = wasm[pos++];
      if (kind === 0) u32();
      else if (kind === 1) { pos++; limits(); }
      else if (kind === 2) limits();
      else if (kind === 3) pos += 2;
      else if (kind === 4) { pos++; u32(); }
      else fail(`unknown import kind ${kind}`);
      const desc = wasm.subarray(descStart, pos);
      // Every import of the glue module is linked by name only: shorten it.
      if (module.endsWith('_bg.js')) {
        if (glueModule !== null && glueModule !== module) fail('two glue modules');
        glueModule = module;
        importNames.push(field);
        entries.push(Buffer.concat([encName(SHORT_MODULE), encName(rename(field)), desc]));
      } else {
        entries.push(Buffer.concat([encName(module), encName(field), desc]));
      }
    }
    const body = Buffer.concat([leb(count), ...entries]);
    parts.push(Buffer.from([id]), leb(body.length), body);
  } else if (id === 7) {
    const entries = [];
    const count = u32();
    for (let i = 0; i < count; i++) {
      const field = name();
      const descStart = pos;
      pos++;
      u32();
      const desc = wasm.subarray(descStart, pos);
      // Hashed exports (closure shims) are internal to the glue; so is every export the glue
      // calls as `wasm.name` (all but `memory`, which stays as named).
      let short = field;
      if (/_h[0-9a-f]{16}$/.test(field)) {
        short = rename(field);
      } else if (field !== 'memory' && memberRe(field).test(js)) {
        short = nextName();
        members.set(field, short);
      }
      entries.push(Buffer.concat([encName(short), desc]));
    }
    const body = Buffer.concat([leb(count), ...entries]);
    parts.push(Buffer.from([id]), leb(body.length), body);
  } else if (id === 0 && ['producers', 'target_features'].includes(name())) {
    // Tool metadata (compiler versions, feature list) that no browser reads: dropped.
  } else {
    parts.push(wasm.subarray(sectionStart, end));
  }
  pos = end;
}
if (glueModule === null) fail('no import of the glue module');

const quoted = JSON.stringify(glueModule);
if (!js.includes(quoted)) fail(`${quoted} is not in ${jsPath}`);
if (js.includes(JSON.stringify(SHORT_MODULE))) fail(`"${SHORT_MODULE}" is already in ${jsPath}`);
js = js.split(quoted).join(JSON.stringify(SHORT_MODULE));
for (const [old, short] of members) {
  js = js.replace(memberRe(old), () => `wasm.${short}`);
}
for (const [old, short] of renames) {
  js = js.replace(new RegExp(`(?<![\\w$])${escape(old)}(?![\\w$])`, 'g'), () => short);
}
// Each import is a `name: function (...) {...}` property of the glue's import object; as a
// method (`name(...) {...}`) it needs no `--keep-names` wrapper from esbuild and reads the same
// to the wasm (imports are only ever called, never constructed).
const imports = new Set(importNames.map((n) => renames.get(n)));
js = js.replace(/(?<=^[ \t]*)([$\w]+): function\s*\(/gm, (whole, key) =>
  imports.has(key) ? `${key}(` : whole);
const out = Buffer.concat(parts);

// Check the result, so that a wasm-bindgen upgrade that changes the glue's shape fails the
// build instead of the page: the wasm validates, every `wasm.X` the glue reads is an export,
// every import the wasm takes from the glue is defined there, and no old name is left.
if (!WebAssembly.validate(out)) fail(`the rewritten ${wasmPath} does not validate`);
const module = new WebAssembly.Module(out);
const exported = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
for (const [, member] of js.matchAll(/(?<![\w$])wasm\.([\w$]+)/g)) {
  if (!exported.has(member)) fail(`the glue reads wasm.${member}, which the wasm does not export`);
}
for (const { module: from, name: field } of WebAssembly.Module.imports(module)) {
  if (from !== SHORT_MODULE) continue;
  const defined = new RegExp(`(?<![\\w$])${escape(field)}\\s*[(:]`);
  if (!defined.test(js)) fail(`the wasm imports ${field}, which the glue does not define`);
}
for (const old of [...renames.keys(), quoted]) {
  if (used(old) || js.includes(old)) fail(`the old name ${old} is still in the glue`);
}
for (const old of members.keys()) {
  if (memberRe(old).test(js)) fail(`the glue still reads wasm.${old}`);
}
writeFileSync(wasmPath, out);
writeFileSync(jsPath, js);
