// §4 Every CORS misconfiguration: the file fails with kind `cors`, the hint names the right fix,
// Chromium (CDP Network.loadingFailed corsErrorStatus) agrees on the cause, the failing request
// is not retried (at most 2 attempts of its chunk: a probe that passed, then the blocked request),
// and the number of requests is bounded. The same misconfiguration on a same-origin page
// (--api-on-page) uploads, with no OPTIONS.
import { test, describe, before, after } from 'node:test';
import { startFixture, launchBrowser, openUploader, makeFile, runUpload, startRun, waitRun, untilRun, scenario, expectEqual, expectTrue, fileErrorOf, countBy, summarize, sleep, KiB, TEST_TIMEOUT } from './harness.mjs';
import { corsCases, expectCorsFailure } from './scenarios.mjs';

let browser, fx;
// Restores strict CORS with the fixture's initial allowlist (the page origin). An empty
// allow_origins set at run time means "no origin", so it is read once, not assumed.
const restore = { cors: 'strict' };
before(async () => {
  [browser, fx] = await Promise.all([launchBrowser(), startFixture({ flags: { 'api-on-page': true, 'max-age': 600 } })]);
  restore.allow_origins = (await fx.config()).allow_origins;
});
after(async () => { await browser?.close(); await fx?.stop(); });

const CS = 32 * KiB;
const base = { chunkSize: CS };
const cases = corsCases;

describe('§4 CORS misconfigurations', () => {
  for (const c of cases) {
    test(`§4 cors ${c.name}: kind cors, hint names the fix, bounded requests`, { timeout: TEST_TIMEOUT }, async (tc) => {
      const t = await openUploader(browser, fx);
      await scenario({ fixtures: [fx], pages: [t] }, async () => {
        const { err, run, log } = await expectCorsFailure(t, fx, c, restore, { chunkSize: CS });
        // Chromium's own view of why the request was blocked.
        const reasons = [...new Set(t.corsErrors())];
        expectTrue(reasons.length > 0 && reasons.every((r) => c.cdp.includes(r)), `CDP corsErrorStatus: expected only ${JSON.stringify(c.cdp)}, got ${JSON.stringify(reasons)}`);
        tc.diagnostic(`phase=${err?.phase} attempts=${err?.attempts} requests=${JSON.stringify(countBy(log))} in ${run.ms} ms cdp=${reasons} hint=${err?.hint}`);
      });
      await t.close();
    });
  }

  test('§4 blocked simple POSTs may be stored: after the CORS fix, upload() again sends only the missing chunks', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      try {
        // CORS breaks mid-upload (testChunks 'auto': chunk 1 was probed under a working config).
        await fx.config({ ...restore, delay_ms: 80 });
        const f = await makeFile(t, 'cors-fixed.bin', 12 * CS + 5, 13);
        await startRun(t, 'fix', { target: fx.target(), chunkSize: CS }, [f.name]);
        await untilRun(t, 'fix', (x) => (x.counts.chunkSuccess ?? 0) >= 2, '2 chunks');
        // Flip while the fixture serves a chunk POST (the log shows it on arrival): that POST is
        // stored, and its answer goes out without CORS headers.
        for (let i = 0; !(await fx.apiLog()).some((e) => e.method === 'POST' && e.in_flight); i++) {
          expectTrue(i < 3000, 'a chunk POST being served, to break CORS under it');
          await sleep(5);
        }
        await fx.config({ cors: 'none', delay_ms: 0 });
        const first = await waitRun(t, 'fix', 60000);
        expectEqual(fileErrorOf(first, f.name)?.kind, 'cors', 'error kind once CORS is off', summarize(first));
        const before = await fx.apiLog();
        const kept = new Set(before.filter((e) => e.method === 'POST' && e.status === 200).map((e) => e.chunk));
        const confirmed = new Set(first.events.filter((e) => e.name === 'chunkSuccess').map((e) => e.chunk));
        expectTrue(kept.size > confirmed.size, `some blocked POSTs were stored anyway: stored ${[...kept]}, confirmed ${[...confirmed]}`);
        const maxSeq = Math.max(...before.map((e) => e.seq));
        await fx.config(restore);
        // Same Uploader: upload() again retries the failed file.
        await t.eval(() => {
          const r = window.__e2e.runs.fix;
          r.settled = false;
          r.promise = r.up.upload().then(
            (s) => { r.summary = { succeeded: s.succeeded.map(window.__e2e.file), failed: s.failed.map(window.__e2e.file) }; },
            (e) => { r.rejected = window.__e2e.err(e); },
          ).finally(() => { r.settled = true; });
        });
        const run = await waitRun(t, 'fix', 60000);
        const stored = (await fx.files()).find((x) => x.name === f.name);
        expectEqual(stored?.sha256, f.sha256, 'sha256 after the CORS fix', summarize(run));
        const after = (await fx.apiLog()).filter((e) => e.seq > maxSeq);
        const resent = after.filter((e) => e.method === 'POST').map((e) => e.chunk).sort((a, b) => a - b);
        // What the server lacked after the fix is what its probes answered absent: a POST that
        // the client aborted when the verdict came may still have been stored (its log entry has
        // no status), and a probe then finds it present.
        const absent = after.filter((e) => e.method === 'GET' && e.status === 204).map((e) => e.chunk).sort((a, b) => a - b);
        expectEqual(resent, absent, 'chunks POSTed after the fix: exactly those the probes found absent, each once');
        const resentKept = resent.filter((c) => kept.has(c));
        expectEqual(resentKept, [], 'chunks the server answered 200 before the fix and that were sent again');
      } finally {
        await fx.config({ ...restore, delay_ms: 0 });
      }
    });
    await t.close();
  });

  // README, Preflight rules: "same-origin target: never (preflighted)". Same-origin requests are
  // not subject to CORS, so none of the misconfigurations may fail them or cost an OPTIONS.
  test('§4 same-origin page (--api-on-page): every misconfiguration uploads, with 0 OPTIONS', { timeout: TEST_TIMEOUT }, async (tc) => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      const outcomes = [];
      try {
        for (const c of cases) {
          await fx.reset();
          await fx.config({ ...restore, ...c.patch });
          const f = await makeFile(t, `same-${c.name.replace(/\W+/g, '-')}.bin`, 2 * CS + 3, 11);
          const run = await runUpload(t, { target: fx.page + '/upload', ...base, ...c.opts }, [f.name], { timeoutMs: 60000 });
          const err = fileErrorOf(run, f.name);
          const ok = (run.summary?.succeeded ?? []).some((x) => x.name === f.name);
          const stored = (await fx.files()).find((x) => x.name === f.name);
          const counts = countBy(await fx.apiLog());
          outcomes.push({ mode: c.name, ok, kind: err?.kind, status: err?.status, stored: stored?.sha256 === f.sha256, OPTIONS: counts.OPTIONS ?? 0, POST: counts.POST ?? 0 });
        }
      } finally {
        await fx.config(restore);
      }
      tc.diagnostic(JSON.stringify(outcomes));
      const expected = cases.map((c) => ({ mode: c.name, ok: true, stored: true, OPTIONS: 0 }));
      expectEqual(outcomes.map(({ mode, ok, stored, OPTIONS }) => ({ mode, ok, stored, OPTIONS })), expected, 'same-origin uploads under every CORS misconfiguration: uploaded byte-identical, never preflighted', outcomes);
    });
    await t.close();
  });
});
