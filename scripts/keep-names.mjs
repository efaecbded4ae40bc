// Gives the public functions of the ES-module glue their names back after minification, so the
// glue can be minified without esbuild's `--keep-names` (which wraps every function of the glue,
// internal ones included, in a naming call). Appended before esbuild runs:
//   - every exported class and function (`Uploader.name === "Uploader"`, `isUploadError`,
//     `initSync`, the default export `__wbg_init`);
//   - every method on `Uploader.prototype`, including those the DOM helpers install
//     (`assignBrowse`, `assignDrop`, `unAssignDrop`, `free`).
//
//   node scripts/keep-names.mjs <glue.js>   (rewritten in place)
import { readFileSync, writeFileSync } from 'node:fs';

const [path] = process.argv.slice(2);
let js = readFileSync(path, 'utf8');

const names = [];
for (const m of js.matchAll(/^export (?:class|function|async function) ([\w$]+)/gm)) names.push(m[1]);
for (const m of js.matchAll(/^export \{([^}]*)\};?\s*$/gm)) {
  for (const part of m[1].split(',')) {
    const local = part.trim().split(/\s+as\s+/)[0];
    if (local) names.push(local);
  }
}
if (!names.includes('Uploader')) {
  console.error(`keep-names: no exported Uploader in ${path}`);
  process.exit(1);
}

js += `
;for (const [f, n] of [${names.map((n) => `[${n}, ${JSON.stringify(n)}]`).join(', ')}]) Object.defineProperty(f, "name", { value: n });
for (const k of Object.getOwnPropertyNames(Uploader.prototype)) {
  const f = Object.getOwnPropertyDescriptor(Uploader.prototype, k).value;
  if (k !== "constructor" && typeof f === "function" && f.name !== k) Object.defineProperty(f, "name", { value: k });
}
`;
writeFileSync(path, js);
