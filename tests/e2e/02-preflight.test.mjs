// §2 Preflight economy, counted on the fixture (strict CORS, Access-Control-Max-Age 600). Each
// case runs in a fresh browser context, so no preflight cache entry survives from another case.
import { test, describe, before, after } from 'node:test';
import { startFixture, launchBrowser, openUploader, scenario, expectEqual, chunkCount, KiB, TEST_TIMEOUT } from './harness.mjs';
import { countedUpload } from './scenarios.mjs';

let browser, fx;
before(async () => { [browser, fx] = await Promise.all([launchBrowser(), startFixture({ flags: { 'max-age': 600 } })]); });
after(async () => { await browser?.close(); await fx?.stop(); });

const CS = 64 * KiB;
const SIZE = 6 * CS + 100; // 6 chunks

async function counted(name, options, expected) {
  const t = await openUploader(browser, fx);
  await scenario({ fixtures: [fx], pages: [t] }, () => countedUpload(t, fx, name, options, expected, { chunkSize: CS }));
  await t.close();
}

describe('§2 preflight economy', () => {
  const n = chunkCount(SIZE, CS);
  test('§2 default options + withCredentials: 0 OPTIONS, 1 probe GET (testChunks auto)', { timeout: TEST_TIMEOUT }, () =>
    counted('pf-default.bin', { withCredentials: true }, { OPTIONS: 0, GET: 1, POST: n }));
  test('§2 headers {Authorization} at simultaneousUploads 3: 1 OPTIONS for the POSTs + 1 for the probe = 2', { timeout: TEST_TIMEOUT }, () =>
    counted('pf-auth.bin', { headers: { Authorization: 'Bearer e2e-token' } }, { OPTIONS: 2, GET: 1, POST: n }));
  test("§2 headers {Authorization} at simultaneousUploads 'auto': still 2 OPTIONS (the first POST goes alone)", { timeout: TEST_TIMEOUT }, () =>
    counted('pf-auth-auto.bin', { headers: { Authorization: 'Bearer e2e-token' }, simultaneousUploads: 'auto' }, { OPTIONS: 2, GET: 1, POST: n }));
  test("§2 progress 'bytes': exactly 1 OPTIONS", { timeout: TEST_TIMEOUT }, () =>
    counted('pf-bytes.bin', { progress: 'bytes' }, { OPTIONS: 1, GET: 1, POST: n }));
  test('§2 testChunks true: one probe GET per chunk, 0 OPTIONS', { timeout: TEST_TIMEOUT }, () =>
    counted('pf-test.bin', { testChunks: true }, { OPTIONS: 0, GET: n, POST: n }));
  test('§2 preflightReport() predicts what the fixture counted', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      const r = await t.eval(async (target) => {
        const { Uploader } = await window.__e2e.rw();
        const rep = (o) => new Uploader({ target, ...o }).preflightReport();
        return {
          plain: rep({ withCredentials: true }),
          auth: rep({ headers: { Authorization: 'Bearer x' } }),
          bytes: rep({ progress: 'bytes' }),
        };
      }, fx.target());
      const flags = (x) => [x.test.preflight, x.upload.preflight];
      expectEqual(flags(r.plain), [false, false], 'preflightReport default (test, upload)', r.plain);
      expectEqual(flags(r.auth), [true, true], 'preflightReport with Authorization (test, upload)', r.auth);
      expectEqual(flags(r.bytes), [false, true], "preflightReport progress 'bytes' (test, upload)", r.bytes);
      expectEqual(r.auth.upload.reasons.some((s) => /authorization/i.test(s)), true, 'a reason names Authorization', r.auth);
    });
    await t.close();
  });
});
