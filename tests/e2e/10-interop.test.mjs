// §10 Interoperability: the real resumablejs@1.1.0 and @flowjs/flow.js@2.14.1 from npm upload
// through Chromium into server-fixture, cross-origin (localhost:A → localhost:B) with credentials
// (the fixture requires the session cookie), byte-identical.
import { test, describe, before, after } from 'node:test';
import { startFixture, launchBrowser, newPage, makeFile, scenario, expectEqual, expectTrue, expectStored, login, countBy, chunkCount, KiB, MiB, TEST_TIMEOUT } from './harness.mjs';

let browser, fx;
before(async () => {
  [browser, fx] = await Promise.all([launchBrowser(), startFixture({ flags: { 'require-session': true } })]);
});
after(async () => { await browser?.close(); await fx?.stop(); });

/** Runs one of the reference clients in the page on E.files[name]; resolves with its outcome. */
function runReference(t, lib, opts, name) {
  return t.eval(([libName, o, n]) => new Promise((resolve) => {
    const file = window.__e2e.files[n];
    const events = [];
    const done = (ok, extra) => resolve({ ok, events, ...extra });
    const timer = setTimeout(() => done(false, { timeout: true }), 60000);
    if (libName === 'resumable') {
      const r = new window.Resumable(o);
      if (!r.support) return done(false, { error: 'Resumable.support is false' });
      r.on('filesAdded', () => { events.push('filesAdded'); r.upload(); });
      r.on('fileRetry', () => events.push('fileRetry'));
      r.on('fileError', (f, m) => { clearTimeout(timer); done(false, { error: `fileError: ${m}` }); });
      r.on('fileSuccess', (f, m) => { events.push('fileSuccess'); });
      r.on('complete', () => { clearTimeout(timer); done(events.includes('fileSuccess'), {}); });
      r.addFile(file);
    } else {
      const f = new window.Flow(o);
      if (!f.support) return done(false, { error: 'Flow.support is false' });
      f.on('fileRetry', () => events.push('fileRetry'));
      f.on('fileError', (_f, m) => { clearTimeout(timer); done(false, { error: `fileError: ${m}` }); });
      f.on('fileSuccess', () => events.push('fileSuccess'));
      f.on('complete', () => { clearTimeout(timer); done(events.includes('fileSuccess'), {}); });
      f.addFile(file);
      f.upload();
    }
  }), [lib, opts, name]);
}

const cases = [
  { lib: 'resumable', page: 'resumable.html', method: 'multipart', size: 1 * MiB + 12345, type: '' },
  { lib: 'resumable', page: 'resumable.html', method: 'octet', size: 700 * KiB + 3, type: '' },
  { lib: 'flow', page: 'flow.html', method: 'multipart', size: 1 * MiB + 12345, type: 'image/png' },
  { lib: 'flow', page: 'flow.html', method: 'octet', size: 700 * KiB + 3, type: '' },
];

describe('§10 interoperability', () => {
  for (const c of cases) {
    test(`§10 ${c.lib === 'resumable' ? 'resumablejs@1.1.0' : '@flowjs/flow.js@2.14.1'} ${c.method}: cross-origin with credentials, byte-identical`, { timeout: TEST_TIMEOUT }, async (tc) => {
      const t = await newPage(browser);
      await scenario({ fixtures: [fx], pages: [t] }, async () => {
        await fx.reset();
        await t.goto(`${fx.page}/e2e/${c.page}`);
        expectEqual(await login(t, fx), 200, 'status of the credentialed /login');
        const name = `${c.lib}-${c.method}.bin`;
        const f = await makeFile(t, name, c.size, c.size % 1000, c.type);
        const opts = { target: fx.target(), chunkSize: 256 * KiB, simultaneousUploads: 3, withCredentials: true, method: c.method, testChunks: true, maxChunkRetries: 3 };
        const r = await runReference(t, c.lib, opts, name);
        expectTrue(r.ok, `${c.lib} did not finish: ${JSON.stringify(r)}`);
        await expectStored(fx, [f]);
        const log = await fx.apiLog();
        tc.diagnostic(`requests to /upload: ${JSON.stringify(countBy(log))}`);
        const bad = log.filter((e) => e.method !== 'OPTIONS' && ![200, 204].includes(e.status));
        expectEqual(bad.map((e) => `${e.method} ${e.status} chunk=${e.chunk}`), [], 'requests answered other than 200/204');
        // Each chunk POSTed once: no answer was an error, so nothing was retried or duplicated.
        expectEqual(log.filter((e) => e.method === 'POST').length, chunkCount(c.size, 256 * KiB), 'number of chunk POSTs', countBy(log));
      });
      await t.close();
    });
  }
});
