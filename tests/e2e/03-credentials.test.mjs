// §3 Credentials: the fixture requires the session cookie set by /login on the API origin.
// withCredentials true succeeds; false fails with kind http, status 401, after a bounded number
// of requests. Plus the cross-site case (page on 127.0.0.1, API on localhost): CORS passes, the
// SameSite=Lax session cookie does not travel.
import { test, describe, before, after } from 'node:test';
import { startFixture, launchBrowser, openUploader, makeFile, runUpload, scenario, expectEqual, expectTrue, expectStored, fileErrorOf, login, countBy, summarize, KiB, TEST_TIMEOUT } from './harness.mjs';

let browser, fx, fxSite;
before(async () => {
  [browser, fx, fxSite] = await Promise.all([
    launchBrowser(),
    startFixture({ flags: { 'require-session': true } }),
    startFixture({ pageHost: '127.0.0.1', apiHost: 'localhost' }),
  ]);
});
after(async () => { await browser?.close(); await fx?.stop(); await fxSite?.stop(); });

const CS = 64 * KiB;

describe('§3 credentials', () => {
  test('§3 session required: withCredentials true succeeds after /login', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      expectEqual(await login(t, fx), 200, 'status of /login');
      const f = await makeFile(t, 'cred-ok.bin', 3 * CS + 5, 3);
      const run = await runUpload(t, { target: fx.target(), chunkSize: CS, withCredentials: true }, [f.name]);
      await expectStored(fx, [f], run);
      const log = await fx.apiLog();
      expectEqual(log.filter((e) => e.status === 401).length, 0, 'requests answered 401');
    });
    await t.close();
  });

  test("§3 session required: withCredentials true with progress 'bytes' (XHR transport) succeeds", { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      expectEqual(await login(t, fx), 200, 'status of /login');
      const f = await makeFile(t, 'cred-xhr.bin', 3 * CS + 9, 6);
      const run = await runUpload(t, { target: fx.target(), chunkSize: CS, withCredentials: true, progress: 'bytes', method: 'octet' }, [f.name]);
      await expectStored(fx, [f], run);
      const log = await fx.apiLog();
      expectEqual(log.filter((e) => e.status === 401).length, 0, 'requests answered 401');
    });
    await t.close();
  });

  test('§3 session required: withCredentials false fails with kind http, status 401, bounded requests', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      expectEqual(await login(t, fx), 200, 'status of /login');
      const f = await makeFile(t, 'cred-no.bin', 3 * CS + 5, 4);
      const run = await runUpload(t, { target: fx.target(), chunkSize: CS, withCredentials: false }, [f.name]);
      const err = fileErrorOf(run, f.name);
      expectEqual([err?.kind, err?.status], ['http', 401], 'error kind and status', summarize(run));
      expectEqual(run.summary?.failed?.map((x) => x.name), [f.name], 'summary.failed', summarize(run));
      const log = await fx.apiLog();
      expectTrue(log.length <= 6, `bounded requests: expected ≤ 6 to /upload (401 is permanent), got ${log.length}`, countBy(log));
      expectEqual((await fx.files()).length, 0, 'files assembled');
    });
    await t.close();
  });

  // docs/cors.md §5: 127.0.0.1 and localhost are different sites, so the API's SameSite=Lax
  // session cookie does not travel with the page's credentialed requests. Without a session
  // requirement, credentials-mode CORS passes; with one, the upload is refused 401 even after
  // /login, whatever `withCredentials` says.
  test('§3 cross-site (page 127.0.0.1, API localhost): credentials-mode CORS passes; the SameSite=Lax session cookie is not sent (401 after /login)', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fxSite);
    await scenario({ fixtures: [fxSite], pages: [t] }, async () => {
      await fxSite.reset();
      expectTrue(fxSite.page.startsWith('http://127.0.0.1:') && fxSite.api.startsWith('http://localhost:'), `origins ${fxSite.page} → ${fxSite.api}`);
      try {
        const f = await makeFile(t, 'cross-site.bin', 3 * CS + 1, 5);
        const run = await runUpload(t, { target: fxSite.target(), chunkSize: CS, withCredentials: true }, [f.name]);
        await expectStored(fxSite, [f], run);
        const log = await fxSite.apiLog();
        expectEqual(countBy(log).OPTIONS ?? 0, 0, 'OPTIONS requests');
        expectTrue(log.every((e) => e.origin === fxSite.page), 'Origin of every request is the 127.0.0.1 page', log.map((e) => e.origin));

        await fxSite.reset();
        await fxSite.config({ require_session: true });
        expectEqual(await login(t, fxSite), 200, 'status of the cross-site /login');
        const g = await makeFile(t, 'cross-site-session.bin', 3 * CS + 1, 7);
        const refused = await runUpload(t, { target: fxSite.target(), chunkSize: CS, withCredentials: true }, [g.name]);
        const err = fileErrorOf(refused, g.name);
        expectEqual([err?.kind, err?.status], ['http', 401], 'error of a credentialed cross-site upload that needs the Lax session cookie', summarize(refused));
        expectEqual((await fxSite.files()).length, 0, 'files assembled without the session');
      } finally {
        await fxSite.config({ require_session: false });
      }
    });
    await t.close();
  });
});
