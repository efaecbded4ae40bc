// The fixture's control plane (/__fixture/*) against a hostile page: a page on a foreign origin
// tries to read the statistics, the file list (absolute server paths) and the settings, with and
// without credentials, to switch CORS with a preflight-free text/plain POST, and to wipe the
// stored files with a no-cors POST. Nothing may be read and nothing may change. The fixture's
// own page origin still reads and switches, with JSON (a non-simple request).
import { test, before, after } from 'node:test';
import { existsSync, readFileSync } from 'node:fs';
import { startFixture, launchBrowser, newPage, scenario, expectEqual, expectTrue, TEST_TIMEOUT } from './harness.mjs';

let browser, fx, evil;
before(async () => {
  [browser, fx, evil] = await Promise.all([
    launchBrowser(),
    startFixture(),
    // The attacker's origin: another fixture's page listener, on another host name and port.
    startFixture({ pageHost: '127.0.0.1' }),
  ]);
});
after(async () => { await browser?.close(); await fx?.stop(); await evil?.stop(); });

/** Stores one small file through the API from Node; returns its listing entry. */
async function storeFile(name, size) {
  const q = new URLSearchParams({ resumableChunkNumber: 1, resumableChunkSize: 1048576, resumableTotalSize: size,
    resumableIdentifier: `${size}-${name}`, resumableFilename: name });
  const r = await fetch(`${fx.api}/upload?${q}`, { method: 'POST', body: new Uint8Array(size).fill(7) });
  expectEqual(r.status, 200, `storing ${name}`, await r.text());
  return (await fx.files()).find((f) => f.name === name);
}

test('a foreign page reads nothing and changes nothing on /__fixture/*; the page origin still can', { timeout: TEST_TIMEOUT }, async () => {
  const t = await newPage(browser, { initLib: false });
  const own = await newPage(browser, { initLib: false });
  t.allowPageErrors = true;
  await scenario({ fixtures: [fx], pages: [t, own] }, async () => {
    await fx.reset();
    const stored = await storeFile('precious.bin', 5000);
    expectTrue(stored && existsSync(stored.path), 'the file to protect is stored', stored);
    const configBefore = await fx.config();

    const origins = new Set([new URL(evil.page).origin, new URL(fx.page).origin, new URL(fx.api).origin]);
    expectEqual(origins.size, 3, 'the attacker page is on a third origin');
    await t.goto(`${evil.page}/blank.html`);
    const attack = await t.eval(async ({ api, page }) => {
      const attempt = async (url, init) => {
        try {
          const r = await fetch(url, init);
          return { status: r.status, type: r.type, text: (await r.text()).slice(0, 120) };
        } catch (e) {
          return { error: e.name };
        }
      };
      const reads = {};
      for (const [label, base] of [['api', api], ['page', page]]) {
        for (const path of ['/__fixture/stats', '/__fixture/files', '/__fixture/config']) {
          for (const credentials of ['omit', 'include']) {
            reads[`GET ${label}${path} credentials=${credentials}`] = await attempt(base + path, { credentials });
          }
        }
      }
      return { reads };
    }, { api: fx.api, page: fx.page });
    for (const [what, got] of Object.entries(attack.reads)) {
      expectEqual(got, { error: 'TypeError' }, `foreign page: ${what} must be blocked`);
    }

    // Each write on its own, the fixture's settings and files checked after it: a no-cors
    // request always resolves opaque, so what it did shows only on the fixture.
    const json = JSON.stringify({ cors: 'reflect', allow_origins: [new URL(evil.page).origin] });
    const writes = [
      ['text/plain POST config (no preflight)', `${fx.api}/__fixture/config`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: json, credentials: 'include' }],
      ['no-cors POST config', `${fx.api}/__fixture/config`, { method: 'POST', mode: 'no-cors', body: json }],
      ['no-cors POST reset?data=1 (api)', `${fx.api}/__fixture/reset?data=1`, { method: 'POST', mode: 'no-cors' }],
      ['no-cors POST reset?data=1 (page)', `${fx.page}/__fixture/reset?data=1`, { method: 'POST', mode: 'no-cors' }],
      ['JSON POST config (preflighted)', `${fx.api}/__fixture/config`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: json }],
      ['JSON POST config with a guessed token', `${fx.api}/__fixture/config`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-fixture-token': 'guess' }, body: json }],
    ];
    for (const [what, url, init] of writes) {
      const got = await t.eval(async ([u, i]) => {
        try {
          const r = await fetch(u, i);
          return { status: r.status, type: r.type };
        } catch (e) {
          return { error: e.name };
        }
      }, [url, init]);
      if (init.mode !== 'no-cors') expectEqual(got, { error: 'TypeError' }, `foreign page: ${what} must be blocked`);
      expectEqual(await fx.config(), configBefore, `the fixture settings after the foreign ${what}`, got);
      expectEqual((await fx.files()).map((f) => [f.name, f.sha256]), [[stored.name, stored.sha256]], `the stored files after the foreign ${what}`, got);
    }
    const probe = await t.eval(async (u) => {
      try { await fetch(u, { credentials: 'include' }); return { ok: true }; } catch (e) { return { error: e.name }; }
    }, `${fx.api}/upload?resumableChunkNumber=1&resumableChunkSize=1048576&resumableTotalSize=5000&resumableIdentifier=5000-precious.bin&resumableFilename=precious.bin`);
    expectEqual(probe, { error: 'TypeError' }, 'foreign page: a credentialed probe of /upload after the attempted switches');

    expectEqual(await fx.config(), configBefore, 'the fixture settings after the attack');
    const files = await fx.files();
    expectEqual(files.map((f) => [f.name, f.sha256]), [[stored.name, stored.sha256]], 'the stored files after the attack');
    expectTrue(existsSync(stored.path) && readFileSync(stored.path).length === 5000, 'the stored file is still on disk', stored.path);

    // The fixture's own page origin reads the statistics and switches settings with JSON; a
    // preflight-free text/plain POST is refused even from there.
    await own.goto(`${fx.page}/e2e/blank.html`);
    const mine = await own.eval(async (api) => {
      const stats = await fetch(`${api}/__fixture/stats`);
      const plain = await fetch(`${api}/__fixture/config`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"delay_ms":1}' });
      const json = await fetch(`${api}/__fixture/config`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"delay_ms":2}' });
      return { stats: stats.status, hasCounts: typeof (await stats.json()).requests === 'object', plain: plain.status, json: json.status, delay: (await json.json()).delay_ms };
    }, fx.api);
    expectEqual(mine, { stats: 200, hasCounts: true, plain: 415, json: 200, delay: 2 }, 'the page origin: stats, text/plain POST, JSON POST');
    await fx.config({ delay_ms: 0 });
  });
  await t.close();
  await own.close();
});
