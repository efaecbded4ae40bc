// End-to-end harness: server-fixture instances, headless Chromium (playwright-core, the system
// /usr/bin/chromium, never a downloaded browser), in-page helpers, fixture introspection, CDP,
// and failures that say what differed and what the fixture saw.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { AssertionError } from 'node:assert';
import { chromium } from 'playwright-core';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const E2E = join(ROOT, 'tests/e2e');
export const FIXTURE_BIN = process.env.SERVER_FIXTURE_BIN || join(ROOT, 'target/debug/server-fixture');
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
/** The built package (make build → pkg/); E2E_PKG_DIR points elsewhere for local debugging. */
export const PKG = process.env.E2E_PKG_DIR || join(ROOT, 'pkg');
export const KiB = 1024;
export const MiB = 1024 * 1024;

const liveFixtures = new Set();
const cleanup = () => {
  for (const fx of liveFixtures) {
    try { fx.proc.kill('SIGKILL'); } catch { /* already gone */ }
  }
};
process.on('exit', cleanup);

/** Whether `pkg/` has been built (the uploader scenarios need it). */
export const pkgBuilt = () =>
  existsSync(join(PKG, 'resumable_wasm.js')) && existsSync(join(PKG, 'script/resumable-wasm.js'));

/** Builds the command line of a fixture from a flags object ({ cors: 'none', 'require-session': true, ... }). */
function flagArgs(flags) {
  const args = [];
  for (const [name, value] of Object.entries(flags)) {
    if (value === undefined || value === null || value === false) continue;
    if (value === true) args.push(`--${name}`);
    else if (Array.isArray(value)) for (const v of value) args.push(`--${name}`, String(v));
    else args.push(`--${name}`, String(value));
  }
  return args;
}

/**
 * Starts `target/debug/server-fixture` on free ports with a fresh temp data dir and returns a
 * handle: { page, api, dataDir, stats(), files(), reset(), config(patch), apiLog(), stop() }.
 * `flags` are extra command-line flags; `mounts` maps a URL prefix to a directory; the defaults
 * mount /pkg (the built package), /e2e (test pages) and /vendor (node_modules). `dataRoot`: where
 * the data directory is made (default the OS temp dir).
 */
export async function startFixture({ flags = {}, mounts, pageHost = 'localhost', apiHost = 'localhost', www, dataRoot = tmpdir() } = {}) {
  if (!existsSync(FIXTURE_BIN)) {
    throw new Error(`${FIXTURE_BIN} is missing: run \`cargo build -p server-fixture\` (make test-e2e does)`);
  }
  const dataDir = mkdtempSync(join(dataRoot, 'rw-e2e-data-'));
  const allMounts = mounts ?? { '/pkg': PKG, '/e2e': join(E2E, 'pages'), '/vendor': join(ROOT, 'node_modules') };
  const args = [
    '--www', www ?? join(E2E, 'pages'),
    ...Object.entries(allMounts).flatMap(([prefix, dir]) => ['--mount', `${prefix}=${dir}`]),
    '--page-listen', `${pageHost}:0`,
    '--api-listen', `${apiHost}:0`,
    '--data-dir', dataDir,
    // A guard against fixtures left behind by a killed run; longer than a run may last
    // (scripts/test-engines.sh sets it above its run time limit).
    '--max-lifetime', process.env.FIXTURE_MAX_LIFETIME_S || '3600',
    ...flagArgs(flags),
  ];
  // Plain text (no colour codes): its warnings are quoted in failure messages.
  const proc = spawn(FIXTURE_BIN, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn', NO_COLOR: '1' } });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr = (stderr + d).slice(-20000); });
  const lines = createInterface({ input: proc.stdout });
  const first = await new Promise((resolveLine, reject) => {
    const timer = setTimeout(() => reject(new Error(`fixture printed no JSON line within 15 s\nargs: ${args.join(' ')}\nstderr: ${stderr}`)), 15000);
    lines.once('line', (l) => { clearTimeout(timer); resolveLine(l); });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`fixture exited (${code}) before printing its URLs\nargs: ${args.join(' ')}\nstderr: ${stderr}`)); });
  });
  let info;
  try {
    info = JSON.parse(first);
  } catch {
    proc.kill('SIGKILL');
    throw new Error(`fixture's first stdout line is not JSON: ${first}\nstderr: ${stderr}`);
  }
  lines.on('line', () => {});
  const control = info.page ?? info.api;
  // With --tls, node's own calls trust exactly the fixture's certificate.
  const ca = info.tls ? readFileSync(info.tls.cert_pem) : null;
  const nodeFetch = (url, init) => (ca ? fetchTrusting(ca, url, init) : fetch(url, init));
  const fx = {
    proc,
    args,
    dataDir,
    page: info.page,
    api: info.api,
    info,
    get stderr() { return stderr; },
    /** `fetch` from node that trusts the fixture's certificate (with --tls); returns { ok, status, text() }. */
    fetch: nodeFetch,
    /** API URL of `path` (default the upload route). */
    target: (path = '/upload') => info.api + path,
    /** A control call: the fixture's token (from its start line), JSON for POSTs. */
    async json(path, init = {}) {
      const headers = { 'x-fixture-token': info.control_token, ...(init.method === 'POST' ? { 'content-type': 'application/json' } : {}), ...init.headers };
      const r = await nodeFetch(control + path, { ...init, headers });
      const text = await r.text();
      if (!r.ok) throw new Error(`${init?.method ?? 'GET'} ${path} → ${r.status}: ${text}`);
      return text ? JSON.parse(text) : null;
    },
    stats() { return fx.json('/__fixture/stats'); },
    files() { return fx.json('/__fixture/files'); },
    reset(data = true) { return fx.json(`/__fixture/reset${data ? '?data=1' : ''}`, { method: 'POST' }); },
    config(patch) {
      if (!patch) return fx.json('/__fixture/config');
      return fx.json('/__fixture/config', { method: 'POST', body: JSON.stringify(patch) });
    },
    /** The fixture's request log, only the protocol routes (not static files or /__fixture). */
    async apiLog() {
      const s = await fx.stats();
      return (s.log ?? []).filter((e) => e.path === '/upload' || e.path.endsWith('/upload'));
    },
    /**
     * A marker in the request log: a GET /__probe?mark=… on the API listener; returns its log
     * entry ({ seq, t_ms }). Requests with a larger seq arrived after the marker.
     */
    async mark(label = 'm') {
      const tag = `${label}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
      await nodeFetch(`${info.api}/__probe?mark=${tag}`).then((r) => r.text());
      for (let i = 0; i < 50; i++) {
        const s = await fx.stats();
        const e = (s.log ?? []).find((x) => x.query === `mark=${tag}`);
        if (e) return e;
        await sleep(20);
      }
      throw new Error('marker request not found in the fixture log');
    },
    /**
     * Waits until no /upload request is being served: every logged request has ended (the log
     * records a request on arrival and marks it `in_flight` until it ends). Returns that log.
     */
    async untilServed(timeoutMs = 30000) {
      const t0 = Date.now();
      for (;;) {
        const log = await fx.apiLog();
        if (!log.some((e) => e.in_flight)) return log;
        if (Date.now() - t0 > timeoutMs) throw new Error(`requests still served after ${timeoutMs} ms:\n${formatLog(log.filter((e) => e.in_flight))}`);
        await sleep(20);
      }
    },
    async stop() {
      liveFixtures.delete(fx);
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await Promise.race([new Promise((r) => proc.once('exit', r)), sleep(3000)]);
        if (proc.exitCode === null) proc.kill('SIGKILL');
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  liveFixtures.add(fx);
  return fx;
}

/** A minimal `fetch` over HTTPS trusting only `ca` (PEM): { ok, status, headers, text() }. */
export function fetchTrusting(ca, url, init = {}) {
  return new Promise((resolveResp, reject) => {
    const req = httpsRequest(url, { method: init.method ?? 'GET', headers: init.headers ?? {}, ca }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        resolveResp({ ok: res.statusCode >= 200 && res.statusCode < 300, status: res.statusCode, headers: res.headers, text: async () => text });
      });
    });
    req.on('error', reject);
    req.setTimeout(30000, () => req.destroy(new Error(`${url}: no answer within 30 s`)));
    if (init.body != null) req.write(init.body);
    req.end();
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Counts log entries by method ({ OPTIONS, GET, POST, ... }). */
export function countBy(log, key = 'method') {
  const c = {};
  for (const e of log) c[e[key]] = (c[e[key]] ?? 0) + 1;
  return c;
}

/** A compact text of the fixture's request log for failure messages. */
export function formatLog(log, max = 80) {
  const rows = [...log].sort((a, b) => a.seq - b.seq).map((e) => {
    const q = e.query ? `?${e.query}`.slice(0, 90) : '';
    return `  #${e.seq} +${e.t_ms}ms ${e.listener ?? ''} ${e.method} ${e.path}${q} → ${e.status}${e.chunk != null ? ` chunk=${e.chunk}` : ''} origin=${e.origin ?? '-'}`;
  });
  if (rows.length > max) return [...rows.slice(0, max / 2), `  … ${rows.length - max} more …`, ...rows.slice(-max / 2)].join('\n');
  return rows.join('\n');
}

export const chromiumArgs = ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
  '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'];

/**
 * Launches the system Chromium (one per test file). `args`: extra command-line flags; `trust`: a
 * fixture started with `--tls` whose certificate the browser accepts (by its public-key hash).
 */
export function launchBrowser({ args = [], trust } = {}) {
  const extra = trust?.info?.tls ? [`--ignore-certificate-errors-spki-list=${trust.info.tls.spki_sha256}`] : [];
  return chromium.launch({ executablePath: CHROMIUM, args: [...chromiumArgs, ...args, ...extra] });
}

/**
 * A fresh context + page with the in-page helpers, a `pageerror` collector, console capture and
 * a CDP session collecting `Network.loadingFailed` (with `corsErrorStatus`).
 */
export async function newPage(browser, { initLib = true } = {}) {
  const context = await browser.newContext();
  if (initLib) await context.addInitScript({ path: join(E2E, 'pages/lib.js') });
  const page = await context.newPage();
  const t = {
    context,
    page,
    pageErrors: [],
    console: [],
    loadingFailed: [],
    requests: new Map(),
    protocols: [],
    /** Requests sent and ended, in CDP order: { id, start } (bounded), for `mostInFlight`. */
    lifecycle: [],
    allowPageErrors: false,
  };
  page.on('pageerror', (e) => t.pageErrors.push(String(e && e.stack ? e.stack : e)));
  page.on('console', (m) => { t.console.push(`[${m.type()}] ${m.text()}`); if (t.console.length > 400) t.console.shift(); });
  const cdp = await context.newCDPSession(page);
  t.cdp = cdp;
  await cdp.send('Network.enable');
  const lifecycle = (id, start) => { t.lifecycle.push({ id, start }); if (t.lifecycle.length > 20000) t.lifecycle.shift(); };
  cdp.on('Network.requestWillBeSent', (e) => { t.requests.set(e.requestId, { url: e.request.url, method: e.request.method, headers: e.request.headers }); lifecycle(e.requestId, true); });
  cdp.on('Network.loadingFinished', (e) => lifecycle(e.requestId, false));
  // The protocol of each response as Chromium saw it ('h2', 'http/1.1'), for HTTPS tests.
  cdp.on('Network.responseReceived', (e) => {
    t.protocols.push({ url: e.response.url, method: t.requests.get(e.requestId)?.method, protocol: e.response.protocol });
    if (t.protocols.length > 2000) t.protocols.shift();
  });
  cdp.on('Network.loadingFailed', (e) => {
    lifecycle(e.requestId, false);
    const r = t.requests.get(e.requestId) ?? {};
    t.loadingFailed.push({ url: r.url, method: r.method, errorText: e.errorText, canceled: e.canceled, corsErrorStatus: e.corsErrorStatus, type: e.type });
  });
  /**
   * The most `method` requests to `pathname` the page had under way at once, as Chromium saw
   * them: from the page's request (before any wait for a connection) to its end. Counts what
   * the uploader asked for, whatever the browser queued.
   */
  t.mostInFlight = (method, pathname) => {
    const live = new Set();
    let most = 0;
    for (const { id, start } of t.lifecycle) {
      const r = t.requests.get(id);
      if (!r || r.method !== method || new URL(r.url).pathname !== pathname) continue;
      if (start) live.add(id); else live.delete(id);
      most = Math.max(most, live.size);
    }
    return most;
  };
  t.resetLifecycle = () => { t.lifecycle.length = 0; };
  /** The CORS reasons Chromium recorded, e.g. ['MissingAllowOriginHeader']. */
  t.corsErrors = () => t.loadingFailed.filter((f) => f.corsErrorStatus).map((f) => f.corsErrorStatus.corsError);
  t.goto = (url) => page.goto(url, { waitUntil: 'load' });
  t.eval = (fn, arg) => page.evaluate(fn, arg);
  t.setOffline = (offline) => cdp.send('Network.emulateNetworkConditions', { offline, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  t.close = () => context.close();
  return t;
}

/** Makes a deterministic file in the page; returns { name, size, sha256 } (digest computed in the page). */
export async function makeFile(t, name, size, seed = 1, type = '') {
  return t.eval(async ([n, s, sd, ty]) => {
    const f = window.__e2e.makeFile(n, s, sd, ty);
    return { name: n, size: f.size, sha256: await window.__e2e.sha256(f) };
  }, [name, size, seed, type]);
}

/** Makes several deterministic files in the page ({ name, size, seed }); returns their { name, size, sha256 }. */
export async function makeFiles(t, specs) {
  return t.eval(async (list) => {
    const out = [];
    for (const s of list) {
      const f = window.__e2e.makeFile(s.name, s.size, s.seed);
      out.push({ name: s.name, size: f.size, sha256: await window.__e2e.sha256(f) });
    }
    return out;
  }, specs);
}

/** Starts an upload run in the page (see pages/lib.js E.start). */
export function startRun(t, id, options, files, extra = {}) {
  return t.eval(([i, o, f, x]) => window.__e2e.start(i, o, f, x), [id, options, files, extra]);
}
export function waitRun(t, id, timeoutMs = 60000) {
  return t.eval(([i, ms]) => window.__e2e.wait(i, ms), [id, timeoutMs]);
}
export function callRun(t, id, method, ...args) {
  return t.eval(([i, m, a]) => window.__e2e.call(i, m, ...a), [id, method, args]);
}
/** Starts a run and waits for it. */
export async function runUpload(t, options, files, { id = 'r' + Math.random().toString(36).slice(2), timeoutMs = 60000, extra } = {}) {
  const start = await startRun(t, id, options, files, extra);
  if (start.constructError) return { ...start, settled: true };
  return waitRun(t, id, timeoutMs);
}

/** Error decorated with the context needed to debug an end-to-end failure. */
export class E2EFailure extends AssertionError {}

/**
 * Wraps a scenario body: on failure, appends the fixture's request log (protocol routes), its
 * stats counters, its stderr tail (warnings), the page's errors, console and CDP failures. Also fails on any
 * unexpected `pageerror`.
 */
export async function scenario(ctx, body) {
  const { fixtures = [], pages = [] } = ctx;
  try {
    await body();
    for (const t of pages) {
      if (!t.allowPageErrors && t.pageErrors.length) {
        throw new E2EFailure({ message: `unexpected pageerror(s):\n${t.pageErrors.join('\n')}`, actual: t.pageErrors, expected: [], operator: 'pageerror' });
      }
    }
  } catch (err) {
    const extra = [];
    for (const fx of fixtures) {
      try {
        const s = await fx.stats();
        const log = (s.log ?? []).filter((e) => !e.path.startsWith('/__fixture'));
        extra.push(`fixture ${fx.api} requests ${JSON.stringify(s.requests)} bytes_received=${s.bytes_received}\n${formatLog(log)}`);
        const files = await fx.files();
        extra.push(`fixture files: ${JSON.stringify(files.map((f) => ({ name: f.name, size: f.size, sha256: f.sha256?.slice(0, 16), chunks: f.chunks })))}`);
      } catch (e) {
        extra.push(`fixture ${fx.api}: stats unavailable (${e.message})`);
      }
      // Its warnings (a refused or cut body says there how it arrived).
      if (fx.stderr) extra.push(`fixture ${fx.api} stderr tail:\n${fx.stderr.slice(-6000)}`);
    }
    for (const t of pages) {
      if (t.pageErrors.length) extra.push(`page errors:\n${t.pageErrors.join('\n')}`);
      if (t.loadingFailed.length) extra.push(`CDP loadingFailed:\n${t.loadingFailed.slice(-30).map((f) => `  ${f.method} ${f.url} ${f.errorText} ${f.corsErrorStatus ? JSON.stringify(f.corsErrorStatus) : ''}`).join('\n')}`);
      if (t.console.length) extra.push(`console (last 40):\n${t.console.slice(-40).join('\n')}`);
    }
    err.message = `${err.message}\n---- context ----\n${extra.join('\n')}`;
    throw err;
  }
}

/** assert.deepStrictEqual-like check with a named quantity, expected vs got in the message. */
export function expectEqual(got, expected, what, detail) {
  const a = JSON.stringify(got);
  const b = JSON.stringify(expected);
  if (a !== b) {
    throw new E2EFailure({ message: `${what}: expected ${b}, got ${a}${detail ? `\n${typeof detail === 'string' ? detail : JSON.stringify(detail, null, 1)}` : ''}`, actual: got, expected, operator: 'deepStrictEqual' });
  }
}
export function expectTrue(cond, what, detail) {
  if (!cond) throw new E2EFailure({ message: `${what}${detail ? `\n${typeof detail === 'string' ? detail : JSON.stringify(detail, null, 1)}` : ''}`, actual: false, expected: true, operator: '==' });
}

/**
 * Checks that every expected file ({ name, size, sha256 }) was assembled by the fixture with the
 * same digest, and (if a run is given) that the run reported it as succeeded.
 */
export async function expectStored(fx, expected, run) {
  const files = await fx.files();
  for (const e of expected) {
    const got = files.filter((f) => f.name === e.name && f.size === e.size);
    expectTrue(got.length >= 1, `file ${e.name} (${e.size} B) not assembled by the fixture`, { expected: e, fixtureFiles: files.map((f) => ({ name: f.name, size: f.size })), run: run && summarize(run) });
    expectEqual(got[got.length - 1].sha256, e.sha256, `sha256 of ${e.name} (${e.size} B)`);
  }
  if (run) {
    expectTrue(!run.rejected, `upload() rejected: ${JSON.stringify(run.rejected)}`, summarize(run));
    expectTrue(run.settled, 'upload() did not settle', summarize(run));
    const ok = (run.summary?.succeeded ?? []).map((f) => f.name).sort();
    expectEqual(ok, expected.map((e) => e.name).sort(), 'summary.succeeded', summarize(run));
    expectEqual((run.summary?.failed ?? []).length, 0, 'summary.failed count', summarize(run));
    expectEqual(run.counts?.fileSuccess ?? 0, expected.length, 'fileSuccess events', summarize(run));
    expectTrue((run.counts?.complete ?? 0) >= 1, 'a complete event was fired', summarize(run));
    expectTrue(Math.abs((run.progress ?? 0) - 1) < 1e-9, `progress() after success: expected 1, got ${run.progress}`);
    expectEqual(run.progressMonotonic, true, 'progress events never decrease', run.progressValues);
    expectTrue(run.progressValues?.length > 0, 'progress events were fired', summarize(run));
  }
}

/** A short view of a run record for messages. */
export function summarize(run) {
  if (!run) return run;
  const ev = run.events ?? [];
  return {
    settled: run.settled, ms: run.ms, constructError: run.constructError, addError: run.addError, rejected: run.rejected,
    summary: run.summary && { succeeded: run.summary.succeeded.map((f) => f.name), failed: run.summary.failed.map((f) => ({ name: f.name, error: f.error })), paused: (run.summary.paused ?? []).map((f) => f.name) },
    counts: run.counts,
    events: ev.length > 40 ? [...ev.slice(0, 20), `… ${ev.length - 40} more …`, ...ev.slice(-20)] : ev,
  };
}

/** Packs `pkg/` with `npm pack` into `dir`; returns the tarball path. */
export function npmPack(dir) {
  const out = execFileSync('npm', ['pack', PKG, '--pack-destination', dir, '--json'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const info = JSON.parse(out);
  return join(dir, info[0].filename);
}

/**
 * Logs the page into the API origin: a credentialed cross-origin request to `/login` (the
 * fixture answers with an HttpOnly SameSite=Lax session cookie). Returns the status.
 */
export async function login(t, fx) {
  return t.eval(async (url) => {
    let r = await fetch(url, { method: 'POST', credentials: 'include' });
    if (r.status === 405 || r.status === 404) r = await fetch(url, { credentials: 'include' });
    return r.status;
  }, fx.api + '/login');
}

/** Opens `pages/<page>` (default: the plain ES-module page) on the fixture's page origin and waits for the library. */
export async function openUploader(browser, fx, page = 'esm.html', { origin } = {}) {
  if (!pkgBuilt()) throw new Error(`the package is not built (${PKG}/resumable_wasm.js, ${PKG}/script/resumable-wasm.js): run \`make build\``);
  const t = await newPage(browser);
  const resp = await t.goto(`${origin ?? fx.page}/e2e/${page}`);
  if (!resp || resp.status() !== 200) throw new Error(`GET /e2e/${page} → ${resp && resp.status()}`);
  await t.eval(() => window.__e2e.rw().then(() => true));
  return t;
}

/** Expected number of chunks: Resumable/Flow planning rule (the last chunk absorbs the remainder unless forced). */
export function chunkCount(size, chunkSize, force = false) {
  return force ? Math.max(1, Math.ceil(size / chunkSize)) : Math.max(1, Math.floor(size / chunkSize));
}

/** The run's error for a file (from summary.failed, else the last fileError event). */
export function fileErrorOf(run, name) {
  const f = (run.summary?.failed ?? []).find((x) => !name || x.name === name);
  if (f?.error) return f.error;
  const ev = (run.events ?? []).filter((e) => e.name === 'fileError');
  return ev.length ? ev[ev.length - 1].error : undefined;
}

/** Polls run `id` in the page until `pred(snapshot)` holds. */
export async function untilRun(t, id, pred, what, timeoutMs = 20000) {
  const t0 = Date.now();
  for (;;) {
    const s = await t.eval((i) => window.__e2e.snapshot(i), id);
    if (pred(s)) return s;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${JSON.stringify(summarize(s))}`);
    await sleep(40);
  }
}

/** The page's count of /upload requests it started and that ended (pages/lib.js `E.net`). */
export function pageRequests(t) {
  return t.eval(() => ({ ...window.__e2e.net }));
}

/** Waits until every /upload request the page started has ended (answered, failed or aborted). */
export async function untilPageIdle(t, what, timeoutMs = 30000) {
  const t0 = Date.now();
  for (;;) {
    const n = await pageRequests(t);
    if (n.ended === n.started) return n;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${JSON.stringify(n)}`);
    await sleep(20);
  }
}

/**
 * How long a "nothing is sent" check watches. Not a duration the test asserts: the log records
 * a request on arrival and the page counts the requests it starts, so anything sent in the
 * window is seen; a longer window only sees more.
 */
export const QUIET_WINDOW_MS = 1000;

/**
 * Checks that nothing reaches `/upload` after the control that `what` names: the page starts no
 * /upload request (its `started` count stays `startedAt`) and the fixture logs no arrival after a
 * marker, over {@link QUIET_WINDOW_MS}. `only` narrows the fixture's entries (say, one file's);
 * `startedAt` null skips the page's count (other files go on).
 * Call it once the requests in flight at the control have ended (untilPageIdle, fx.untilServed).
 */
export async function expectNothingSent(t, fx, startedAt, what, { only = () => true } = {}) {
  const m = await fx.mark(what.replace(/\W+/g, '-'));
  await sleep(QUIET_WINDOW_MS);
  const after = (await requestsAfter(fx, m)).filter(only);
  expectEqual(after.length, 0, `requests that reached the fixture after ${what}`, formatLog(after));
  if (startedAt == null) return;
  const page = await pageRequests(t);
  expectEqual(page.started, startedAt, `/upload requests the page started after ${what} (started count)`, page);
}

/** /upload requests the fixture logged after marker `m` (see fx.mark). */
export async function requestsAfter(fx, m) {
  return (await fx.apiLog()).filter((e) => e.seq > m.seq);
}

/** Per-test time limit, so a hung browser or fixture fails the test instead of the whole run. */
export const TEST_TIMEOUT = Number(process.env.E2E_TEST_TIMEOUT_MS || 240000);

/** Request headers (lower-cased names) of the page's requests to `/upload` with `method`, from CDP. */
export function uploadRequestHeaders(t, method) {
  return [...t.requests.values()]
    .filter((r) => r.method === method && new URL(r.url).pathname === '/upload')
    .map((r) => Object.fromEntries(Object.entries(r.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])));
}

/** moto's server, installed by scripts/ensure-tools.sh into .tools/moto-venv. */
export const MOTO_BIN = process.env.MOTO_SERVER_BIN || join(ROOT, '.tools/moto-venv/bin/moto_server');

/** A free TCP port on 127.0.0.1 (bound and released; the caller binds it next). */
async function freePort() {
  const { createServer } = await import('node:net');
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolvePort(port));
    });
  });
}

/**
 * Starts moto's S3-compatible server (scripts/moto-server.py) on a free port of 127.0.0.1 and returns
 * { url, log(), requests(filter), stop() }. MOTO_DISABLE_GLOBAL_CORS makes it answer with the
 * bucket's own CORS rules (without it moto allows every origin, and no CORS test could fail).
 * `log()` is its request log (one `{ method, path, query, status }` per request, from the access
 * lines moto prints), so a test counts what reached the store: PUTs, OPTIONS, POSTs.
 */
export async function startStore() {
  if (!existsSync(MOTO_BIN)) throw new Error(`${MOTO_BIN} is missing: run scripts/ensure-tools.sh (make test does)`);
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    // Through scripts/moto-server.py (moto with the bucket's CORS rule applied to form POSTs,
    // as S3 does), run by the Python next to moto_server in its virtualenv.
    const proc = spawn(join(dirname(MOTO_BIN), 'python3'), [join(ROOT, 'scripts/moto-server.py'), '-H', '127.0.0.1', '-p', String(port)], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MOTO_DISABLE_GLOBAL_CORS: 'true' },
    });
    let out = '';
    const lines = [];
    const formPosts = [];
    const onData = (d) => {
      out = (out + d).slice(-20000);
      // Werkzeug colours some status lines (a 204 to a form POST) with ANSI escapes: drop them.
      for (const l of String(d).replace(/\x1b\[[0-9;]*m/g, '').split('\n')) {
        // 127.0.0.1 - - [07/Dec/2026 16:30:36] "PUT /bucket/key?partNumber=1&uploadId=… HTTP/1.1" 200 -
        const m = /"([A-Z]+) ([^ ?"]*)(?:\?([^ "]*))? HTTP\/[0-9.]+" (\d{3})/.exec(l);
        if (m) lines.push({ method: m[1], path: m[2], query: m[3] ?? '', status: Number(m[4]) });
        // scripts/moto-server.py's line for a form upload: the object key its request line lacks.
        const f = /^form-post (\S+) (.+)$/.exec(l.trim());
        if (f) formPosts.push({ status: Number(f[1]), key: f[2] });
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    const url = `http://127.0.0.1:${port}`;
    let up = false;
    for (let i = 0; i < 150 && proc.exitCode === null; i++) {
      try { await fetch(`${url}/moto-api/`); up = true; break; } catch { await sleep(100); }
    }
    if (!up) {
      proc.kill('SIGKILL');
      // Another process may have taken the port between freePort() and moto's bind: try again.
      if (attempt < 2) continue;
      throw new Error(`moto_server did not start on ${url}:\n${out}`);
    }
    const store = {
      proc,
      url,
      /** Every request the store logged, oldest first. */
      log: () => lines.slice(),
      /** The logged requests to `bucket` (its objects and sub-resources), excluding moto's own API. */
      requests: (bucket) => lines.filter((e) => e.path === `/${bucket}` || e.path.startsWith(`/${bucket}/`)),
      /** Every form upload (POST Object) the store got, oldest first: { status, key }. */
      formPosts: () => formPosts.slice(),
      /** Forgets the log so far (the next count starts from zero). */
      clearLog: () => { lines.length = 0; formPosts.length = 0; },
      get output() { return out; },
      async stop() {
        liveFixtures.delete(store);
        if (proc.exitCode === null) {
          proc.kill('SIGTERM');
          await Promise.race([new Promise((r) => proc.once('exit', r)), sleep(3000)]);
          if (proc.exitCode === null) proc.kill('SIGKILL');
        }
      },
    };
    liveFixtures.add(store);
    return store;
  }
}
