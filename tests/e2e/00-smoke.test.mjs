// Smoke: the fixture serves the test pages and the package mount, a plain cross-origin fetch
// (multipart chunk POST, probe GET) reaches the API, and stats/files report it.
import { test, before, after } from 'node:test';
import { startFixture, launchBrowser, newPage, makeFile, scenario, expectEqual, expectTrue, countBy, TEST_TIMEOUT } from './harness.mjs';

let browser, fx;
before(async () => { [browser, fx] = await Promise.all([launchBrowser(), startFixture()]); });
after(async () => { await browser?.close(); await fx?.stop(); });

test('smoke: fixture serves a page; a plain fetch POST + probe reaches the API; stats and files agree', { timeout: TEST_TIMEOUT }, async () => {
  const t = await newPage(browser);
  await scenario({ fixtures: [fx], pages: [t] }, async () => {
    await fx.reset();
    const resp = await t.goto(fx.page + '/e2e/blank.html');
    expectEqual(resp.status(), 200, 'status of /e2e/blank.html');
    const f = await makeFile(t, 'smoke.bin', 5000, 7);
    const r = await t.eval(async ([target, size]) => {
      const file = window.__e2e.files['smoke.bin'];
      const q = new URLSearchParams({ resumableChunkNumber: 1, resumableChunkSize: 1048576, resumableCurrentChunkSize: size,
        resumableTotalSize: size, resumableIdentifier: `${size}-smokebin`, resumableFilename: 'smoke.bin', resumableRelativePath: 'smoke.bin', resumableTotalChunks: 1 });
      const before = (await fetch(`${target}?${q}`)).status;
      const fd = new FormData();
      for (const [k, v] of q) fd.append(k, v);
      fd.append('file', file.slice(0, size));
      const post = await fetch(target, { method: 'POST', body: fd });
      const after = (await fetch(`${target}?${q}`)).status;
      return { before, post: post.status, text: await post.text(), after };
    }, [fx.target(), f.size]);
    expectEqual([r.before, r.post, r.after], [204, 200, 200], 'probe before / POST / probe after', r);
    const stats = await fx.stats();
    const log = stats.log.filter((e) => e.path === '/upload');
    expectEqual(countBy(log), { GET: 2, POST: 1 }, 'requests to /upload by method (a simple request: no OPTIONS)');
    expectTrue(log.every((e) => e.origin === fx.page), `every /upload request has Origin ${fx.page}`, log);
    const files = await fx.files();
    expectEqual(files.map((x) => [x.name, x.size, x.sha256]), [['smoke.bin', f.size, f.sha256]], 'fixture files (name, size, sha256)');
  });
  await t.close();
});
