// §8 Many files: 200 small files and 3 large ones in one queue, slots spread across files
// (parallelFiles), all byte-identical; 200 one-chunk files cost one request each.
import { test, describe, before, after } from 'node:test';
import { startFixture, launchBrowser, openUploader, makeFiles, runUpload, scenario, expectEqual, expectTrue, expectStored, countBy, summarize, chunkCount, KiB, MiB, TEST_TIMEOUT } from './harness.mjs';

let browser, fx;
before(async () => { [browser, fx] = await Promise.all([launchBrowser(), startFixture()]); });
after(async () => { await browser?.close(); await fx?.stop(); });

describe('§8 many files', () => {
  test('§8 200 small + 3 large files in one queue, slots spread across files, all byte-identical', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      const specs = [
        ...[0, 1, 2].map((i) => ({ name: `large-${i}.bin`, size: 2 * MiB + 1000 * i, seed: 900 + i })),
        ...Array.from({ length: 200 }, (_, i) => ({ name: `small-${String(i).padStart(3, '0')}.bin`, size: 1 + ((i * 2654435761) % (12 * KiB)), seed: 1000 + i })),
      ];
      const files = await makeFiles(t, specs);
      const run = await runUpload(t, { target: fx.target(), chunkSize: 256 * KiB, simultaneousUploads: 4, parallelFiles: true }, files.map((f) => f.name), { timeoutMs: 120000 });
      await expectStored(fx, files, run);
      expectEqual((await fx.files()).length, 203, 'files assembled by the fixture');
      // Slots spread across files: the three large files are in progress at the same time,
      // i.e. each one's first chunk succeeded before any of them finished.
      const large = ['large-0.bin', 'large-1.bin', 'large-2.bin'];
      const ids = Object.fromEntries((run.files ?? []).filter((f) => large.includes(f.name)).map((f) => [f.identifier, f.name]));
      const firstChunk = {}, done = {};
      // Positions in the order the events fired (not their times).
      run.events.forEach((e, i) => {
        if (e.name === 'chunkSuccess' && ids[e.file] && firstChunk[ids[e.file]] === undefined) firstChunk[ids[e.file]] = i;
        if (e.name === 'fileSuccess' && ids[e.file]) done[ids[e.file]] = i;
      });
      const lastStart = Math.max(...large.map((n) => firstChunk[n]));
      const firstDone = Math.min(...large.map((n) => done[n]));
      expectTrue(lastStart < firstDone, `large files were uploaded side by side: the last one's first chunk (event #${lastStart}) came before the first one finished (event #${firstDone}): first chunks ${JSON.stringify(firstChunk)}, done ${JSON.stringify(done)}`);
      const log = await fx.apiLog();
      expectTrue(log.every((e) => e.status === 200 || (e.method === 'GET' && e.status === 204)), 'every request answered 200 (or 204 for probes)', countBy(log, 'status'));
      expectEqual(run.summary.failed.length, 0, 'failed files', summarize(run));
      const chunks = files.reduce((n, f) => n + chunkCount(f.size, 256 * KiB), 0);
      expectEqual(log.filter((e) => e.method === 'POST').length, chunks, 'chunk POSTs (one per chunk, no duplicates)');
    });
    await t.close();
  });

  test("§8 200 one-chunk files with testChunks 'auto': one POST each and no probe, all byte-identical", { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      const specs = Array.from({ length: 200 }, (_, i) => ({ name: `one-${String(i).padStart(3, '0')}.bin`, size: 1 + ((i * 2654435761) % (8 * KiB)), seed: 2000 + i }));
      const files = await makeFiles(t, specs);
      const run = await runUpload(t, { target: fx.target(), chunkSize: 64 * KiB, testChunks: 'auto' }, files.map((f) => f.name), { timeoutMs: 120000 });
      await expectStored(fx, files, run);
      const log = await fx.apiLog();
      expectEqual(countBy(log), { POST: 200 }, 'requests: one POST per file, no probe GET', countBy(log, 'status'));
    });
    await t.close();
  });
});
