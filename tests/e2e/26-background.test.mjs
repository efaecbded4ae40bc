// §26 `background`: upload() hands a file's chunks to a Background Fetch job run by the app's
// service worker (tests/e2e/pages/bg-sw.js, which includes the package's sw.js), and the page
// may go at once: the fixture assembles the file with no page open, with 0 OPTIONS; the job
// survives a browser restart on the same profile; the next page sees the file as `success`
// (pending(), then re-adding it sends nothing); chunks the server failed are sent again by the
// worker part with no page open, until the file is whole; the script-tag build loads the page
// part (background.js) from beside itself, and a page without the option never loads it.
import { test, describe, before, after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import {
  E2E, CHROMIUM, chromiumArgs, startFixture, launchBrowser, makeFile, expectEqual, expectTrue, countBy, formatLog, MiB, TEST_TIMEOUT,
} from './harness.mjs';

let fx;
const dirs = [];
before(async () => { fx = await startFixture(); });
after(async () => {
  await fx?.stop();
  for (const d of dirs) { try { rmSync(d, { recursive: true, force: true }); } catch { /* a browser still writing */ } }
});

/**
 * Chromium with the uploader page open and the app's service worker registered and in control:
 * on a persistent profile (`--user-data-dir`, so that a relaunch on it is a browser restart that
 * keeps its service worker, jobs and IndexedDB) when `dir` is given, else in a fresh browser's
 * context. (With no page left, a persistent profile's headless browser starts no job; a browser's
 * own context does, as a desktop browser with no tab of the site does.)
 */
async function openProfile(dir, { page = true, fixture = fx, door = 'esm' } = {}) {
  const browser = dir ? null : await launchBrowser();
  const context = dir
    ? await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, args: chromiumArgs })
    : await browser.newContext();
  await context.addInitScript({ path: join(E2E, 'pages/lib.js') });
  const t = { context, pageErrors: [], console: [], close: () => (browser ?? context).close() };
  if (!page) return t;
  t.page = context.pages()[0] ?? (await context.newPage());
  t.page.on('pageerror', (e) => t.pageErrors.push(String(e && e.stack ? e.stack : e)));
  t.page.on('console', (m) => t.console.push(`[${m.type()}] ${m.text()}`));
  t.eval = (fn, arg) => t.page.evaluate(fn, arg);
  t.requests = [];
  t.page.on('request', (r) => t.requests.push(new URL(r.url()).pathname));
  if (door === 'script') {
    // The script-tag door: a page with only the classic script (its page part is loaded from
    // beside it).
    await t.page.goto(`${fixture.page}/e2e/blank.html`, { waitUntil: 'load' });
    await t.eval(() => new Promise((ok, no) => {
      const s = Object.assign(document.createElement('script'), { src: '/pkg/script/resumable-wasm.js', onload: ok, onerror: no });
      document.head.append(s);
    }));
  } else await t.page.goto(`${fixture.page}/e2e/esm.html`, { waitUntil: 'load' });
  await t.eval(async () => {
    await window.__e2e.rw();
    await navigator.serviceWorker.register('/bg-sw.js');
    await navigator.serviceWorker.ready;
  });
  return t;
}

const newProfile = () => {
  const dir = mkdtempSync(join(tmpdir(), 'rw-bg-profile-'));
  dirs.push(dir);
  return dir;
};

const options = (extra = {}, fixture = fx) => ({ target: fixture.target(), chunkSize: MiB, persist: true, background: true, ...extra });

/** In the page: upload() of file `name` with `opts`; what it resolved with and the events of the page glue. */
function handOver(t, opts, name) {
  return t.eval(async ([o, n]) => {
    const { Uploader } = await window.__e2e.rw();
    const up = new Uploader(o);
    const seen = [];
    up.on('backgroundWarning', (w) => seen.push(['backgroundWarning', w.kind, w.reason]));
    up.on('backgroundProgress', (p) => seen.push(['backgroundProgress', p.identifier, p.uploadTotal]));
    await up.addFile(window.__e2e.files[n]);
    const summary = await up.upload();
    return { background: summary.background, succeeded: summary.succeeded.length, failed: summary.failed.length, seen, files: up.files.length };
  }, [opts, name]);
}

/** Waits (polling the fixture, no page needed) until it assembled `f`; returns its stored copy. */
async function assembled(f, ms = 180000, fixture = fx) {
  const end = Date.now() + ms;
  for (;;) {
    const got = (await fixture.files()).filter((s) => s.name === f.name && s.size === f.size);
    if (got.length) return got[got.length - 1];
    if (Date.now() > end) {
      const log = await fixture.apiLog();
      throw new Error(`the fixture did not assemble ${f.name} (${f.size} B) within ${ms} ms\n${formatLog(log)}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Opens the uploader page in `t`'s browser (one launched with no page) and points `t.eval` at it. */
async function openPage(t, fixture = fx) {
  const page = await t.context.newPage();
  t.page = page;
  t.eval = (fn, arg) => page.evaluate(fn, arg);
  await page.goto(`${fixture.page}/e2e/esm.html`, { waitUntil: 'load' });
}

/** In a page of the profile: pending() under `opts`, as [identifier, status, confirmed]. */
const pendingOf = (t, opts) => t.eval(async (o) => {
  const { Uploader } = await window.__e2e.rw();
  const up = new Uploader(o);
  return (await up.pending()).map((p) => [p.name, p.status, p.confirmed]);
}, opts);

/** Waits until the worker part wrote the job's outcomes into the record (the job ends after the last answer). */
async function pendingUntil(t, opts, want, ms = 60000) {
  const end = Date.now() + ms;
  let got;
  while (Date.now() < end) {
    got = await pendingOf(t, opts);
    if (JSON.stringify(got) === JSON.stringify(want)) return got;
    await new Promise((r) => setTimeout(r, 300));
  }
  expectEqual(got, want, 'pending() once the job ended');
  return got;
}

describe('§26 background (Background Fetch)', () => {
  test('§26 32 MiB with background, the page closed at once: assembled byte-identical with no page open, 0 OPTIONS; the next page sees success and sends nothing', { timeout: TEST_TIMEOUT }, async () => {
    await fx.reset();
    const t = await openProfile();
    const opts = options();
    const f = await makeFile(t, 'bg-32m.bin', 32 * MiB, 81);
    const r = await handOver(t, opts, f.name);
    expectEqual([r.background, r.files, r.failed], [1, 0, 0], 'upload(): one file handed over, none left in the page', r);
    expectTrue(r.seen.some((e) => e[0] === 'backgroundProgress' && e[2] > 32 * MiB), 'a backgroundProgress event with uploadTotal (bodies) above the file size', r.seen);
    expectEqual(r.seen.filter((e) => e[0] === 'backgroundWarning'), [], 'no fallback warning', r.seen);
    await t.page.close();
    const stored = await assembled(f);
    expectEqual(stored.sha256, f.sha256, 'sha256 of the file assembled with no page open');
    const log = await fx.apiLog();
    const c = countBy(log);
    expectEqual([c.OPTIONS ?? 0, c.GET ?? 0], [0, 0], 'OPTIONS and probes of the job', formatLog(log));
    const chunks = [...new Set(log.filter((e) => e.method === 'POST').map((e) => e.chunk))].length;
    expectEqual(chunks, 32, 'chunks POSTed', formatLog(log));
    // The next page (a reopened one on the same profile).
    await openPage(t);
    await pendingUntil(t, opts, [[f.name, 'success', 32 * MiB]]);
    const before = (await fx.apiLog()).length;
    const again = await t.eval(async ([o, n, size]) => {
      const { Uploader } = await window.__e2e.rw();
      const up = new Uploader(o);
      const file = window.__e2e.makeFile(n, size, 81);
      const added = await up.addFile(file);
      const summary = await up.upload();
      return { status: added && added.status, succeeded: summary.succeeded.length, pending: (await up.pending()).length };
    }, [opts, f.name, f.size]);
    expectEqual(again, { status: 'success', succeeded: 1, pending: 0 }, 'the same file re-added: success at once, record gone');
    expectEqual((await fx.apiLog()).slice(before), [], 'requests after the job', formatLog(await fx.apiLog()));
    await t.close();
  });

  test('§26 the script-tag build with background: its page part is loaded from beside the script, the job assembles the file with the page closed; a page without the option never loads it', { timeout: TEST_TIMEOUT }, async () => {
    await fx.reset();
    const t = await openProfile(undefined, { door: 'script' });
    expectEqual(t.requests.filter((p) => p.endsWith('/background.js')), [], 'page part requests before any background upload');
    const opts = options();
    const f = await makeFile(t, 'bg-script.bin', 4 * MiB, 84);
    const r = await handOver(t, opts, f.name);
    expectEqual([r.background, r.files, r.failed], [1, 0, 0], 'upload(): one file handed over', r);
    expectEqual(t.requests.filter((p) => p.endsWith('/background.js')), ['/pkg/script/background.js'], 'the page part, from beside the script');
    await t.page.close();
    const stored = await assembled(f);
    expectEqual(stored.sha256, f.sha256, 'sha256 of the file assembled with no page open');
    expectEqual(countBy(await fx.apiLog()).OPTIONS ?? 0, 0, 'OPTIONS');
    // The ES-module door without the option: an upload in the page, no page part.
    const other = await openProfile();
    const g = await makeFile(other, 'no-bg.bin', 100, 85);
    const done = await other.eval(async ([o, n]) => {
      const { Uploader } = await window.__e2e.rw();
      const up = new Uploader(o);
      await up.addFile(window.__e2e.files[n]);
      return (await up.upload()).succeeded.length;
    }, [{ target: fx.target(), persist: true }, g.name]);
    expectEqual(done, 1, 'in-page upload without background');
    expectEqual(other.requests.filter((p) => p.endsWith('/background.js')), [], 'page part requests without background');
    await other.close();
    await t.close();
  });

  test('§26 the browser restarted mid-job (same profile, no page opened): the job completes; a page then shows the file as success', { timeout: TEST_TIMEOUT }, async () => {
    await fx.reset();
    // Slow answers: the restart lands while the job is still sending.
    await fx.config({ delay_ms: 300 });
    // A failed assertion must not leave a persistent-profile browser open (node would wait on it).
    let t;
    try {
      const dir = newProfile();
      t = await openProfile(dir);
      const opts = options();
      const f = await makeFile(t, 'bg-restart.bin', 32 * MiB, 82);
      const r = await handOver(t, opts, f.name);
      expectEqual(r.background, 1, 'handed over', r);
      // Wait for the first answers, then close the whole browser.
      for (let i = 0; i < 100 && !(await fx.apiLog()).some((e) => e.method === 'POST'); i++) await new Promise((res) => setTimeout(res, 100));
      await t.close();
      const sentBefore = (await fx.apiLog()).filter((e) => e.method === 'POST').length;
      expectTrue(sentBefore < 32, `the restart came mid-job (${sentBefore} of 32 POSTs answered)`);
      t = await openProfile(dir, { page: false });
      const stored = await assembled(f);
      expectEqual(stored.sha256, f.sha256, 'sha256 after the restart');
      // The fixture assembles on the last chunk's arrival, before the browser has its answer and
      // the worker part has written the outcomes: this browser stays open (a page opened in it)
      // until the record says success, so the next restart cannot cut that write short.
      await openPage(t);
      await pendingUntil(t, opts, [[f.name, 'success', 32 * MiB]]);
      await t.close();
      const posts = (await fx.apiLog()).filter((e) => e.method === 'POST').length;
      t = await openProfile(dir);
      expectEqual(await pendingOf(t, opts), [[f.name, 'success', 32 * MiB]], 'pending() after a second restart: the outcome was kept');
      const c = countBy(await fx.apiLog());
      expectEqual([c.OPTIONS ?? 0, c.POST], [0, posts], 'OPTIONS, and POSTs (none after the job)');
      await t.close();
    } finally {
      await t?.close().catch(() => {});
      await fx.config({ delay_ms: 0 });
    }
  });

  test('§26 a fixture with --fail-rate on chunk POSTs, the page closed at once: every failed chunk is sent again by the worker part and accepted, the file identical, 0 OPTIONS', { timeout: TEST_TIMEOUT }, async () => {
    const fxf = await startFixture({ flags: { 'fail-rate': 0.25, seed: 7 } });
    try {
      const t = await openProfile(undefined, { fixture: fxf });
      const opts = options({ chunkSize: 512 * 1024, chunkRetryInterval: 200 }, fxf);
      const f = await makeFile(t, 'bg-fail.bin', 8 * MiB, 83);
      const r = await handOver(t, opts, f.name);
      expectEqual(r.background, 1, 'handed over', r);
      await t.page.close();
      const stored = await assembled(f, 180000, fxf);
      expectEqual(stored.sha256, f.sha256, 'sha256 with failures');
      const log = await fxf.apiLog();
      const posts = log.filter((e) => e.method === 'POST');
      // A failed POST's chunk is not logged (the fixture answers before it reads the body):
      // every chunk was accepted once, after as many failures as there were retries.
      const failed = posts.filter((e) => e.status === 503).length;
      expectTrue(failed > 0, 'some chunk POSTs failed', formatLog(log));
      const accepted = posts.filter((e) => e.status === 200).map((e) => e.chunk).sort((a, b) => a - b);
      expectEqual(accepted, [...Array(16).keys()].map((i) => i + 1), 'each chunk accepted once', formatLog(log));
      expectEqual(posts.length, 16 + failed, 'POSTs: one per chunk plus one per failure (each failed chunk sent again)', formatLog(log));
      expectEqual(countBy(log).OPTIONS ?? 0, 0, 'OPTIONS', formatLog(log));
      await openPage(t, fxf);
      await pendingUntil(t, opts, [[f.name, 'success', 8 * MiB]]);
      await t.close();
    } finally {
      await fxf.stop();
    }
  });
});
