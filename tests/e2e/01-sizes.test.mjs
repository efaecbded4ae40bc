// §1 Sizes: 0 B (where allowed), 1 B, chunkSize−1, exactly 3 chunks, 3 chunks + 1 B, and 64 MiB,
// for both dialects, both methods, default and forceChunkSize. Each success is checked against
// the SHA-256 the fixture computed, and the number of chunks against the planning rule.
import { test, describe, before, after } from 'node:test';
import { startFixture, launchBrowser, openUploader, makeFile, runUpload, scenario, expectEqual, expectTrue, expectStored, chunkCount, countBy, summarize, uploadRequestHeaders, KiB, MiB, TEST_TIMEOUT } from './harness.mjs';

let browser, fx;
before(async () => { [browser, fx] = await Promise.all([launchBrowser(), startFixture()]); });
after(async () => { await browser?.close(); await fx?.stop(); });

const CS = 64 * KiB;

describe('§1 sizes', () => {
  for (const protocol of ['resumable', 'flow']) {
    for (const method of ['multipart', 'octet']) {
      for (const forceChunkSize of [false, true]) {
        const label = `${protocol} ${method}${forceChunkSize ? ' forceChunkSize' : ''}`;
        test(`§1 sizes ${label}: 0 B, 1 B, chunkSize−1, 3 chunks, 3 chunks + 1 B`, { timeout: TEST_TIMEOUT }, async () => {
          const t = await openUploader(browser, fx);
          await scenario({ fixtures: [fx], pages: [t] }, async () => {
            await fx.reset();
            const tag = `${protocol[0]}${method[0]}${forceChunkSize ? 'f' : 'd'}`;
            const sizes = [1, CS - 1, 3 * CS, 3 * CS + 1];
            const files = [];
            for (const [i, size] of sizes.entries()) files.push(await makeFile(t, `${tag}-${size}.bin`, size, 100 + i));
            const empty = await makeFile(t, `${tag}-0.bin`, 0, 1);
            const run = await runUpload(t, { target: fx.target(), chunkSize: CS, protocol, method, forceChunkSize }, [...files, empty].map((f) => f.name));
            // 0 B: refused by the resumable dialect (minFileSize 1, as Resumable.js), uploaded by flow (as Flow.js).
            const expected = protocol === 'flow' ? [...files, empty] : files;
            if (protocol === 'resumable') {
              const rej = run.events.filter((e) => e.name === 'fileRejected');
              expectEqual(rej.map((e) => [e.error?.kind, e.error?.rule]), [['rejected', 'minFileSize']], 'fileRejected events for the 0 B file', summarize(run));
            }
            await expectStored(fx, expected, run);
            const stored = await fx.files();
            for (const f of expected) {
              const got = stored.find((s) => s.name === f.name);
              expectEqual(got.chunks, chunkCount(f.size, CS, forceChunkSize), `chunk count of ${f.name}`);
            }
            const log = await fx.apiLog();
            const posts = log.filter((e) => e.method === 'POST');
            const want = expected.reduce((n, f) => n + chunkCount(f.size, CS, forceChunkSize), 0);
            expectEqual(posts.length, want, 'chunk POSTs (no retries, no duplicates)', countBy(log));
            expectTrue(posts.every((e) => e.status === 200), 'every chunk POST answered 200', posts.map((e) => e.status));
            if (method === 'multipart') {
              // Constant URL: parameters travel in the body.
              expectEqual([...new Set(posts.map((e) => e.query ?? ''))], [''], 'query strings of multipart POSTs');
            }
            expectEqual(countBy(log).OPTIONS ?? 0, 0, 'OPTIONS requests (default options are preflight-free)');
            // Request shape seen by Chromium: no header the user did not ask for, untyped octet bodies.
            const hdrs = uploadRequestHeaders(t, 'POST');
            expectEqual(hdrs.length, want, 'chunk POSTs seen by CDP');
            expectEqual(hdrs.filter((h) => 'x-requested-with' in h).length, 0, 'POSTs with X-Requested-With');
            const types = [...new Set(hdrs.map((h) => (h['content-type'] ?? '(none)').split(';')[0]))];
            expectEqual(types, [method === 'multipart' ? 'multipart/form-data' : '(none)'], `Content-Type of ${method} chunk POSTs`);
          });
          await t.close();
        });
      }
    }
  }

  for (const method of ['multipart', 'octet']) {
    test(`§1 sizes progress 'bytes' (XHR transport) resumable ${method}: 1 B, chunkSize−1, 3 chunks + 1 B`, { timeout: TEST_TIMEOUT }, async () => {
      const t = await openUploader(browser, fx);
      await scenario({ fixtures: [fx], pages: [t] }, async () => {
        await fx.reset();
        const files = [];
        for (const [i, size] of [1, CS - 1, 3 * CS + 1].entries()) files.push(await makeFile(t, `xhr-${method}-${size}.bin`, size, 200 + i));
        const run = await runUpload(t, { target: fx.target(), chunkSize: CS, method, progress: 'bytes' }, files.map((f) => f.name));
        await expectStored(fx, files, run);
        const log = await fx.apiLog();
        expectEqual(log.filter((e) => e.method === 'POST').length, files.reduce((n, f) => n + chunkCount(f.size, CS), 0), 'chunk POSTs', countBy(log));
      });
      await t.close();
    });
  }

  for (const [protocol, method, forceChunkSize] of [['resumable', 'multipart', false], ['flow', 'octet', true]]) {
    test(`§1 sizes 64 MiB ${protocol} ${method}${forceChunkSize ? ' forceChunkSize' : ''} (1 MiB chunks)`, { timeout: TEST_TIMEOUT }, async () => {
      const t = await openUploader(browser, fx);
      await scenario({ fixtures: [fx], pages: [t] }, async () => {
        await fx.reset();
        const size = 64 * MiB;
        const f = await makeFile(t, `big-${protocol}-${method}.bin`, size, 64);
        const run = await runUpload(t, { target: fx.target(), protocol, method, forceChunkSize }, [f.name], { timeoutMs: 180000 });
        await expectStored(fx, [f], run);
        const stored = (await fx.files()).find((s) => s.name === f.name);
        expectEqual(stored.chunks, 64, 'chunk count of the 64 MiB file (1 MiB chunks)');
        const log = await fx.apiLog();
        expectEqual(log.filter((e) => e.method === 'POST').length, 64, 'chunk POSTs for 64 MiB', countBy(log));
        expectTrue(run.progressMonotonic, 'progress values never decrease', run.progressValues);
      });
      await t.close();
    });
  }
});
