// §7 Resume after reload: upload part of a file, reload the page, add the same file again → only
// the missing chunks are POSTed (counted on the fixture), the result is byte-identical.
import { test, describe, before, after } from 'node:test';
import { startFixture, launchBrowser, openUploader, makeFile, startRun, runUpload, untilRun, scenario, expectEqual, expectTrue, expectStored, summarize, KiB, TEST_TIMEOUT } from './harness.mjs';

let browser, fx;
before(async () => { [browser, fx] = await Promise.all([launchBrowser(), startFixture({ flags: { 'delay-ms': 120 } })]); });
after(async () => { await browser?.close(); await fx?.stop(); });

const CS = 64 * KiB;
const N = 12;

describe('§7 resume after reload', () => {
  for (const testChunks of ['auto', true]) {
    test(`§7 reload mid-upload, re-add the same file (testChunks ${testChunks}): only missing chunks are POSTed`, { timeout: TEST_TIMEOUT }, async () => {
      const t = await openUploader(browser, fx);
      await scenario({ fixtures: [fx], pages: [t] }, async () => {
        await fx.reset();
        const opts = { target: fx.target(), chunkSize: CS, simultaneousUploads: 2, testChunks };
        const f = await makeFile(t, `reload-${testChunks}.bin`, N * CS + 17, 31);
        await startRun(t, 'a', opts, [f.name]);
        await untilRun(t, 'a', (s) => (s.counts.chunkSuccess ?? 0) >= 4, '4 chunks');
        await t.page.reload({ waitUntil: 'load' });
        await t.eval(() => window.__e2e.rw().then(() => true));
        // The requests the reload cut end on the fixture (logged on arrival, `in_flight` until then).
        const before = await fx.untilServed();
        const stored = new Set(before.filter((e) => e.method === 'POST' && e.status === 200).map((e) => e.chunk));
        expectTrue(stored.size >= 4 && stored.size < N, `chunks stored before the reload: ${[...stored]}`);
        const maxSeq = Math.max(...before.map((e) => e.seq));
        const f2 = await makeFile(t, f.name, f.size, 31);
        expectEqual(f2.sha256, f.sha256, 'the regenerated file is the same');
        const run = await runUpload(t, opts, [f.name], { timeoutMs: 30000 });
        await expectStored(fx, [f], run);
        const after = (await fx.apiLog()).filter((e) => e.seq > maxSeq && e.method === 'POST');
        const missing = [...Array(N).keys()].map((i) => i + 1).filter((c) => !stored.has(c));
        expectEqual(after.map((e) => e.chunk).sort((a, b) => a - b), missing, 'chunks POSTed after the reload', summarize(run));
      });
      await t.close();
    });
  }
});
