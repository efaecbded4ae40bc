// §20 Dropped connections are not CORS (issue 12 item 2): with half of the fixture's /upload
// connections closed without an answer, 20 files of 1–8 MiB all complete with the default retry
// budget, cross-origin with credentials, and no failure is ever called `cors`. A dropped
// connection looks exactly like a CORS block to script (status 0); the verdict must tell them
// apart by what a real misconfiguration never does: answer a request of the same shape.
import { test, describe, before, after } from 'node:test';
import { startFixture, launchBrowser, openUploader, makeFiles, login, runUpload, scenario, expectEqual, expectTrue, expectStored, countBy, summarize, MiB, TEST_TIMEOUT } from './harness.mjs';

let browser, fx;
before(async () => { [browser, fx] = await Promise.all([launchBrowser(), startFixture({ flags: { 'drop-rate': 0.5 } })]); });
after(async () => { await browser?.close(); await fx?.stop(); });

describe('§20 dropped connections', () => {
  test('§20 --drop-rate 0.5: 20 files of 1–8 MiB complete with the default retries, no `cors` verdict', { timeout: TEST_TIMEOUT * 2 }, async (tc) => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      expectEqual(await login(t, fx), 200, 'login status');
      // Sizes spread over 1–8 MiB, not chunk-aligned (deterministic).
      const specs = Array.from({ length: 20 }, (_, i) => ({ name: `drop-${String(i).padStart(2, '0')}.bin`, size: MiB + ((i * 2654435761) % (7 * MiB)), seed: 1200 + i }));
      const files = await makeFiles(t, specs);
      // Default options on purpose (retry budget, testChunks, diagnoseCors), with credentials.
      const run = await runUpload(t, { target: fx.target(), withCredentials: true }, files.map((f) => f.name), { timeoutMs: 2 * TEST_TIMEOUT - 60000 });
      const retries = run.events.filter((e) => e.name === 'fileRetry');
      const kinds = countBy(retries.map((e) => e.error ?? {}), 'kind');
      const log = await fx.apiLog();
      tc.diagnostic(`${run.ms} ms; fileRetry by kind ${JSON.stringify(kinds)}; /upload requests by status ${JSON.stringify(countBy(log, 'status'))}`);
      const cors = [...retries, ...run.events.filter((e) => e.name === 'fileError')].filter((e) => e.error?.kind === 'cors');
      expectEqual(cors.map((e) => `${e.name} ${e.file} chunk ${e.error.chunk}: ${e.error.message}`), [], 'retries or errors called `cors` under dropped connections', summarize(run));
      expectTrue(log.some((e) => e.status == null && !e.in_flight), 'the fixture dropped connections (drop-rate 0.5)', countBy(log, 'status'));
      await expectStored(fx, files, run);
    });
    await t.close();
  });
});
