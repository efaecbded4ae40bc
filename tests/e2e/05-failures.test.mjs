// §5 Other failures: closed port → network; stall → timeout, then success once the stall
// clears; offline (CDP network emulation) → the queue waits and finishes once back online;
// 20 % injected 503s → completes byte-identical; permanent 500 → http 500 with no retries;
// 413 → http 413.
import { test, describe, before, after } from 'node:test';
import { startFixture, launchBrowser, openUploader, makeFile, runUpload, startRun, waitRun, untilRun, scenario, expectEqual, expectTrue, expectStored, fileErrorOf, countBy, summarize, sleep, KiB, TEST_TIMEOUT } from './harness.mjs';
import { expectClosedPortIsNetwork } from './scenarios.mjs';

let browser, fx;
before(async () => { [browser, fx] = await Promise.all([launchBrowser(), startFixture()]); });
after(async () => { await browser?.close(); await fx?.stop(); });

const CS = 32 * KiB;
const clean = { delay_ms: 0, fail_rate: 0, fail_status: 503, stall: false, drop_rate: 0, max_chunk_bytes: 64 * 1024 * 1024, max_file_bytes: 8 * 1024 * 1024 * 1024 };

describe('§5 other failures', () => {
  test('§5 closed port → kind network', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await expectClosedPortIsNetwork(t, CS);
      expectEqual(t.corsErrors(), [], 'CDP CORS errors for a closed port');
    });
    await t.close();
  });

  test('§5 stalled server → timeout after the configured timeout, then success when the stall clears', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      try {
        await fx.config({ ...clean, stall: true });
        // Without retries the file fails with kind timeout, not before the timeout elapsed.
        const g = await makeFile(t, 'stall-fail.bin', CS, 13);
        const r1 = await runUpload(t, { target: fx.target(), chunkSize: CS, timeout: 800, maxChunkRetries: 0 }, [g.name], { timeoutMs: 20000 });
        const e1 = fileErrorOf(r1, g.name);
        expectEqual(e1?.kind, 'timeout', 'error kind under a stall', summarize(r1));
        expectTrue(r1.ms >= 750, `the file failed after ${r1.ms} ms, before the 800 ms timeout`);
        // With retries: a timeout retry, then the stall clears and the upload completes.
        const f = await makeFile(t, 'stall-ok.bin', 3 * CS + 1, 14);
        await startRun(t, 'stall', { target: fx.target(), chunkSize: CS, timeout: 800, maxChunkRetries: 20, chunkRetryInterval: 100, maxRetryInterval: 400 }, [f.name]);
        const s = await untilRun(t, 'stall', (x) => x.events.some((e) => e.name === 'fileRetry' && e.error?.kind === 'timeout') || x.settled, 'a fileRetry of kind timeout');
        expectTrue(!s.settled, 'upload settled while the server stalled', summarize(s));
        const firstRetry = s.events.find((e) => e.name === 'fileRetry');
        expectTrue(firstRetry.t >= 750, `first timeout retry after ${firstRetry.t} ms, before the 800 ms timeout`);
        await fx.config({ stall: false });
        const run = await waitRun(t, 'stall', 30000);
        await expectStored(fx, [f], run);
      } finally {
        await fx.config(clean);
      }
    });
    await t.close();
  });

  test("§5 stalled server with progress 'bytes' (XHR transport) → kind timeout", { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      try {
        await fx.config({ ...clean, stall: true });
        const g = await makeFile(t, 'stall-xhr.bin', CS, 19);
        const r1 = await runUpload(t, { target: fx.target(), chunkSize: CS, timeout: 800, maxChunkRetries: 0, testChunks: false, progress: 'bytes' }, [g.name], { timeoutMs: 20000 });
        const e1 = fileErrorOf(r1, g.name);
        expectEqual([e1?.kind, e1?.phase], ['timeout', 'upload'], 'error kind and phase under a stall (XHR)', summarize(r1));
        expectTrue(r1.ms >= 750, `the file failed after ${r1.ms} ms, before the 800 ms timeout`);
      } finally {
        await fx.config(clean);
      }
    });
    await t.close();
  });

  test('§5 offline (CDP network emulation) → the queue waits and finishes once back online', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      try {
        await fx.config({ ...clean, delay_ms: 100 });
        const f = await makeFile(t, 'offline.bin', 12 * CS, 15);
        await startRun(t, 'off', { target: fx.target(), chunkSize: CS, simultaneousUploads: 2, maxChunkRetries: 2, chunkRetryInterval: 100 }, [f.name]);
        await untilRun(t, 'off', (x) => (x.counts.chunkSuccess ?? 0) >= 2 || x.settled, '2 chunks');
        await t.setOffline(true);
        const onLine = await t.eval(() => navigator.onLine);
        expectEqual(onLine, false, 'navigator.onLine under CDP offline emulation');
        await sleep(2500); // longer than the whole retry budget would last if it were spent
        const mid = await t.eval(() => window.__e2e.snapshot('off'));
        expectTrue(!mid.settled, 'the upload must wait while offline, but it settled', summarize(mid));
        expectEqual(mid.counts.fileError ?? 0, 0, 'fileError events while offline', summarize(mid));
        await t.setOffline(false);
        const run = await waitRun(t, 'off', 30000);
        await expectStored(fx, [f], run);
      } finally {
        await t.setOffline(false).catch(() => {});
        await fx.config(clean);
      }
    });
    await t.close();
  });

  test('§5 20 % injected 503s → completes, byte-identical', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      try {
        await fx.config({ ...clean, fail_rate: 0.2, fail_status: 503, seed: 42 });
        const f = await makeFile(t, 'flaky.bin', 24 * CS + 3, 16);
        const run = await runUpload(t, { target: fx.target(), chunkSize: CS, chunkRetryInterval: 50, maxRetryInterval: 200 }, [f.name], { timeoutMs: 90000 });
        await expectStored(fx, [f], run);
        const log = await fx.apiLog();
        const n503 = log.filter((e) => e.status === 503).length;
        expectTrue(n503 >= 1, `the fixture injected no 503 (seed 42, rate 0.2): ${JSON.stringify(countBy(log, 'status'))}`);
        expectTrue((run.counts.fileRetry ?? 0) >= 1, 'fileRetry events were fired', summarize(run));
        // 503 comes with Retry-After: 1, which raises the retry delay to at least 1 s.
        const early = run.events.filter((e) => e.name === 'fileRetry' && e.error?.status === 503 && !(e.delay >= 1000));
        expectEqual(early.map((e) => e.delay), [], 'fileRetry delays (ms) below the Retry-After of a 503');
      } finally {
        await fx.config(clean);
      }
    });
    await t.close();
  });

  test('§5 permanent 500 → kind http, status 500, no retries', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      try {
        await fx.config({ ...clean, fail_rate: 1, fail_status: 500 });
        const f = await makeFile(t, 'perm500.bin', CS / 2, 17);
        const run = await runUpload(t, { target: fx.target(), chunkSize: CS, testChunks: false }, [f.name], { timeoutMs: 30000 });
        const err = fileErrorOf(run, f.name);
        expectEqual([err?.kind, err?.status, err?.attempts], ['http', 500, 1], 'error kind, status, attempts', summarize(run));
        const log = await fx.apiLog();
        expectEqual(countBy(log), { POST: 1 }, 'requests to /upload (no retries)');
        expectEqual(run.counts.fileRetry ?? 0, 0, 'fileRetry events');
      } finally {
        await fx.config(clean);
      }
    });
    await t.close();
  });

  test('§5 413 (chunk over the fixture limit) → kind http, status 413', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      try {
        await fx.config({ ...clean, max_chunk_bytes: 1000 });
        for (const protocol of ['flow', 'resumable']) {
          const f = await makeFile(t, `big-chunk-${protocol}.bin`, 4 * KiB, 18);
          const run = await runUpload(t, { target: fx.target(), chunkSize: CS, testChunks: false, protocol, maxChunkRetries: 1, chunkRetryInterval: 50 }, [f.name], { timeoutMs: 30000 });
          const err = fileErrorOf(run, f.name);
          expectEqual([err?.kind, err?.status], ['http', 413], `error kind and status (${protocol})`, summarize(run));
        }
        const log = await fx.apiLog();
        expectTrue(log.length <= 3, `bounded requests: flow treats 413 as permanent (1), resumable retries once (2); got ${log.length}`, countBy(log));
      } finally {
        await fx.config(clean);
      }
    });
    await t.close();
  });
});
