// §6 Pause / resume / cancel: once the requests in flight at the pause end, nothing more is
// sent; resume completes byte-identical; cancel aborts what is in flight, settles the promise,
// leaves the file `cancelled` without an error, and nothing more is sent.
import { test, describe, before, after } from 'node:test';
import { startFixture, launchBrowser, openUploader, makeFile, startRun, waitRun, untilRun, untilPageIdle, expectNothingSent, scenario, expectEqual, expectTrue, formatLog, summarize, sleep, KiB, TEST_TIMEOUT } from './harness.mjs';
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
  test('§6 pause: nothing sent while paused; resume completes byte-identical', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, () => expectPauseThenResume(t, fx, { chunkSize: CS }));
    await t.close();
  });

  test('§6 cancel: requests in flight aborted, the promise settles, the file cancelled without an error, no later requests', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    const open = trackInFlight(t);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      const f = await makeFile(t, 'cancel.bin', 20 * CS, 22);
      await startRun(t, 'c', { target: fx.target(), chunkSize: CS, simultaneousUploads: 3 }, [f.name]);
      await untilRun(t, 'c', (s) => (s.counts.chunkSuccess ?? 0) >= 2, '2 chunks');
      // Cancel, and read in the same turn how many of the page's requests were in flight.
      const atCancel = await t.eval(() => {
        window.__e2e.runs.c.up.cancel();
        const n = window.__e2e.net;
        return { started: n.started, inFlight: n.started - n.ended };
      });
      expectTrue(atCancel.inFlight >= 1, `requests in flight when cancel() ran: ${atCancel.inFlight}`);
      const run = await waitRun(t, 'c', 60000);
      expectTrue(run.settled, 'upload() settled after cancel()', summarize(run));
      expectEqual(run.counts.cancel ?? 0, 1, 'cancel events', summarize(run));
      expectTrue(run.uploading === false, `isUploading() after cancel: ${run.uploading}`);
      expectEqual(Array.isArray(run.files) ? run.files.map((x) => x.status) : run.files, ['cancelled'], 'file statuses after cancel (up.files)', run.files);
      // A cancelled file is not an error (README, Errors): no `error`, no fileError/error event.
      expectEqual(run.files.map((x) => x.error ?? null), [null], 'error of the cancelled file (up.files)', run.files);
      expectEqual(run.summary.failed.map((x) => [x.status, x.error ?? null]), [['cancelled', null]], 'summary.failed: cancelled, without an error', summarize(run));
      expectEqual([run.counts.fileError ?? 0, run.counts.error ?? 0], [0, 0], 'fileError / error events for a cancelled file', summarize(run));
      // cancel() aborts what was in flight: the page's requests end without waiting for answers,
      // and the fixture saw those that had reached it end unanswered (status null).
      await untilPageIdle(t, 'the requests in flight at cancel() to end');
      for (let i = 0; open.size > 0; i++) {
        if (i > 1500) expectEqual([...open.values()], [], 'requests still in flight (CDP) after cancel');
        await sleep(20);
      }
      const served = await fx.untilServed();
      const cut = served.filter((e) => e.status === null);
      expectTrue(cut.length >= 1 && cut.length <= atCancel.inFlight, `requests cut by cancel() (no status on the fixture): ${cut.length} of ${atCancel.inFlight} in flight`, formatLog(served));
      await expectNothingSent(t, fx, atCancel.started, 'cancel()');
      expectEqual((await fx.files()).length, 0, 'files assembled after cancel');
    });
    await t.close();
  });
});
