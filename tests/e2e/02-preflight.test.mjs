// §2 Preflight economy, counted on the fixture (strict CORS, Access-Control-Max-Age 600): every
// row of the README's Preflight rules table (same-origin: 04-cors), and preflightReport()'s
// prediction of each count. Each case runs in a fresh browser context, so no preflight cache
// entry survives from another case.
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
  test("§2 headers {Authorization} at simultaneousUploads 'auto': still 2 OPTIONS (the first POST goes alone)", { timeout: TEST_TIMEOUT }, () =>
    counted('pf-auth-auto.bin', { headers: { Authorization: 'Bearer e2e-token' }, simultaneousUploads: 'auto' }, { OPTIONS: 2, GET: 1, POST: n }));
  test('§2 testChunks true: one probe GET per chunk, 0 OPTIONS', { timeout: TEST_TIMEOUT }, () =>
    counted('pf-test.bin', { testChunks: true }, { OPTIONS: 0, GET: n, POST: n }));

  // README, Preflight rules: each row of the table, counted on the fixture; and for each,
  // preflightReport() predicts the count. The report says whether the probe and the chunk
  // upload are preflighted; a preflighted upload costs one OPTIONS for its constant URL
  // (multipart), or one per chunk when every chunk has its own URL (octet: parameters in the
  // query); a preflighted probe costs one per probe URL (here one probe, testChunks 'auto').
  const auth = { headers: { Authorization: 'Bearer e2e-token' } };
  const rows = [
    { name: 'defaults + withCredentials: none', options: { withCredentials: true }, expected: { OPTIONS: 0, GET: 1, POST: n } },
    { name: "method 'octet': none", options: { method: 'octet' }, expected: { OPTIONS: 0, GET: 1, POST: n } },
    { name: 'headers {Authorization}: one for the POSTs + one for the probe', options: auth, expected: { OPTIONS: 2, GET: 1, POST: n } },
    { name: 'a safelisted header with a value over 128 bytes: one for the POSTs + one for the probe', options: { headers: { Accept: `text/plain;q=0.9, ${'x'.repeat(130)}` } }, expected: { OPTIONS: 2, GET: 1, POST: n }, allowHeader: 'accept' },
    { name: "progress 'bytes': one", options: { progress: 'bytes' }, expected: { OPTIONS: 1, GET: 1, POST: n } },
    { name: "uploadMethod 'PUT': one", options: { uploadMethod: 'PUT' }, expected: { OPTIONS: 1, GET: 1, PUT: n } },
    { name: "uploadMethod 'PATCH': one", options: { uploadMethod: 'PATCH' }, expected: { OPTIONS: 1, GET: 1, PATCH: n } },
    { name: "method 'octet' + headers {Authorization}: one per chunk (+ the probe's)", options: { method: 'octet', ...auth }, expected: { OPTIONS: n + 1, GET: 1, POST: n } },
    { name: "method 'octet' + progress 'bytes': one per chunk", options: { method: 'octet', progress: 'bytes' }, expected: { OPTIONS: n, GET: 1, POST: n } },
    { name: "method 'octet' + uploadMethod 'PUT': one per chunk", options: { method: 'octet', uploadMethod: 'PUT' }, expected: { OPTIONS: n, GET: 1, PUT: n } },
  ];
  /** The OPTIONS that preflightReport() `r` predicts for a fresh 6-chunk upload with `options`. */
  const predicted = (r, options) => (r.upload.preflight ? (options.method === 'octet' ? n : 1) : 0) + (r.test.preflight ? 1 : 0);
  for (const row of rows) {
    test(`§2 counted and predicted by preflightReport(): ${row.name}`, { timeout: TEST_TIMEOUT }, async () => {
      const t = await openUploader(browser, fx);
      await scenario({ fixtures: [fx], pages: [t] }, async () => {
        const report = await t.eval(async ([target, o]) => {
          const { Uploader } = await window.__e2e.rw();
          return new Uploader({ target, ...o }).preflightReport();
        }, [fx.target(), row.options]);
        expectEqual(predicted(report, row.options), row.expected.OPTIONS, `OPTIONS that preflightReport() predicts for ${JSON.stringify(row.options)}`, report);
        for (const name of Object.keys(row.options.headers ?? {})) {
          expectEqual(report.upload.reasons.some((s) => s.toLowerCase().includes(name.toLowerCase())), true, `a reason names ${name}`, report);
        }
        // A header the fixture does not list yet is allowed for this row only.
        const listed = (await fx.config()).allow_headers;
        if (row.allowHeader) await fx.config({ allow_headers: [...listed, row.allowHeader] });
        try {
          await countedUpload(t, fx, 'pf-row.bin', row.options, row.expected, { chunkSize: CS });
        } finally {
          await fx.config({ allow_headers: listed });
        }
      });
      await t.close();
    });
  }
});
