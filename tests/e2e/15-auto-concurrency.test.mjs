// simultaneousUploads 'auto' through an emulated long link (rtt=300 ms, 200 Mbit/s: about 115
// chunks of 64 KiB in flight fill it, and 16 carry only 3.5 MB/s, the ceiling of 64 14 MB/s, so the goodput keeps rising
// with the window even on a busy machine; the data on tmpfs where there is one, as every chunk
// is fsynced): over HTTPS + HTTP/2, with Timing-Allow-Origin so the page
// can read the protocol, the window grows past the HTTP/1.1 cap of 6, also when a preflight
// warms up first; without that header the page cannot tell, and over plain HTTP/1.1 it stays at
// most 6 — and grows past the initial 3 there too. Counted from Chromium's own request events,
// not from timings.
import { test, describe, before, after } from 'node:test';
import { existsSync } from 'node:fs';
import { startFixture, launchBrowser, openUploader, makeFile, runUpload, scenario, expectEqual, expectTrue, expectStored, chunkCount, countBy, summarize, KiB, MiB, TEST_TIMEOUT } from './harness.mjs';

const LINK = 'rtt=300,up=200,down=200';
const dataRoot = existsSync('/dev/shm') ? '/dev/shm' : undefined;
const CS = 64 * KiB;
const SIZE = 8 * MiB + 99;
let browser, tls, plain;
before(async () => {
  [tls, plain] = await Promise.all([
    startFixture({ flags: { tls: true, link: LINK }, dataRoot }),
    startFixture({ flags: { link: LINK }, dataRoot }),
  ]);
  browser = await launchBrowser({ trust: tls });
});
after(async () => { await browser?.close(); await tls?.stop(); await plain?.stop(); });

/**
 * Uploads one file with defaults + credentials and `options`, `runtime` set on the fixture;
 * checks the bytes and the OPTIONS/POST counts; the most chunk POSTs under way at once.
 */
async function mostPostsInFlight(fx, name, { runtime = {}, options = {}, preflights = 0, fullTimingBuffer = false } = {}) {
  const t = await openUploader(browser, fx);
  let most;
  await scenario({ fixtures: [fx], pages: [t] }, async () => {
    await fx.reset();
    await fx.config({ timing_allow_origin: true, ...runtime });
    const f = await makeFile(t, name, SIZE, 9);
    if (fullTimingBuffer) {
      // The buffer holds exactly what it has: every later entry is dropped, as once a page has
      // made its 250 requests.
      const entries = await t.eval(() => {
        performance.setResourceTimingBufferSize(performance.getEntriesByType('resource').length);
        return performance.getEntriesByType('resource').length;
      });
      expectTrue(entries >= 1, `resource entries filling the buffer: ${entries}`);
    }
    t.resetLifecycle();
    const run = await runUpload(t, { target: fx.target(), chunkSize: CS, withCredentials: true, ...options }, [f.name], { timeoutMs: 120000 });
    await expectStored(fx, [f], run);
    const c = countBy(await fx.apiLog());
    expectEqual({ OPTIONS: c.OPTIONS ?? 0, POST: c.POST ?? 0 }, { OPTIONS: preflights, POST: chunkCount(SIZE, CS) }, 'requests to /upload', summarize(run));
    most = t.mostInFlight('POST', '/upload');
    if (fullTimingBuffer) {
      const uploads = await t.eval(() => performance.getEntriesByType('resource').filter((e) => new URL(e.name).pathname === '/upload').length);
      expectEqual(uploads, 0, 'resource entries of /upload requests with the buffer full');
    }
  });
  await t.close();
  return most;
}

describe("simultaneousUploads 'auto' through a 300 ms, 200 Mbit/s link", () => {
  test('HTTPS + HTTP/2 with Timing-Allow-Origin: more than 16 chunk POSTs in flight (the former cap), at most 64', { timeout: TEST_TIMEOUT }, async () => {
    const most = await mostPostsInFlight(tls, 'auto-h2.bin');
    expectTrue(most > 16 && most <= 64, `most chunk POSTs in flight over h2: ${most} (expected 17..64)`);
  });
  test('HTTPS + HTTP/2 without Timing-Allow-Origin: the protocol is hidden, the probe of 12 finds it multiplexing, so more than 6', { timeout: TEST_TIMEOUT }, async () => {
    const most = await mostPostsInFlight(tls, 'auto-h2-hidden.bin', { runtime: { timing_allow_origin: false } });
    expectTrue(most > 6 && most <= 64, `most chunk POSTs in flight, protocol hidden: ${most} (expected 7..64)`);
  });
  // README, How many requests in flight: "the entry also goes missing once the page's resource
  // timing buffer is full …; the answer is then 'unknown', capped at 6".
  test('HTTPS + HTTP/2 with Timing-Allow-Origin, the resource timing buffer full: the protocol is unknown, the probe finds it multiplexing', { timeout: TEST_TIMEOUT }, async () => {
    const most = await mostPostsInFlight(tls, 'auto-h2-full-buffer.bin', { fullTimingBuffer: true });
    expectTrue(most > 6 && most <= 64, `most chunk POSTs in flight, timing buffer full: ${most} (expected 7..64)`);
  });
  test('HTTP/2, headers {Authorization}: exactly 1 OPTIONS (the first POST goes alone), then more than 6 in flight', { timeout: TEST_TIMEOUT }, async () => {
    const options = { headers: { Authorization: 'Bearer e2e-token' }, testChunks: false };
    const most = await mostPostsInFlight(tls, 'auto-h2-auth.bin', { options, preflights: 1 });
    expectTrue(most > 6 && most <= 64, `most chunk POSTs in flight over h2 with a preflight: ${most} (expected 7..64)`);
  });
  test('plain HTTP/1.1: more than the initial 3, at most 6', { timeout: TEST_TIMEOUT }, async () => {
    const most = await mostPostsInFlight(plain, 'auto-h1.bin');
    expectTrue(most > 3 && most <= 6, `most chunk POSTs in flight over HTTP/1.1: ${most} (expected 4..6)`);
  });
});
