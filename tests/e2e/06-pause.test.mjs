// §6 Pause / resume / cancel: after pause no new request reaches the fixture for 2 s; resume
// completes byte-identical; cancel leaves nothing in flight and the promise settles.
import { test, describe, before, after } from 'node:test';
import { startFixture, launchBrowser, openUploader, makeFile, startRun, waitRun, callRun, untilRun, requestsAfter, scenario, expectEqual, expectTrue, summarize, sleep, KiB, TEST_TIMEOUT } from './harness.mjs';
import { expectPauseThenResume } from './scenarios.mjs';

let browser, fx;
before(async () => { [browser, fx] = await Promise.all([launchBrowser(), startFixture({ flags: { 'delay-ms': 150 } })]); });
after(async () => { await browser?.close(); await fx?.stop(); });

const CS = 32 * KiB;

/** CDP bookkeeping of /upload requests that started but neither finished nor failed. */
function trackInFlight(t) {
  const open = new Map();
  t.cdp.on('Network.requestWillBeSent', (e) => { if (e.request.url.includes('/upload')) open.set(e.requestId, `${e.request.method} ${e.request.url}`); });
  t.cdp.on('Network.loadingFinished', (e) => open.delete(e.requestId));
  t.cdp.on('Network.loadingFailed', (e) => open.delete(e.requestId));
  return open;
}

describe('§6 pause / resume / cancel', () => {
  test('§6 pause: no request for 2 s; resume completes byte-identical', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, () => expectPauseThenResume(t, fx, { chunkSize: CS }));
    await t.close();
  });

  test('§6 cancel: nothing left in flight, the promise settles, no later requests', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    const open = trackInFlight(t);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      const f = await makeFile(t, 'cancel.bin', 20 * CS, 22);
      await startRun(t, 'c', { target: fx.target(), chunkSize: CS, simultaneousUploads: 3 }, [f.name]);
      await untilRun(t, 'c', (s) => (s.counts.chunkSuccess ?? 0) >= 2, '2 chunks');
      await callRun(t, 'c', 'cancel');
      const run = await waitRun(t, 'c', 5000);
      expectTrue(run.settled, 'upload() settled within 5 s of cancel()', summarize(run));
      expectEqual(run.counts.cancel ?? 0, 1, 'cancel events', summarize(run));
      expectTrue(run.uploading === false, `isUploading() after cancel: ${run.uploading}`);
      expectEqual(Array.isArray(run.files) ? run.files.map((x) => x.status) : run.files, ['cancelled'], 'file statuses after cancel (up.files)', run.files);
      await sleep(300);
      expectEqual([...open.values()], [], 'requests still in flight (CDP) after cancel');
      const m = await fx.mark('cancelled');
      await sleep(1000);
      expectEqual((await requestsAfter(fx, m)).length, 0, 'requests after cancel');
      expectEqual((await fx.files()).length, 0, 'files assembled after cancel');
    });
    await t.close();
  });
});
