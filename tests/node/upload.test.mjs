// The Node door (README "Node"): the package installed as the README's install line says — the
// packed tarball, and `npm install ./pkg` — and used from a Node script with the same client as
// the browser's, uploading into server-fixture. Outside a browser nobody enforces CORS: a server
// without CORS headers is no `cors` error (the verdict is `http` or `network`), nothing is
// preflighted, and what Node lacks (a page URL, XMLHttpRequest) is an `invalid` error naming the
// option, never a silent difference.
import { test, before, after } from 'node:test';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startFixture, npmPack, PKG, KiB, expectEqual, expectTrue, pkgBuilt } from '../e2e/harness.mjs';

const TIMEOUT = 120000;
let tmp;
let fx;

// The script a user would write (the README's Node example, with the target and file as
// arguments), run by `node` inside the project that installed the package.
const UPLOAD_SCRIPT = `
import { openAsBlob } from 'node:fs';
import { basename } from 'node:path';
import init, { Uploader, isUploadError } from 'resumable-wasm/node';

const [target, path] = process.argv.slice(2);
await init();
const up = new Uploader({ target, chunkSize: 64 * 1024 });
const kinds = [];
up.on('fileError', (file, error) => kinds.push(isUploadError(error) && error.kind));
await up.addFile(new File([await openAsBlob(path)], basename(path)));
const { succeeded, failed } = await up.upload();
console.log(JSON.stringify({
  succeeded: succeeded.map((f) => f.name),
  failed: failed.map((f) => ({ name: f.name, kind: f.error?.kind })),
  kinds,
  preflight: up.preflightReport(),
  // Nothing of the uploader's keeps the process alive once upload() has resolved.
  timers: process.getActiveResourcesInfo().filter((r) => r === 'Timeout'),
}));
`;

// Server-side rendering: the package's entries imported where there is no window; none may throw.
const SSR_SCRIPT = `
const main = await import('resumable-wasm');
const node = await import('resumable-wasm/node');
await import('resumable-wasm/script');
console.log(JSON.stringify({
  window: typeof window,
  main: [typeof main.default, typeof main.Uploader, typeof main.isUploadError],
  node: [typeof node.default, node.Uploader === main.Uploader],
  script: [typeof globalThis.ResumableWasm?.ready?.then, globalThis.ResumableWasm?.version],
}));
`;

/** A project in `dir` with the package installed by `npm install <spec>`, run inside `dir`. */
function project(dir, spec) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'node-door', private: true, type: 'module' }));
  // As the README writes it; --offline: the package has no dependencies, nothing to fetch.
  execFileSync('npm', ['install', spec, '--offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  expectTrue(existsSync(join(dir, 'node_modules/resumable-wasm/node.js')), `npm install ${spec} installed the package with its Node entry`);
  writeFileSync(join(dir, 'upload.mjs'), UPLOAD_SCRIPT);
  writeFileSync(join(dir, 'ssr.mjs'), SSR_SCRIPT);
  return dir;
}

/** The project that installed the packed tarball (made once, shared by the tests that need it). */
let tarballDir;
const tarballProject = () => (tarballDir ??= project(join(tmp, 'tarball'), npmPack(tmp)));

const run = (dir, script, ...args) =>
  JSON.parse(execFileSync(process.execPath, [script, ...args], { cwd: dir, encoding: 'utf8', timeout: TIMEOUT, stdio: ['ignore', 'pipe', 'pipe'] }));

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** Writes `size` random bytes to `name` in the temp dir; returns { path, name, size, sha256 }. */
function randomFile(name, size) {
  const bytes = randomBytes(size);
  const path = join(tmp, name);
  writeFileSync(path, bytes);
  return { path, name, size, sha256: sha256(bytes) };
}

/** Checks that the fixture assembled `file` with the same bytes, both by its report and on disk. */
async function expectArrived(file) {
  const stored = (await fx.files()).filter((f) => f.name === file.name);
  expectEqual(stored.map((f) => [f.size, f.sha256]), [[file.size, file.sha256]], `the fixture's record of ${file.name}`);
  expectEqual(sha256(readFileSync(stored[0].path)), file.sha256, `sha256 of ${file.name} as stored on disk (${stored[0].path})`);
}

before(async () => {
  if (!pkgBuilt()) throw new Error(`the package is not built (${PKG}): run \`make build\``);
  tmp = mkdtempSync(join(tmpdir(), 'rw-node-'));
  // A server that sends no CORS header at all: a browser would block every cross-origin answer.
  fx = await startFixture({ flags: { cors: 'none' } });
});
after(async () => {
  await fx?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('the packed tarball, installed with npm install <tarball>, uploads a file from Node: byte-identical, no preflight, to a server without CORS headers', { timeout: TIMEOUT }, async () => {
  const dir = tarballProject();
  const file = randomFile('from-node.bin', 300 * KiB + 7);
  const out = run(dir, 'upload.mjs', fx.target(), file.path);
  expectEqual(out.succeeded, [file.name], 'succeeded', out);
  expectEqual(out.failed, [], 'failed', out);
  expectEqual(out.preflight, { test: { preflight: false, reasons: [] }, upload: { preflight: false, reasons: [] } }, 'preflightReport() where no browser preflights');
  expectEqual(out.timers, [], 'timers left once upload() resolved');
  await expectArrived(file);
  const log = await fx.apiLog();
  expectEqual(log.filter((e) => e.method === 'OPTIONS').length, 0, 'OPTIONS requests');
  expectEqual(log.filter((e) => e.method === 'POST').length, 4, 'chunk POSTs (300 KiB + 7 B in 64 KiB chunks, the last absorbing the rest)');
});

test('npm install ./pkg (the README line as written) gives the same door', { timeout: TIMEOUT }, async () => {
  const dir = join(tmp, 'folder');
  mkdirSync(dir);
  cpSync(PKG, join(dir, 'pkg'), { recursive: true });
  project(dir, './pkg');
  const file = randomFile('from-folder.txt', 1000);
  const out = run(dir, 'upload.mjs', fx.target(), file.path);
  expectEqual(out.succeeded, [file.name], 'succeeded', out);
  await expectArrived(file);
});

test('server-side rendering: every entry imports where there is no window, by package name', { timeout: TIMEOUT }, async () => {
  const out = run(tarballProject(), 'ssr.mjs');
  expectEqual(out, {
    window: 'undefined',
    main: ['function', 'function', 'function'],
    node: ['function', true],
    script: ['function', JSON.parse(readFileSync(join(PKG, 'package.json'), 'utf8')).version],
  }, 'what the entries export without a window');
});

// The rest runs the client in this process: pkg/node.js as the package's ./node entry.
const client = async () => {
  const mod = await import(pathToFileURL(join(PKG, 'node.js')).href);
  await mod.default();
  return mod;
};

/** Uploads `file` (bytes) through a fresh uploader; the run's files and errors. */
async function uploadOnce(options, name, bytes) {
  const { Uploader } = await client();
  const up = new Uploader({ chunkSize: 64 * KiB, testChunks: false, chunkRetryInterval: 1, ...options });
  const errors = [];
  up.on('fileError', (_f, e) => errors.push(e));
  await up.addFile(new File([bytes], name));
  const summary = await up.upload();
  up.free();
  return { summary, errors };
}

test('no CORS outside a browser: an answer without CORS headers is read (http), a dropped one is network, and no CORS check is sent', { timeout: TIMEOUT }, async () => {
  // 500 without any CORS header: a browser hides it (cors); Node reads it.
  await fx.config({ fail_rate: 1, fail_status: 500 });
  const refused = await uploadOnce({ target: fx.target(), maxChunkRetries: 2 }, 'refused.bin', randomBytes(1000));
  expectEqual(refused.errors.map((e) => [e.kind, e.status, e.attempts]), [['http', 500, 1]], 'the error of a 500 without CORS headers');

  // Every connection closed without an answer. In a browser the engine would send CORS checks
  // (GETs of the same shape) before deciding; here nothing enforces CORS, so it retries as a
  // failed connection at once and ends as `network`.
  await fx.config({ fail_rate: 0, drop_rate: 1 });
  const before = (await fx.apiLog()).length;
  const dropped = await uploadOnce({ target: fx.target(), maxChunkRetries: 2 }, 'dropped.bin', randomBytes(1000));
  await fx.config({ drop_rate: 0 });
  expectEqual(dropped.errors.map((e) => [e.kind, e.attempts, e.hint ?? null]), [['network', 3, null]], 'the error of a dropped connection', dropped.errors);
  const log = (await fx.apiLog()).slice(before);
  expectEqual(log.map((e) => e.method), ['POST', 'POST', 'POST'], 'requests the fixture saw: the chunk and its two retries, no check GET', log);
});

test('a closed port is network, never cors', { timeout: TIMEOUT }, async () => {
  const port = await new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port: p } = server.address();
      server.close(() => resolve(p));
    });
  });
  const { errors } = await uploadOnce({ target: `http://127.0.0.1:${port}/upload`, maxChunkRetries: 1 }, 'nowhere.bin', randomBytes(10));
  expectEqual(errors.map((e) => [e.kind, e.attempts]), [['network', 2]], 'the error of a closed port', errors);
});

test('what Node lacks is an invalid option, named: a relative target (no page), progress: \'bytes\' (no XMLHttpRequest)', { timeout: TIMEOUT }, async () => {
  const { Uploader, isUploadError } = await client();
  const thrown = (options) => {
    try {
      new Uploader(options).free();
    } catch (e) {
      return isUploadError(e) ? [e.kind, e.option, e.message] : ['not an UploadError', String(e)];
    }
    return ['nothing thrown'];
  };
  const [kind, option, message] = thrown({ target: '/upload' });
  expectEqual([kind, option], ['invalid', 'target'], 'a relative target', message);
  expectTrue(/absolute URL/.test(message), `the message says an absolute URL is needed: ${message}`);
  const bytes = thrown({ target: fx.target(), progress: 'bytes' });
  expectEqual(bytes.slice(0, 2), ['invalid', 'progress'], 'progress: \'bytes\'', bytes[2]);
  expectTrue(/XMLHttpRequest/.test(bytes[2]), `the message names XMLHttpRequest: ${bytes[2]}`);
  // What would cost a preflight in a browser costs none here.
  const up = new Uploader({ target: fx.target(), headers: { Authorization: 'Bearer t' }, uploadMethod: 'PUT' });
  expectEqual(up.preflightReport(), { test: { preflight: false, reasons: [] }, upload: { preflight: false, reasons: [] } }, 'preflightReport() with Authorization and PUT');
  up.free();
});
