// chunkSize: 'auto' in Chromium against server-fixture, read from the fixture's request log
// (method 'octet': every parameter in the query string). Through an emulated 200 ms link the
// first file's chunk 1 is probed in maxChunkSize, then the file is cut in the size the probe's
// round trip asks for (more than 1 MiB, whole MiB), every chunk POST carries that size and an
// identifier that names it, and the bytes on disk are the file's; over loopback (no link) the
// same options keep 1 MiB. 0 OPTIONS in both (the defaults need no preflight).
import { test, describe, before, after } from 'node:test';
import { startFixture, launchBrowser, openUploader, makeFile, runUpload, scenario, expectEqual, expectTrue, expectStored, chunkCount, countBy, summarize, MiB, TEST_TIMEOUT } from './harness.mjs';

const MAX = 16 * MiB;
const SIZE = 40 * MiB + 99;
let browser, far, near;
before(async () => {
  [far, near] = await Promise.all([
    startFixture({ flags: { link: 'rtt=200,up=1000,down=1000' } }),
    startFixture(),
  ]);
  browser = await launchBrowser();
});
after(async () => { await browser?.close(); await far?.stop(); await near?.stop(); });

/** The query parameters of each logged /upload request of `method`. */
const params = (log, method) => log.filter((e) => e.method === method).map((e) => Object.fromEntries(new URLSearchParams(e.query ?? '')));

/** Uploads one file under chunkSize 'auto' to `fx`; returns the chunk size its POSTs carried. */
async function autoUpload(fx, name) {
  const t = await openUploader(browser, fx);
  let size;
  await scenario({ fixtures: [fx], pages: [t] }, async () => {
    await fx.reset();
    const f = await makeFile(t, name, SIZE, 5);
    const run = await runUpload(t, { target: fx.target(), chunkSize: 'auto', maxChunkSize: MAX, method: 'octet' }, [f.name], { timeoutMs: 120000 });
    await expectStored(fx, [f], run);
    const log = await fx.apiLog();
    const gets = params(log, 'GET');
    const posts = params(log, 'POST');
    // The first file has nothing measured: its one probe (chunk 1) goes in maxChunkSize.
    expectEqual(gets.map((q) => [q.resumableChunkNumber, q.resumableChunkSize, q.resumableTotalChunks]), [['1', String(MAX), String(chunkCount(SIZE, MAX))]], 'the probe', summarize(run));
    expectTrue(gets[0].resumableIdentifier.endsWith(`-${MAX}`), `the probe's identifier names its size: ${gets[0].resumableIdentifier}`);
    const sizes = [...new Set(posts.map((q) => q.resumableChunkSize))];
    expectEqual(sizes.length, 1, `one chunk size for the file's POSTs: ${sizes}`);
    size = Number(sizes[0]);
    expectTrue(size % MiB === 0 && size >= MiB && size <= MAX, `a whole number of MiB within 1 MiB..maxChunkSize: ${size}`);
    expectEqual(posts.length, chunkCount(SIZE, size), 'chunk POSTs in the chosen size');
    expectTrue(posts.every((q) => q.resumableIdentifier === `${gets[0].resumableIdentifier.slice(0, -String(MAX).length - 1)}-${size}`), 'every POST names the chosen size in its identifier');
    expectEqual([...new Set(posts.map((q) => q.resumableTotalChunks))], [String(chunkCount(SIZE, size))], 'resumableTotalChunks');
    expectEqual(countBy(log).OPTIONS ?? 0, 0, 'preflights');
  });
  await t.close();
  return size;
}

describe("chunkSize: 'auto'", () => {
  test('through a 200 ms, 1 Gbit/s link: the probe in maxChunkSize, then larger chunks than 1 MiB from its round trip', { timeout: TEST_TIMEOUT }, async () => {
    const size = await autoUpload(far, 'auto-far.bin');
    // 200 ms or more (the probe also opened the connection): at least 8 MiB.
    expectTrue(size >= 8 * MiB, `chunk size through 200 ms: ${size}`);
  });
  test('over loopback: the same options keep 1 MiB', { timeout: TEST_TIMEOUT }, async () => {
    const size = await autoUpload(near, 'auto-near.bin');
    expectEqual(size, MiB, 'chunk size over loopback');
  });
});
