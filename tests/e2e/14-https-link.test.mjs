// HTTPS + HTTP/2 through an emulated link (fixture `--tls --link rtt=40,up=200,down=200`):
// Chromium trusts the fixture's certificate by its public-key hash and really negotiates h2;
// the default cross-origin upload with credentials sends no preflight, the Authorization-header
// upload exactly one, and a CORS misconfiguration still fails with kind `cors` and its hint.
import { test, describe, before, after } from 'node:test';
import { startFixture, launchBrowser, openUploader, makeFile, runUpload, scenario, expectEqual, expectTrue, expectStored, chunkCount, countBy, fileErrorOf, summarize, MiB, TEST_TIMEOUT } from './harness.mjs';

const LINK = 'rtt=40,up=200,down=200';
let browser, fx;
before(async () => {
  fx = await startFixture({ flags: { tls: true, link: LINK, 'max-age': 600 } });
  browser = await launchBrowser({ trust: fx });
});
after(async () => { await browser?.close(); await fx?.stop(); });

const CS = 1 * MiB;
const SIZE = 4 * MiB + 123;

/** The protocols Chromium used for the page's requests to /upload, by method. */
function uploadProtocols(t) {
  const out = {};
  for (const p of t.protocols.filter((x) => new URL(x.url).pathname === '/upload')) {
    (out[p.method] ??= new Set()).add(p.protocol);
  }
  return Object.fromEntries(Object.entries(out).map(([m, s]) => [m, [...s].sort()]));
}

async function upload(name, options, expectedCounts) {
  const t = await openUploader(browser, fx);
  await scenario({ fixtures: [fx], pages: [t] }, async () => {
    await fx.reset();
    expectTrue(fx.page.startsWith('https://') && fx.api.startsWith('https://'), `both origins over HTTPS: ${fx.page} ${fx.api}`);
    const f = await makeFile(t, name, SIZE, 5);
    const run = await runUpload(t, { target: fx.target(), chunkSize: CS, ...options }, [f.name], { timeoutMs: 120000 });
    await expectStored(fx, [f], run);
    const c = countBy(await fx.apiLog());
    expectEqual({ OPTIONS: c.OPTIONS ?? 0, GET: c.GET ?? 0, POST: c.POST ?? 0 }, expectedCounts, `requests to /upload for ${JSON.stringify(options)}`, summarize(run));
    const protocols = uploadProtocols(t);
    expectEqual(protocols.POST, ['h2'], 'protocol of the chunk POSTs (CDP Network.responseReceived)', protocols);
    // The link is on: every request waited at least one 40 ms round trip between sending and
    // its first response byte (Resource Timing; the fixture sends Timing-Allow-Origin). On
    // loopback without the link the fastest of them takes a few milliseconds.
    const waits = await t.eval(() => performance.getEntriesByType('resource')
      .filter((e) => new URL(e.name).pathname === '/upload' && e.requestStart > 0)
      .map((e) => e.responseStart - e.requestStart));
    expectTrue(waits.length >= 1 && Math.min(...waits) >= 40, `request-to-first-byte of every /upload request through a ${LINK} link (ms): ${waits.map(Math.round)}`);
  });
  await t.close();
}

describe('HTTPS + HTTP/2 through an emulated link', () => {
  const n = chunkCount(SIZE, CS);
  test('the link is on and the page itself came over h2', { timeout: TEST_TIMEOUT }, async () => {
    const cfg = await fx.config();
    expectEqual(cfg.link, { down_mbit: 200, rtt_ms: 40, up_mbit: 200 }, 'the fixture\'s link (keys sorted, as served)');
    const t = await openUploader(browser, fx);
    const proto = await t.eval(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
    expectEqual(proto, 'h2', 'nextHopProtocol of the page');
    await t.close();
  });
  test('default options + withCredentials: bytes equal, 0 OPTIONS, POSTs over h2', { timeout: TEST_TIMEOUT }, () =>
    upload('tls-default.bin', { withCredentials: true }, { OPTIONS: 0, GET: 1, POST: n }));
  test('headers {Authorization}, testChunks false: exactly 1 OPTIONS', { timeout: TEST_TIMEOUT }, () =>
    upload('tls-auth.bin', { headers: { Authorization: 'Bearer e2e-token' }, testChunks: false }, { OPTIONS: 1, GET: 0, POST: n }));
  test('CORS misconfiguration (no-allow-credentials) over h2: kind cors with its hint', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      await fx.config({ cors: 'no-allow-credentials' });
      try {
        const f = await makeFile(t, 'tls-cors.bin', 2 * CS + 7, 6);
        const run = await runUpload(t, { target: fx.target(), chunkSize: CS, withCredentials: true }, [f.name], { timeoutMs: 120000 });
        expectTrue(run.settled, 'upload() settled within 120 s', summarize(run));
        const err = fileErrorOf(run, f.name);
        expectEqual(err?.kind, 'cors', 'error kind', summarize(run));
        expectTrue(/Access-Control-Allow-Credentials/i.test(err?.hint ?? ''), `hint ${JSON.stringify(err?.hint)} names Access-Control-Allow-Credentials`, err);
        const reasons = [...new Set(t.corsErrors())];
        expectEqual(reasons, ['InvalidAllowCredentials'], 'CDP corsErrorStatus');
      } finally {
        await fx.config({ cors: 'strict' });
      }
    });
    await t.close();
  });
});
