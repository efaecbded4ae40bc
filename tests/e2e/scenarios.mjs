// Scenario bodies shared by the Playwright suite (Chromium, tests/e2e/*.test.mjs) and the
// WebDriver core that runs in every engine (tests/engines/). Each takes a page object `t` — the
// Playwright one of harness.mjs's newPage or the WebDriver one of tests/engines/webdriver.mjs,
// both with `eval`, `console` and `pageErrors` — so one assertion code serves every engine.
// Engine-specific checks (CDP's corsErrorStatus, request interception) stay in the test files.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import {
  ROOT, E2E, PKG, startFixture, makeFile, runUpload, startRun, waitRun, callRun, untilRun, fileErrorOf,
  expectEqual, expectTrue, expectStored, countBy, formatLog, summarize, npmPack, KiB,
  pageRequests, untilPageIdle, expectNothingSent,
} from './harness.mjs';

/**
 * Uploads a 6-chunk file with `options` and checks the bytes on the fixture and the requests it
 * counted to /upload against `expected` ({ OPTIONS, GET, POST }, the upload method in place of
 * POST when `uploadMethod` is set; undefined: the caller checks). With `headers`, the console
 * names the (first) header that cost the preflight exactly once. Returns the counts.
 */
export async function countedUpload(t, fx, name, options, expected, { target = fx.target(), chunkSize = 64 * KiB } = {}) {
  await fx.reset();
  const f = await makeFile(t, name, 6 * chunkSize + 100, 2);
  const run = await runUpload(t, { target, chunkSize, simultaneousUploads: 3, ...options }, [f.name]);
  await expectStored(fx, [f], run);
  const c = countBy(await fx.apiLog());
  const method = options.uploadMethod ?? 'POST';
  const got = { OPTIONS: c.OPTIONS ?? 0, GET: c.GET ?? 0, [method]: c[method] ?? 0 };
  if (expected) expectEqual(got, expected, `requests to /upload for ${JSON.stringify(options)}`, summarize(run));
  if (options.headers) {
    const name = Object.keys(options.headers)[0];
    const warns = t.console.filter((l) => l.startsWith('[warning]') && /preflight/i.test(l) && l.toLowerCase().includes(name.toLowerCase()));
    expectEqual(warns.length, 1, `console warnings naming ${name} as the preflight cause`, t.console);
  }
  return got;
}

const auth = { headers: { Authorization: 'Bearer e2e' } };
/**
 * Every CORS misconfiguration of the fixture: mode name, config patch, options that exercise it,
 * Chromium's CDP reason(s), hint patterns (all must match), and the phase where it matters.
 */
export const corsCases = [
  // The chunk POST itself blocked (testChunks false): the request that may have stored the chunk.
  { name: 'none (upload phase, testChunks false)', patch: { cors: 'none' }, opts: { testChunks: false }, cdp: ['MissingAllowOriginHeader'], hint: [/Access-Control-Allow-Origin/i], phase: 'upload' },
  { name: 'no-allow-headers (upload phase, testChunks false)', patch: { cors: 'no-allow-headers' }, opts: { ...auth, testChunks: false }, cdp: ['HeaderDisallowedByPreflightResponse'], hint: [/Access-Control-Allow-Headers/i, /authorization/i], phase: 'upload' },
  { name: 'none', patch: { cors: 'none' }, opts: {}, cdp: ['MissingAllowOriginHeader'], hint: [/Access-Control-Allow-Origin/i] },
  { name: 'wildcard-credentials', patch: { cors: 'wildcard-credentials' }, opts: { withCredentials: true }, cdp: ['WildcardOriginNotAllowed'], hint: [/Access-Control-Allow-Origin/i, /credential/i] },
  { name: 'no-allow-credentials', patch: { cors: 'no-allow-credentials' }, opts: { withCredentials: true }, cdp: ['InvalidAllowCredentials'], hint: [/Access-Control-Allow-Credentials/i] },
  { name: 'no-allow-methods', patch: { cors: 'no-allow-methods' }, opts: { uploadMethod: 'PUT' }, cdp: ['MethodDisallowedByPreflightResponse'], hint: [/Access-Control-Allow-Methods/i, /PUT/] },
  { name: 'no-allow-headers', patch: { cors: 'no-allow-headers' }, opts: auth, cdp: ['HeaderDisallowedByPreflightResponse'], hint: [/Access-Control-Allow-Headers/i, /authorization/i] },
  { name: 'preflight-404', patch: { cors: 'preflight-404' }, opts: auth, cdp: ['PreflightInvalidStatus'], hint: [/OPTIONS|preflight/i, /2xx|200|204|ok status|success/i] },
  { name: 'preflight-500', patch: { cors: 'preflight-500' }, opts: auth, cdp: ['PreflightInvalidStatus'], hint: [/OPTIONS|preflight/i, /2xx|200|204|ok status|success/i] },
  // Byte progress: the upload listener alone forces the POST's preflight (the probe GET passes),
  // so the checks must be preflighted the same way to see the block.
  { name: 'preflight-404 (byte progress)', patch: { cors: 'preflight-404' }, opts: { progress: 'bytes' }, cdp: ['PreflightInvalidStatus'], hint: [/OPTIONS|preflight/i, /2xx|200|204|ok status|success/i], phase: 'upload' },
  { name: 'origin outside the allowlist', patch: { cors: 'strict', allow_origins: ['http://allowed.example'] }, opts: {}, cdp: ['MissingAllowOriginHeader'], hint: [/Access-Control-Allow-Origin/i] },
];

// The verdict needs 16 blocked check pairs in a row (CORS_EVIDENCE in src/engine/verdict.rs);
// up to 3 failures checking at once add at most one fresh pair each. A pair is a cors-mode
// request (with its failing preflight: 2 requests) and a no-cors one. Plus the first requests
// (up to 3 parallel, each with a preflight).
const CHECK_PAIRS = 16;
const CORS_REQUEST_BOUND = 3 * 2 + (CHECK_PAIRS + 3) * 3;

/**
 * Breaks the fixture's CORS as case `c` says (then restores `restore`), uploads, and checks that
 * the file fails with a typed `cors` UploadError whose hint names the fix, after a bounded number
 * of requests, with the hint logged exactly once. Default retry options on purpose: a CORS
 * failure is a configuration error, declared after checks of the request's shape rather than
 * retries, so the default settings must not make a storm.
 * Returns { err, run, log }.
 */
export async function expectCorsFailure(t, fx, c, restore, { target = fx.target(), chunkSize = 32 * KiB } = {}) {
  await fx.reset();
  await fx.config({ ...restore, ...c.patch });
  try {
    const f = await makeFile(t, `cors-${c.name.replace(/\W+/g, '-')}.bin`, 3 * chunkSize + 7, 9);
    const run = await runUpload(t, { target, chunkSize, ...c.opts }, [f.name], { timeoutMs: 120000 });
    expectTrue(run.settled, 'upload() settled within 120 s', summarize(run));
    const err = fileErrorOf(run, f.name);
    expectEqual(err?.kind, 'cors', `error kind for ${c.name}`, summarize(run));
    expectEqual([err?.isError, err?.isUploadError, err?.name], [true, true, 'UploadError'], 'the error is a real Error and isUploadError() says so');
    expectEqual(run.summary?.failed?.map((x) => x.name), [f.name], 'summary.failed', summarize(run));
    for (const re of c.hint) expectTrue(re.test(err?.hint ?? ''), `hint ${JSON.stringify(err?.hint)} should match ${re}`, err);
    if (c.phase) expectEqual(err?.phase, c.phase, 'phase of the error');
    // Within 2 attempts of the chunk, and the blocked request was never retried.
    expectTrue(err?.attempts >= 1 && err?.attempts <= 2, `attempts of the failed chunk: expected 1 or 2, got ${err?.attempts}`, err);
    expectEqual(run.counts.fileRetry ?? 0, 0, 'fileRetry events (a CORS block is not retried)', summarize(run));
    const log = await fx.apiLog();
    expectTrue(log.length <= CORS_REQUEST_BOUND, `bounded requests (the checks of one CORS verdict): expected ≤ ${CORS_REQUEST_BOUND} to /upload, got ${log.length} ${JSON.stringify(countBy(log))} in ${run.ms} ms, fileRetry events: ${run.counts.fileRetry ?? 0}`);
    // Each distinct CORS hint is logged exactly once: not once per chunk, and not never.
    const hintLogs = t.console.filter((l) => err?.hint && l.includes(err.hint.slice(0, 40)));
    expectEqual(hintLogs.length, 1, 'console lines carrying the hint', { hint: err?.hint, console: t.console.slice(-20) });
    return { err, run, log };
  } finally {
    await fx.config(restore);
  }
}

/** A port nothing listens on (bound, read, released). */
export async function freePort() {
  const srv = createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

/** An upload to a closed port fails with a typed `network` UploadError. Returns the error. */
export async function expectClosedPortIsNetwork(t, chunkSize = 32 * KiB) {
  const port = await freePort();
  const f = await makeFile(t, 'closed.bin', 2 * chunkSize, 12);
  const run = await runUpload(t, { target: `http://localhost:${port}/upload`, chunkSize, maxChunkRetries: 1, chunkRetryInterval: 50 }, [f.name], { timeoutMs: 30000 });
  expectTrue(run.settled, 'upload() settled within 30 s', summarize(run));
  expectEqual((run.summary?.failed ?? []).map((x) => [x.name, x.status, x.error?.kind]), [[f.name, 'error', 'network']], 'summary.failed: the file failed as network', summarize(run));
  const err = fileErrorOf(run, f.name);
  expectEqual(err?.kind, 'network', 'error kind for a closed port', summarize(run));
  expectEqual([err?.isError, err?.isUploadError, err?.name], [true, true, 'UploadError'], 'the error is a real Error and isUploadError() says so');
  return err;
}

/**
 * Pause after 3 chunks: once the requests in flight at the pause have ended, nothing more is
 * sent (the page starts no /upload request and none reaches the fixture, whose log records a
 * request on arrival); every request the page sent before reached the fixture; resume completes
 * byte-identical, and no stored chunk was POSTed twice.
 */
export async function expectPauseThenResume(t, fx, { target = fx.target(), chunkSize = 32 * KiB } = {}) {
  await fx.reset();
  const f = await makeFile(t, 'pause.bin', 20 * chunkSize, 21);
  const before = await pageRequests(t);
  await startRun(t, 'p', { target, chunkSize, simultaneousUploads: 3 }, [f.name]);
  await untilRun(t, 'p', (s) => (s.counts.chunkSuccess ?? 0) >= 3, '3 chunks');
  // Pause and read the page's request count in one turn: what started before the pause.
  const atPause = await t.eval(() => { window.__e2e.runs.p.up.pause(); return window.__e2e.net.started; });
  // The requests in flight at the pause finish and count; then nothing is in flight anywhere.
  await untilPageIdle(t, 'the requests in flight at the pause to end');
  const served = await fx.untilServed();
  expectEqual(served.length, atPause - before.started, 'requests the fixture logged, against those the page started before the pause', formatLog(served));
  await expectNothingSent(t, fx, atPause, 'the pause');
  const s = await t.eval(() => window.__e2e.snapshot('p'));
  expectTrue(!s.settled, 'upload() settled while paused', summarize(s));
  expectEqual(s.counts.pause ?? 0, 1, 'pause events');
  expectEqual(s.files?.[0]?.status, 'paused', 'file status while paused', s.files);
  expectTrue(s.uploading === false, `isUploading() while paused: ${s.uploading}`);
  await callRun(t, 'p', 'resume');
  const run = await waitRun(t, 'p', 30000);
  await expectStored(fx, [f], run);
  const posts = (await fx.apiLog()).filter((e) => e.method === 'POST' && e.status === 200);
  expectEqual(new Set(posts.map((e) => e.chunk)).size, 20, 'distinct chunks POSTed');
  expectEqual(posts.length, 20, 'chunk POSTs in all (pause/resume re-sent no stored chunk)');
}

const DOOR_CHUNK = 64 * KiB;

/**
 * What every door must do once the page has the library: upload a file cross-origin with
 * credentials, byte-identical, then fail with a typed `cors` UploadError naming the fix once the
 * server's CORS is broken (`Access-Control-Allow-Origin: *` with credentials).
 */
export async function uploadAndCheck(t, fx, name) {
  const f = await makeFile(t, name, 3 * DOOR_CHUNK + 11, 41);
  const guard = await t.eval(async () => {
    const lib = await window.__e2e.rw();
    return { uploader: typeof lib.Uploader, isUploadError: typeof lib.isUploadError };
  });
  expectEqual(guard, { uploader: 'function', isUploadError: 'function' }, 'exports of the loaded library');
  const run = await runUpload(t, { target: fx.target(), chunkSize: DOOR_CHUNK, withCredentials: true }, [f.name]);
  await expectStored(fx, [f], run);
  await fx.config({ cors: 'wildcard-credentials' });
  try {
    const g = await makeFile(t, `broken-cors-${name}`, DOOR_CHUNK + 3, 43);
    const failed = await runUpload(t, { target: fx.target(), chunkSize: DOOR_CHUNK, withCredentials: true }, [g.name], { timeoutMs: 120000 });
    const err = fileErrorOf(failed, g.name);
    expectEqual(err?.kind, 'cors', 'error kind with Access-Control-Allow-Origin: * and credentials', summarize(failed));
    expectEqual([err?.isUploadError, err?.name], [true, 'UploadError'], 'isUploadError() and the error name', err);
    for (const re of [/Access-Control-Allow-Origin/, /credential/i]) {
      expectTrue(re.test(err?.hint ?? ''), `hint ${JSON.stringify(err?.hint)} should match ${re}`, err);
    }
  } finally {
    await fx.config({ cors: 'strict' });
  }
}

/**
 * The script-tag door: the script-tag build served by a CDN-like fixture on a third origin, and a
 * page (generated into `dir`) holding nothing but its <script src>. Returns { fx, cdn, pageUrl,
 * scriptUrl }; the caller stops both fixtures.
 */
export async function startScriptTagDoor(dir) {
  const cdn = await startFixture({ pageHost: '127.0.0.1', mounts: { '/cdn': join(PKG, 'script') }, www: join(PKG, 'script') });
  cpSync(join(E2E, 'pages'), dir, { recursive: true });
  const fx = await startFixture({ mounts: { '/e2e': dir } });
  const scriptUrl = `${cdn.page}/cdn/resumable-wasm.js`;
  writeFileSync(join(dir, 'script-tag.html'), `<!doctype html>\n<script src="${scriptUrl}"></script>\n`);
  const origins = new Set([new URL(fx.page).origin, new URL(fx.api).origin, new URL(cdn.page).origin]);
  expectEqual(origins.size, 3, 'three distinct origins (page, API, CDN)');
  return { fx, cdn, pageUrl: `${fx.page}/e2e/script-tag.html`, scriptUrl };
}

/** Installs the `npm pack` tarball of the package into `app` as its one dependency. */
export function installPackedPackage(app, packDir, packageJson) {
  const tarball = npmPack(packDir);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ ...packageJson, private: true, dependencies: { 'resumable-wasm': `file:${tarball}` } }, null, 2));
  execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', '--no-package-lock'], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
  expectTrue(existsSync(join(app, 'node_modules/resumable-wasm/package.json')), 'the tarball was installed into the app');
}

/** Builds tests/e2e/vite-app with Vite against the packed package in `dir`; returns its dist/. */
export async function buildViteApp(dir) {
  const app = join(dir, 'app');
  cpSync(join(E2E, 'vite-app'), app, { recursive: true });
  installPackedPackage(app, dir, { name: 'e2e-vite-app', type: 'module' });
  const { build } = await import('vite');
  await build({ root: app, base: './', logLevel: 'warn', configFile: false, build: { outDir: join(app, 'dist'), target: 'es2022', emptyOutDir: true } });
  return join(app, 'dist');
}

/**
 * The Vite app of the npm door, built once per package build and shared by the engines: kept under
 * target/e2e-apps/<digest of pkg/> so a rebuilt package gets a fresh app.
 */
export async function cachedViteApp() {
  const h = createHash('sha256');
  for (const f of ['package.json', 'resumable_wasm.js', 'resumable_wasm_bg.wasm']) h.update(readFileSync(join(PKG, f)));
  const dir = join(ROOT, 'target/e2e-apps', h.digest('hex').slice(0, 16));
  const dist = join(dir, 'app/dist');
  if (!existsSync(join(dist, 'index.html'))) {
    rmSync(dir, { recursive: true, force: true });
    await buildViteApp(dir);
  }
  return dist;
}

/** The object key of an S3 upload's `location` (path-style: /bucket/key). */
export const s3KeyOf = (location, bucket) => decodeURIComponent(new URL(location).pathname.slice(`/${bucket}/`.length));

/**
 * `protocol: 's3'` against moto (`store`) with server-fixture's S3 role (`fx`) signing: sets the
 * bucket's CORS rule (`full`), uploads a file of `size` bytes in 5 MiB parts, and checks the
 * object read back from the bucket (size, SHA-256), the requests the store got for the bucket's
 * objects (one PUT and one preflight per part) and the callbacks the fixture served (1 create,
 * 1 signPart per part, 1 complete). Returns the run.
 */
export async function s3UploadAndCheck(t, fx, store, bucket, name, size, options = {}) {
  await fx.json('/__fixture/s3/bucket', { method: 'POST', body: JSON.stringify({ cors: 'full' }) });
  await fx.reset(false);
  store.clearLog();
  const f = await makeFile(t, name, size, 24);
  await startRun(t, name, { protocol: 's3', chunkSize: 5 * 1024 * 1024, ...options }, [{ name, size, seed: 24 }], { s3Api: fx.api });
  const run = await waitRun(t, name, 180000);
  expectEqual(run.summary?.succeeded?.length, 1, 'files succeeded', summarize(run));
  const success = run.events.find((e) => e.name === 'fileSuccess');
  const object = await fx.json(`/__fixture/s3/object?key=${encodeURIComponent(s3KeyOf(success.text, bucket))}`);
  expectEqual([object.size, object.sha256], [f.size, f.sha256], 'the object in the bucket (size, sha256)', object);
  const parts = Math.max(1, Math.ceil(size / (5 * 1024 * 1024)));
  // This file's object only: a part of an earlier case's file may still reach the store after
  // that case ended (the browser aborted it; the store had it already).
  const objects = store.requests(bucket).filter((e) => e.path.startsWith(`/${bucket}/`) && e.path.endsWith(`/${name}`));
  const put = objects.filter((e) => e.method === 'PUT').map((e) => Number(new URLSearchParams(e.query).get('partNumber')));
  const options_ = objects.filter((e) => e.method === 'OPTIONS').length;
  expectEqual([put.length, options_], [parts, parts], 'store PUTs and OPTIONS (one preflight per part)', objects);
  expectEqual([...put].sort((a, b) => a - b), Array.from({ length: parts }, (_, i) => i + 1), 'each part PUT once', objects);
  const byPath = (await fx.stats()).by_path ?? {};
  const calls = { create: byPath['/s3/create'] ?? 0, signPart: byPath['/s3/sign-part'] ?? 0, listParts: byPath['/s3/list-parts'] ?? 0, complete: byPath['/s3/complete'] ?? 0, abort: byPath['/s3/abort'] ?? 0 };
  expectEqual(calls, { create: 1, signPart: parts, listParts: 0, complete: 1, abort: 0 }, 'callbacks', byPath);
  return run;
}

/**
 * `protocol: 's3-post'` against moto (`store`) with server-fixture's S3 role (`fx`): sets the
 * bucket's CORS rule to allow the page's POSTs, uploads a file of `size` bytes in 5 MiB chunks,
 * and checks the object read back from the bucket (size, SHA-256), that no temporary chunk object
 * is left under its prefix, the requests the store got (one form POST per chunk, **no OPTIONS**)
 * and the callbacks the fixture served (1 createUpload, no listChunks, 1 complete). Returns the run.
 */
export async function s3PostUploadAndCheck(t, fx, store, bucket, name, size, options = {}) {
  await fx.json('/__fixture/s3/bucket', { method: 'POST', body: JSON.stringify({ cors: 'post' }) });
  await fx.reset(false);
  store.clearLog();
  const f = await makeFile(t, name, size, 25);
  await startRun(t, name, { protocol: 's3-post', chunkSize: 5 * 1024 * 1024, ...options }, [{ name, size, seed: 25 }], { s3PostApi: fx.api });
  const run = await waitRun(t, name, 180000);
  expectEqual(run.summary?.succeeded?.length, 1, 'files succeeded', summarize(run));
  const success = run.events.find((e) => e.name === 'fileSuccess');
  const key = s3KeyOf(success.text, bucket);
  const object = await fx.json(`/__fixture/s3/object?key=${encodeURIComponent(key)}`);
  expectEqual([object.size, object.sha256], [f.size, f.sha256], 'the object in the bucket (size, sha256)', object);
  expectEqual(await fx.json(`/__fixture/s3/objects?prefix=${encodeURIComponent(key + '.chunks/')}`), [], 'temporary chunk objects left');
  const chunks = Math.max(1, Math.ceil(size / (5 * 1024 * 1024)));
  const log = store.requests(bucket);
  const posts = log.filter((e) => e.method === 'POST' && e.path === `/${bucket}` && e.query === '').length;
  const options_ = log.filter((e) => e.method === 'OPTIONS').length;
  expectEqual([posts, options_], [chunks, 0], 'store form POSTs and OPTIONS (no preflight at all)', log.filter((e) => e.method !== 'PUT'));
  const byPath = (await fx.stats()).by_path ?? {};
  const calls = { createUpload: byPath['/s3/policy'] ?? 0, listChunks: byPath['/s3/list-chunks'] ?? 0, complete: byPath['/s3/compose'] ?? 0, abort: byPath['/s3/discard'] ?? 0 };
  expectEqual(calls, { createUpload: 1, listChunks: 0, complete: 1, abort: 0 }, 'callbacks', byPath);
  return run;
}

/**
 * A bucket whose CORS rule lets the page PUT but does not expose ETag: the part is stored, the
 * page cannot read its ETag, and the file fails at once with kind `cors`, phase `etag` and the
 * rule to add — the run settles (no hang) and complete is never called.
 */
export async function s3EtagHidden(t, fx, name) {
  await fx.json('/__fixture/s3/bucket', { method: 'POST', body: JSON.stringify({ cors: 'no-etag' }) });
  await fx.reset(false);
  await startRun(t, name, { protocol: 's3', chunkSize: 5 * 1024 * 1024 }, [{ name, size: 11 * 1024 * 1024, seed: 3 }], { s3Api: fx.api });
  const run = await waitRun(t, name, 60000);
  expectTrue(run.settled, 'the run settled', summarize(run));
  const e = fileErrorOf(run, name);
  expectEqual([e?.kind, e?.phase], ['cors', 'etag'], 'error kind and phase', e);
  expectTrue(/"ExposeHeaders":\["ETag"\]/.test(e?.hint ?? ''), 'the hint shows ExposeHeaders ETag', e);
  expectEqual((await fx.stats()).by_path?.['/s3/complete'] ?? 0, 0, 'no completeMultipartUpload without ETags');
  return run;
}

/** `pending()` of an Uploader with `options` in the page (see pages/lib.js E.pending). */
export const pendingIn = (t, options) => t.eval((o) => window.__e2e.pending(o), options);

/** Navigates the page to its own URL again (a reload in every engine) and waits for the library. */
export async function reloadPage(t) {
  const url = await t.eval(() => location.href);
  await t.goto(url);
  await t.eval(() => window.__e2e.rw().then(() => true));
}

/**
 * Starts a `persist` upload of a new file (`make(name)` creates it in the page and returns
 * { name, size, sha256 }), waits for `atLeast` confirmed chunks, then `interrupt()`s the page
 * (a reload, a browser restart; returns the page to go on with) and waits for the requests it cut
 * to end on the fixture. Returns { t, stored (chunks on the fixture), maxSeq, pending }.
 */
export async function interruptPersistedUpload(t, fx, opts, f, atLeast, interrupt, spec = f.name) {
  await startRun(t, 'before', opts, [spec]);
  await untilRun(t, 'before', (s) => (s.counts.chunkSuccess ?? 0) >= atLeast, `${atLeast} chunks`, 60000);
  t = await interrupt(t);
  await fx.untilServed(); // requests cut by the interruption have ended on the fixture
  const log = await fx.apiLog();
  const stored = new Set(log.filter((e) => e.method === 'POST' && e.status === 200).map((e) => e.chunk));
  const maxSeq = Math.max(...log.map((e) => e.seq));
  const pending = await pendingIn(t, opts);
  expectEqual(pending.map((p) => [p.name, p.size]), [[f.name, f.size]], 'pending() after the interruption');
  return { t, stored, maxSeq, pending: pending[0] };
}

/**
 * What resuming a kept record must cost: every chunk the record has is skipped (none POSTed
 * again), every chunk the server lacks is POSTed once, at most one probe (the first kept chunk),
 * and the bytes are equal. `n` chunks of `chunkSize`, `since` the log position of the resume.
 */
export async function expectResumedFromRecord(fx, f, run, { n, chunkSize, stored, since, pending }) {
  await expectStored(fx, [f], run);
  const after = (await fx.apiLog()).filter((e) => e.seq > since);
  const c = countBy(after);
  expectTrue((c.GET ?? 0) <= 1, `probes after the resume: ${c.GET ?? 0} (at most 1: the first kept chunk)`, formatLog(after));
  const kept = Math.floor(pending.confirmed / chunkSize);
  expectTrue(kept >= 1, `the record kept confirmed chunks: ${pending.confirmed} bytes`, pending);
  const posts = after.filter((e) => e.method === 'POST').map((e) => e.chunk).sort((a, b) => a - b);
  expectEqual(posts.length, n - kept, `chunk POSTs after the resume (${n} chunks, ${kept} in the record)`, formatLog(after));
  expectEqual(new Set(posts).size, posts.length, 'no chunk POSTed twice after the resume', posts);
  const missing = [...Array(n).keys()].map((i) => i + 1).filter((x) => !stored.has(x));
  expectTrue(missing.every((x) => posts.includes(x)), `every chunk the server lacked was POSTed: lacked ${missing}, POSTed ${posts}`);
  // The record trails the server by what was in flight or not yet written at the interruption.
  expectTrue(posts.length - missing.length <= 4, `chunks sent again that the server had: ${posts.length - missing.length}`, { posts, stored: [...stored] });
}

/**
 * `persist`, reload mid-upload, the same file chosen again: only the chunks the record lacks
 * are POSTed, at most one probe, bytes equal.
 */
export async function expectReloadResume(t, fx, { name, size, chunkSize, target = fx.target(), blobsKept = true }) {
  await fx.reset();
  const n = Math.max(1, Math.floor(size / chunkSize));
  const opts = { target, chunkSize, simultaneousUploads: 2, persist: true };
  const f = await makeFile(t, name, size, 51);
  const r = await interruptPersistedUpload(t, fx, opts, f, Math.ceil(n / 4), async (p) => { await reloadPage(p); return p; });
  t = r.t;
  expectEqual([r.pending.file, r.pending.handle], [blobsKept && size <= 4 * 1024 * 1024, false], 'pending(): a kept file (only up to persistBlobMaxBytes, where the session stores Blobs), no handle', r.pending);
  const again = await makeFile(t, name, size, 51);
  expectEqual(again.sha256, f.sha256, 'the file chosen again is the same');
  const run = await runUpload(t, opts, [f.name], { timeoutMs: 180000 });
  await expectResumedFromRecord(fx, f, run, { n, chunkSize, stored: r.stored, since: r.maxSeq, pending: r.pending });
  expectEqual(await pendingIn(t, opts), [], 'pending() once the file succeeded');
}

/**
 * `persist`, a small file kept whole: interrupted (reload, or a browser restart with
 * `interrupt`), then `resumePending()` alone, without choosing the file again, finishes it.
 * `blobsKept: false`: a browser session whose IndexedDB refuses Blobs (WebKitGTK's ephemeral
 * WebDriver session) keeps the record without the file, warns of nothing, and the file chosen
 * again resumes.
 */
export async function expectKeptFileResume(t, fx, { name, size, chunkSize, target = fx.target(), interrupt = async (p) => { await reloadPage(p); return p; }, blobsKept = true }) {
  await fx.reset();
  const n = Math.max(1, Math.floor(size / chunkSize));
  const opts = { target, chunkSize, simultaneousUploads: 2, persist: true };
  const f = await makeFile(t, name, size, 53);
  const r = await interruptPersistedUpload(t, fx, opts, f, Math.ceil(n / 4), interrupt);
  t = r.t;
  expectEqual([r.pending.file, r.pending.handle], [blobsKept, false], `pending(): the file is ${blobsKept ? '' : 'not '}kept whole`, r.pending);
  expectEqual(await t.eval(() => Object.keys(window.__e2e.files)), [], 'the page holds no file of its own');
  let run;
  if (blobsKept) {
    run = await runUpload(t, opts, [], { timeoutMs: 120000, extra: { resumePending: true } });
  } else {
    await makeFile(t, name, size, 53);
    run = await runUpload(t, opts, [name], { timeoutMs: 120000 });
  }
  expectEqual(run.counts?.persistWarning ?? 0, 0, 'persistWarning events', summarize(run));
  await expectResumedFromRecord(fx, f, run, { n, chunkSize, stored: r.stored, since: r.maxSeq, pending: r.pending });
  expectEqual(await pendingIn(t, opts), [], 'pending() once the file succeeded');
  return t;
}

/**
 * The checksum core (every engine): with `corrupt_rate` flipping a bit in about half the chunk
 * bodies as they reach the fixture, an upload with `checksum` ends byte-identical, every
 * corrupted body was refused (460) and sent again, the fixture verified the whole-file digest
 * the client sent, and no request was preflighted. Runs for `checksum` 'crc32c' and 'sha256'
 * (WebCrypto: the page is on localhost, a secure context), in the given dialect and method.
 * Returns the fixture's stats.
 */
export async function expectChecksummedUpload(t, fx, { checksum = 'crc32c', protocol = 'resumable', method = 'multipart', chunkSize = 32 * KiB, seed = 7, target = fx.target() } = {}) {
  await fx.reset();
  await fx.config({ corrupt_rate: 0.5, seed });
  try {
    const f = await makeFile(t, `checked-${checksum}-${protocol}-${method}.bin`, 12 * chunkSize + 5, 61);
    const run = await runUpload(t, { target, chunkSize, simultaneousUploads: 3, protocol, method, checksum, maxChunkRetries: 20, chunkRetryInterval: 20, maxRetryInterval: 50 }, [f.name], { timeoutMs: 120000 });
    await expectStored(fx, [f], run);
    const stats = await fx.stats();
    expectTrue(stats.corrupted >= 1, `the fault corrupted no chunk body (${stats.corrupted}): the test proves nothing`, stats);
    expectEqual(stats.checksum_mismatches, stats.corrupted, 'chunk bodies refused for their checksum = bodies corrupted');
    const retried = run.events.filter((e) => e.name === 'fileRetry' && e.error?.kind === 'integrity');
    expectEqual(retried.length, stats.checksum_mismatches, 'integrity retries seen by the page = mismatches answered', summarize(run));
    const c = countBy(await fx.apiLog());
    expectEqual(c.OPTIONS ?? 0, 0, `OPTIONS with checksum ${checksum}, ${protocol}, ${method}`);
    const stored = (await fx.files()).find((x) => x.name === f.name);
    expectEqual(stored?.checksum?.algorithm, checksum, 'the file digest the fixture received');
    if (checksum === 'crc32c') expectEqual(stored?.checksum?.value, stored?.crc32c, 'the client\'s file digest = the CRC-32C of the stored file');
    return stats;
  } finally {
    await fx.config({ corrupt_rate: 0 });
  }
}
