// §23 Integrity (`checksum`): server-fixture's `corrupt_rate` flips a bit in chunk bodies as they
// arrive. Without checksums the corruption is stored (the fault is real); with them every file
// ends byte-identical and every corrupted body was refused and sent again. Both dialects and
// both methods carry the checksums with 0 OPTIONS; a file whose bytes change between two reads
// fails as rejected/changed; a server that never matches ends in a typed `integrity` error;
// 'sha256' without WebCrypto is an `invalid` option.
import { test, describe, before, after } from 'node:test';
import { startFixture, launchBrowser, openUploader, makeFiles, runUpload, scenario, expectEqual, expectTrue, expectStored, countBy, summarize, MiB, KiB, TEST_TIMEOUT } from './harness.mjs';
import { expectChecksummedUpload } from './scenarios.mjs';

let browser, fx;
before(async () => { [browser, fx] = await Promise.all([launchBrowser(), startFixture()]); });
after(async () => { await browser?.close(); await fx?.stop(); });

/** 20 files of 1–8 MiB (sizes spread, not multiples of the chunk size). */
const twenty = Array.from({ length: 20 }, (_, i) => ({ name: `corrupt-${i}.bin`, size: MiB + ((i * 2_654_435_761) % (7 * MiB)) + i, seed: 100 + i }));
const opts = (extra) => ({ target: fx.target(), chunkSize: MiB, maxChunkRetries: 12, chunkRetryInterval: 20, maxRetryInterval: 100, ...extra });

describe('§23 integrity', () => {
  test('§23 corrupt-rate 0.2, 20 files of 1–8 MiB: checksum off stores corruption; on: 20/20 identical, every mismatch retried, 0 OPTIONS', { timeout: Math.max(TEST_TIMEOUT, 600000) }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      const files = await makeFiles(t, twenty);
      try {
        // Off: the fault is real — some stored file differs from what the page holds.
        await fx.reset();
        await fx.config({ corrupt_rate: 0.2, seed: 11 });
        const off = await runUpload(t, opts({}), files.map((f) => f.name), { timeoutMs: 300000 });
        expectEqual((off.summary?.succeeded ?? []).length, 20, 'files the uploader reported stored without checksums', summarize(off));
        const storedOff = await fx.files();
        const differ = files.filter((f) => storedOff.find((s) => s.name === f.name)?.sha256 !== f.sha256);
        const corruptedOff = (await fx.stats()).corrupted;
        expectTrue(corruptedOff >= 1 && differ.length >= 1, `without checksums ${differ.length} stored files differ after ${corruptedOff} corrupted bodies: expected at least one`);

        // On: every file byte-identical, every corrupted body refused (460) and sent again.
        await fx.reset();
        await fx.config({ corrupt_rate: 0.2, seed: 11 });
        const on = await runUpload(t, opts({ checksum: 'crc32c' }), files.map((f) => f.name), { timeoutMs: 300000 });
        await expectStored(fx, files, on);
        const stats = await fx.stats();
        expectTrue(stats.corrupted >= 1, 'the fault fired with checksums on', stats);
        expectEqual(stats.checksum_mismatches, stats.corrupted, 'bodies refused for their checksum = bodies corrupted');
        const retried = on.events.filter((e) => e.name === 'fileRetry' && e.error?.kind === 'integrity');
        expectEqual(retried.length, stats.corrupted, 'integrity retries in the page = corrupted bodies', summarize(on));
        expectTrue(retried.every((e) => e.error.status === 460 && e.error.chunk >= 1), 'each retry names the status and the chunk', retried.slice(0, 3));
        const c = countBy(await fx.apiLog());
        expectEqual(c.OPTIONS ?? 0, 0, 'OPTIONS with checksum on');
        const stored = await fx.files();
        for (const f of files) {
          const s = stored.find((x) => x.name === f.name);
          expectEqual([s?.checksum?.algorithm, s?.checksum?.value], ['crc32c', s?.crc32c], `the file digest of ${f.name}, sent by the page and verified by the fixture`);
        }
      } finally {
        await fx.config({ corrupt_rate: 0 });
      }
    });
    await t.close();
  });

  for (const [protocol, method, checksum] of [
    ['resumable', 'multipart', 'crc32c'], ['resumable', 'octet', 'crc32c'], ['flow', 'multipart', 'crc32c'], ['flow', 'octet', 'crc32c'], ['resumable', 'multipart', 'sha256'],
  ]) {
    test(`§23 ${protocol}/${method}, checksum '${checksum}': corrupted bodies refused and re-sent, bytes equal, 0 OPTIONS`, { timeout: TEST_TIMEOUT }, async () => {
      const t = await openUploader(browser, fx);
      await scenario({ fixtures: [fx], pages: [t] }, () => expectChecksummedUpload(t, fx, { checksum, protocol, method }));
      await t.close();
    });
  }

  test('§23 a file whose bytes change between two reads → rejected, rule changed', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      // A Blob whose bytes change while it uploads (a file edited on disk): the `query` function
      // of chunk 2's probe — called once the probe's bytes were read and hashed — flips it, so
      // the read for chunk 2's POST, after the probe's 204, sees other bytes.
      await t.eval(() => {
        const E = window.__e2e;
        const size = 4 * 32 * 1024 + 7;
        const before = E.makeBytes(size, 5);
        const after = before.map((b) => b ^ 1);
        window.__edited = false;
        class Editing extends Blob {
          slice(start, end) {
            return new Blob([(window.__edited ? after : before).subarray(start, end)]);
          }
        }
        E.files['editing.bin'] = new Editing([before]);
      });
      const run = await runUpload(t, { target: fx.target(), chunkSize: 32 * KiB, simultaneousUploads: 1, testChunks: true, checksum: 'crc32c' }, ['editing.bin'], {
        timeoutMs: 60000,
        extra: { fnOptions: { query: '(file, chunk) => { if (chunk === 2) window.__edited = true; return {}; }' } },
      });
      const err = run.summary?.failed?.[0]?.error;
      expectEqual([err?.kind, err?.rule, err?.algorithm], ['rejected', 'changed', 'crc32c'], 'the error of a file changed between two reads', summarize(run));
      expectEqual(err?.chunk, 2, 'the chunk whose second read differed', err);
      expectEqual((await fx.files()).length, 0, 'files completed on the fixture');
    });
    await t.close();
  });

  test('§23 a server that never matches → kind integrity after the retry budget, nothing stored', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      await fx.config({ corrupt_rate: 1 });
      try {
        // One chunk ('auto' sends it without a probe): attempts = the POST + maxChunkRetries.
        const [f] = await makeFiles(t, [{ name: 'never.bin', size: 32 * KiB + 3, seed: 9 }]);
        const run = await runUpload(t, { target: fx.target(), chunkSize: 32 * KiB, checksum: 'crc32c', maxChunkRetries: 2, chunkRetryInterval: 10, maxRetryInterval: 20 }, [f.name], { timeoutMs: 60000 });
        const err = run.summary?.failed?.[0]?.error;
        expectEqual([err?.kind, err?.algorithm, err?.status, err?.attempts, err?.chunk], ['integrity', 'crc32c', 460, 3, 1], 'the error after maxChunkRetries mismatches', summarize(run));
        expectTrue(/checksum/.test(err?.message ?? ''), 'the message says why', err);
        expectEqual((await fx.files()).length, 0, 'files completed on the fixture');
      } finally {
        await fx.config({ corrupt_rate: 0 });
      }
    });
    await t.close();
  });

  test('§23 target as a function of (file, chunk) and an async preprocess hook (as Flow.js users hash chunks), with checksum: bytes equal, 0 OPTIONS', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      const [f] = await makeFiles(t, [{ name: 'fn-target.bin', size: 4 * 32 * KiB + 9, seed: 21 }]);
      // preprocess computes a value per chunk (after a delay) that the query function then
      // sends: it must have finished before the chunk's first request is built.
      await t.eval(() => { window.__pre = { calls: [], values: {} }; });
      const run = await runUpload(t, { chunkSize: 32 * KiB, checksum: 'crc32c', simultaneousUploads: 2 }, [f.name], {
        extra: {
          fnOptions: {
            target: `(file, chunk) => ${JSON.stringify(fx.target())} + '?to=' + chunk`,
            preprocess: '(file, chunk) => new Promise((r) => setTimeout(() => { window.__pre.calls.push(chunk); window.__pre.values[chunk] = "v" + chunk; r(); }, 30))',
            query: '(file, chunk) => ({ pre: window.__pre.values[chunk] ?? "missing" })',
          },
        },
      });
      await expectStored(fx, [f], run);
      const calls = await t.eval(() => window.__pre.calls.slice().sort((a, b) => a - b));
      expectEqual(calls, [1, 2, 3, 4], 'preprocess ran once per chunk');
      const log = await fx.apiLog();
      const posts = log.filter((e) => e.method === 'POST');
      expectEqual(posts.map((e) => e.query).sort(), ['pre=v1&to=1', 'pre=v2&to=2', 'pre=v3&to=3', 'pre=v4&to=4'].map((q) => q.split('&').reverse().join('&')).sort(), 'each POST went to the target function\'s URL with the query computed in preprocess');
      expectEqual(countBy(log).OPTIONS ?? 0, 0, 'OPTIONS');
      const report = await t.eval(async (target) => {
        const { Uploader } = await window.__e2e.rw();
        return new Uploader({ target: () => target }).preflightReport();
      }, fx.target());
      expectTrue(report.upload.reasons.some((r) => /target is a function/.test(r)), 'preflightReport says a target function cannot be predicted', report);
    });
    await t.close();
  });

  test("§23 checksum 'sha256' where crypto.subtle is missing → invalid, naming the option", { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      // As on a page served over plain http from a LAN address (not a secure context).
      await t.eval(() => { Object.defineProperty(window.crypto, 'subtle', { value: undefined, configurable: true }); });
      const run = await runUpload(t, { target: fx.target(), checksum: 'sha256' }, []);
      expectEqual([run.constructError?.kind, run.constructError?.option], ['invalid', 'checksum'], 'the constructor error', run.constructError);
      expectTrue(/crypto\.subtle/.test(run.constructError?.message ?? ''), 'the message names crypto.subtle', run.constructError);
      const bad = await runUpload(t, { target: fx.target(), checksum: 'md5' }, []);
      expectEqual([bad.constructError?.kind, bad.constructError?.option], ['invalid', 'checksum'], 'an unknown algorithm');
    });
    await t.close();
  });
});
