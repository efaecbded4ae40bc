// The demo page (`make demo`'s www/): it loads the package, uploads cross-origin, shows the
// server's counts, switches the fixture's CORS mode and shows the typed diagnosis with its fix,
// and updates the preflight report live. Every form control has a label. Each file row's
// buttons pause, resume, cancel and retry that file. The "unfinished uploads" panel lists an
// upload cut by a reload, resumes it and forgets one. `scripts/demo.sh` (what `make demo` runs)
// serves on the ports it is given, and a taken port says how to pick others. With moto installed,
// the page's Protocol switch offers 's3' and sends a file straight into the bucket.
import { test, before, after } from 'node:test';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFixture, launchBrowser, newPage, scenario, expectEqual, expectTrue, sleep, ROOT, PKG, TEST_TIMEOUT, MOTO_BIN } from './harness.mjs';

/** How long a wait for the page or the demo script may take: a hang fails, slowness does not. */
const BOUND_MS = Math.floor(TEST_TIMEOUT / 3);

let browser, fx;
before(async () => {
  [browser, fx] = await Promise.all([
    launchBrowser(),
    startFixture({ www: join(ROOT, 'www'), mounts: { '/pkg': PKG }, pageHost: '127.0.0.1' }),
  ]);
});
after(async () => { await browser?.close(); await fx?.stop(); });

const bytes = (n, seed) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 131 + seed * 17) & 255));

test('demo page: upload, server panel, CORS switch with diagnosis, live preflight report, labelled controls', { timeout: TEST_TIMEOUT }, async () => {
  const t = await newPage(browser, { initLib: false });
  await scenario({ fixtures: [fx], pages: [t] }, async () => {
    await fx.reset();
    await t.goto(`${fx.page}/index.html?api=${encodeURIComponent(fx.api)}`);
    await t.page.waitForFunction(() => document.getElementById('preflight').textContent.includes('chunk POST'));

    const unlabelled = await t.eval(() => [...document.querySelectorAll('input:not([type=file]), select')]
      .filter((el) => el.labels.length === 0 && !el.getAttribute('aria-label')).map((el) => el.id));
    expectEqual(unlabelled, [], 'form controls without a label');
    const report = await t.eval(() => document.getElementById('preflight').textContent);
    expectTrue(report.includes('chunk POST: no preflight') && report.includes('probe GET: no preflight'), 'default options need no preflight', report);

    // Upload one file through the page's own picker.
    const data = bytes(2_500_000, 1);
    await t.page.locator('input[type=file]').first().setInputFiles({ name: 'demo.bin', mimeType: 'application/octet-stream', buffer: data });
    await t.page.click('#upload');
    await t.page.waitForFunction(() => document.querySelector('#file-list li .meta')?.textContent.startsWith('success'), null, { timeout: BOUND_MS });
    const files = await fx.files();
    expectEqual(files.map((f) => [f.name, f.sha256]), [['demo.bin', createHash('sha256').update(data).digest('hex')]], 'file stored by the demo');
    await t.page.waitForFunction(() => Number(document.getElementById('s-post').textContent) >= 2, null, { timeout: BOUND_MS });
    const counts = await t.eval(() => ['s-options', 's-get', 's-post'].map((id) => Number(document.getElementById(id).textContent)));
    expectEqual(counts, [0, 1, 2], 'server panel OPTIONS / GET / POST');

    // A custom header makes the report name the preflight.
    await t.page.fill('#o-header', 'Authorization: Bearer demo');
    await t.page.waitForFunction(() => document.getElementById('preflight').textContent.includes('authorization'));

    // Break the server's CORS from the page, then upload: the file shows kind cors and the fix.
    await t.page.fill('#o-header', '');
    await t.page.selectOption('#f-cors', 'none');
    await t.page.waitForFunction(async (api) => (await (await fetch(`${api}/__fixture/config`)).json()).cors === 'none', fx.api);
    await t.page.locator('input[type=file]').first().setInputFiles({ name: 'blocked.bin', mimeType: 'application/octet-stream', buffer: bytes(300_000, 2) });
    await t.page.click('#upload');
    const err = t.page.locator('#file-list li', { hasText: 'blocked.bin' }).locator('.err');
    await err.locator('.kind').waitFor({ timeout: BOUND_MS });
    const text = await err.textContent();
    expectTrue(text.startsWith('cors') && text.includes('Fix:') && text.includes('Access-Control-Allow-Origin'), 'the failed file shows kind cors and the fix', text);
    await fx.config({ cors: 'strict' });
  });
  await t.close();
});

test('demo page: each file row pauses, resumes, cancels and retries its file', { timeout: TEST_TIMEOUT }, async () => {
  const t = await newPage(browser, { initLib: false });
  await scenario({ fixtures: [fx], pages: [t] }, async () => {
    await fx.reset();
    await fx.config({ cors: 'strict', delay_ms: 150 }); // keeps the big files mid-upload while the test clicks
    await t.goto(`${fx.page}/index.html?api=${encodeURIComponent(fx.api)}`);
    await t.page.waitForFunction(() => document.getElementById('preflight').textContent.includes('chunk POST'));
    await t.page.fill('#o-chunk', '64');
    const row = (name) => t.page.locator('#file-list li', { hasText: name });
    const status = (name) => row(name).locator('.meta').textContent();
    const untilStatus = (name, re, timeout = BOUND_MS) => t.page.waitForFunction(([n, src]) => {
      const li = [...document.querySelectorAll('#file-list li')].find((el) => el.querySelector('.name')?.textContent.startsWith(n));
      return li && new RegExp(src).test(li.querySelector('.meta').textContent);
    }, [name, re.source], { timeout });
    const enabled = (name) => t.eval((n) => {
      const li = [...document.querySelectorAll('#file-list li')].find((el) => el.querySelector('.name')?.textContent.startsWith(n));
      return [...li.querySelectorAll('.row-buttons button')].filter((b) => !b.disabled).map((b) => b.textContent);
    }, name);
    const sha = (buf) => createHash('sha256').update(buf).digest('hex');

    // Two files: pause the first mid-upload, the second completes, resume the first.
    const big = bytes(4 * 1024 * 1024, 3);
    const small = bytes(300_000, 4);
    await t.page.locator('input[type=file]').first().setInputFiles([
      { name: 'big.bin', mimeType: 'application/octet-stream', buffer: big },
      { name: 'small.bin', mimeType: 'application/octet-stream', buffer: small },
    ]);
    await untilStatus('small.bin', /^queued/);
    expectEqual(await enabled('big.bin'), ['Pause', 'Cancel'], 'buttons of a queued file');
    await t.page.click('#upload');
    await untilStatus('big.bin', /^uploading · [1-9]\d*%/);
    await t.page.getByRole('button', { name: 'Pause big.bin' }).click();
    expectTrue((await status('big.bin')).startsWith('paused'), 'the row shows paused at once', await status('big.bin'));
    expectEqual(await enabled('big.bin'), ['Resume', 'Cancel'], 'buttons of a paused file');
    await untilStatus('small.bin', /^success/);
    // The requests in flight at the pause (sent long before the other file finished) have
    // been served: the answers that could move the row are in.
    await fx.untilServed();
    expectTrue((await status('big.bin')).startsWith('paused'), 'still paused after the other file finished', await status('big.bin'));
    expectEqual((await fx.files()).map((f) => f.name), ['small.bin'], 'files on the server while big.bin is paused');
    await t.page.getByRole('button', { name: 'Resume big.bin' }).click();
    await untilStatus('big.bin', /^success/);
    expectEqual(await enabled('big.bin'), [], 'buttons of a finished file');

    // A third file: cancel it mid-upload, then retry it.
    const third = bytes(2 * 1024 * 1024, 5);
    await t.page.locator('input[type=file]').first().setInputFiles({ name: 'third.bin', mimeType: 'application/octet-stream', buffer: third });
    await untilStatus('third.bin', /^queued/);
    await t.page.click('#upload');
    await untilStatus('third.bin', /^uploading · [1-9]\d*%/);
    await t.page.getByRole('button', { name: 'Cancel third.bin' }).click();
    expectTrue((await status('third.bin')).startsWith('cancelled'), 'the row shows cancelled', await status('third.bin'));
    expectEqual(await enabled('third.bin'), ['Retry'], 'buttons of a cancelled file');
    await t.page.getByRole('button', { name: 'Retry third.bin' }).click();
    await untilStatus('third.bin', /^success/);

    const stored = Object.fromEntries((await fx.files()).map((f) => [f.name, f.sha256]));
    expectEqual(stored, { 'big.bin': sha(big), 'small.bin': sha(small), 'third.bin': sha(third) }, 'files stored by the demo');
    await fx.config({ delay_ms: 0 });
  });
  await t.close();
});

test('demo page: the "unfinished uploads" panel lists an upload cut by a reload, resumes it from the kept file, and forgets one', { timeout: TEST_TIMEOUT }, async () => {
  const t = await newPage(browser, { initLib: false });
  await scenario({ fixtures: [fx], pages: [t] }, async () => {
    await fx.reset();
    await fx.config({ cors: 'strict', delay_ms: 200 }); // keeps the files mid-upload while the test reloads
    const url = `${fx.page}/index.html?api=${encodeURIComponent(fx.api)}`;
    const open = async () => {
      await t.goto(url);
      await t.page.waitForFunction(() => document.getElementById('preflight').textContent.includes('chunk POST'));
      await t.page.fill('#o-chunk', '64');
    };
    const pendingNames = () => t.eval(() => [...document.querySelectorAll('#pending-list li .name')].map((el) => el.textContent));
    const untilPending = (names) => t.page.waitForFunction((want) => JSON.stringify([...document.querySelectorAll('#pending-list li .name')]
      .map((el) => el.textContent.split(' (')[0]).sort()) === JSON.stringify(want), names, { timeout: 15000 });
    const untilRow = (name, re) => t.page.waitForFunction(([n, src]) => {
      const li = [...document.querySelectorAll('#file-list li')].find((el) => el.querySelector('.name')?.textContent.startsWith(n));
      return li && new RegExp(src).test(li.querySelector('.meta').textContent);
    }, [name, re.source], { timeout: 30000 });
    const interrupted = async (name, data) => {
      await open();
      await t.page.locator('input[type=file]').first().setInputFiles({ name, mimeType: 'application/octet-stream', buffer: data });
      await untilRow(name, /^queued/);
      await t.page.click('#upload');
      await untilRow(name, /^uploading · [1-9]\d*%/);
      await open(); // the reload cuts the upload
    };

    const kept = bytes(1024 * 1024, 6);
    await interrupted('kept.bin', kept);
    await untilPending(['kept.bin']);
    const meta = await t.eval(() => document.querySelector('#pending-list li .meta').textContent);
    expectTrue(/% on the server · kept in the browser/.test(meta), 'the panel says how much is on the server and that the file is kept', meta);
    await fx.config({ delay_ms: 0 });
    await t.page.click('#resume-pending');
    await untilRow('kept.bin', /^success/);
    await untilPending([]);
    const stored = (await fx.files()).map((f) => [f.name, f.sha256]);
    expectEqual(stored, [['kept.bin', createHash('sha256').update(kept).digest('hex')]], 'the resumed file on the server');

    await fx.config({ delay_ms: 200 });
    await interrupted('given-up.bin', bytes(1024 * 1024, 7));
    await untilPending(['given-up.bin']);
    await t.page.getByRole('button', { name: 'Forget given-up.bin' }).click();
    await untilPending([]);
    await open();
    await t.page.waitForTimeout(300);
    expectEqual(await pendingNames(), [], 'unfinished uploads after Forget and a reload');
    await fx.config({ delay_ms: 0 });
  });
  await t.close();
});

/** Listens on a free port of 127.0.0.1; returns the server (close it to free the port). */
function listenAnywhere() {
  return new Promise((resolve, reject) => {
    const srv = createServer().once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}
async function freePorts(n) {
  const servers = [];
  for (let i = 0; i < n; i++) servers.push(await listenAnywhere());
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/**
 * Runs scripts/demo.sh with `env` in its own process group (stopped by `stop()`, and by
 * --max-lifetime in any case). `pageUrl` resolves with the printed page URL, or null if the
 * script exits first; `exited` resolves with its exit code.
 */
function runDemo(env) {
  const proc = spawn(join(ROOT, 'scripts/demo.sh'), ['--max-lifetime', '120'], {
    cwd: ROOT, env: { ...process.env, RUST_LOG: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
  });
  let stdout = '', stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((r) => proc.once('exit', (code) => r(code)));
  const pageUrl = new Promise((resolve) => {
    proc.stdout.on('data', (d) => {
      stdout += d;
      const m = /demo page : (\S+)/.exec(stdout);
      if (m) resolve(m[1]);
    });
    exited.then(() => resolve(null));
  });
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      try { process.kill(-proc.pid, 'SIGTERM'); } catch { /* already gone */ }
      await Promise.race([exited, sleep(5000)]);
    }
  };
  return { pageUrl, exited, stop, output: () => ({ stdout, stderr }) };
}

test('demo.sh PAGE_PORT/API_PORT: the demo serves on the chosen ports and uploads to the chosen API', { timeout: TEST_TIMEOUT }, async () => {
  const [pagePort, apiPort] = await freePorts(2);
  const data = mkdtempSync(join(tmpdir(), 'rw-e2e-demo-'));
  const demo = runDemo({ PAGE_PORT: String(pagePort), API_PORT: String(apiPort), DEMO_DATA_DIR: data });
  const t = await newPage(browser, { initLib: false });
  try {
    const url = await Promise.race([demo.pageUrl, sleep(BOUND_MS).then(() => `no page line within ${BOUND_MS} ms`)]);
    const api = `http://localhost:${apiPort}`;
    expectEqual(url, `http://127.0.0.1:${pagePort}/?api=${api}`, 'page URL printed by demo.sh', demo.output());
    await t.goto(url);
    await t.page.waitForFunction(() => document.getElementById('preflight').textContent.includes('chunk POST'));
    expectEqual(await t.eval(() => document.getElementById('api-origin').textContent), api, 'API origin shown by the page');
    const bytesUp = bytes(70_000, 3);
    await t.page.locator('input[type=file]').first().setInputFiles({ name: 'ports.bin', mimeType: 'application/octet-stream', buffer: bytesUp });
    await t.page.click('#upload');
    await t.page.waitForFunction(() => document.querySelector('#file-list li .meta')?.textContent.startsWith('success'), null, { timeout: BOUND_MS });
    const stored = readFileSync(join(data, 'files', 'ports.bin'));
    expectEqual(createHash('sha256').update(stored).digest('hex'), createHash('sha256').update(bytesUp).digest('hex'), `sha256 of ${data}/files/ports.bin`);
  } finally {
    await t.close();
    await demo.stop();
    rmSync(data, { recursive: true, force: true });
  }
});

test('demo.sh with moto installed: the Protocol switch sends a file straight into the S3 bucket (s3, then s3-post)', { timeout: TEST_TIMEOUT }, async () => {
  expectTrue(existsSync(MOTO_BIN), `${MOTO_BIN} is missing: run scripts/ensure-tools.sh (make test does)`);
  const [pagePort, apiPort] = await freePorts(2);
  const data = mkdtempSync(join(tmpdir(), 'rw-e2e-demo-'));
  const demo = runDemo({ PAGE_PORT: String(pagePort), API_PORT: String(apiPort), DEMO_DATA_DIR: data, MOTO_SERVER_BIN: MOTO_BIN });
  const t = await newPage(browser, { initLib: false });
  try {
    const url = await Promise.race([demo.pageUrl, sleep(30000).then(() => 'no page line within 30 s')]);
    const api = `http://localhost:${apiPort}`;
    expectEqual(url, `http://127.0.0.1:${pagePort}/?api=${api}`, 'page URL printed by demo.sh', demo.output());
    // demo.sh prints its S3 line after the page line.
    for (let i = 0; i < 200 && !/direct to S3: /.test(demo.output().stdout); i++) await sleep(50);
    const { stdout } = demo.output();
    expectTrue(stdout.includes('direct to S3: moto at http://127.0.0.1:'), 'demo.sh says it runs moto', stdout);
    const token = /x-fixture-token: ([^']+)'/.exec(stdout)?.[1];
    const control = async (path) => (await fetch(`${api}${path}`, { headers: { 'x-fixture-token': token } })).json();

    await t.goto(url);
    await t.page.waitForFunction(() => !document.querySelector('#o-proto option[value=s3]').disabled, null, { timeout: 15000 });
    await t.page.selectOption('#o-proto', 's3');
    await t.page.waitForFunction(() => document.getElementById('preflight').textContent.startsWith('part PUT: PREFLIGHT'));
    // 6 MiB: two parts (5 MiB + 1 MiB), more than one part so it is a multipart upload.
    const data6 = bytes(6 * 1024 * 1024, 7);
    await t.page.locator('input[type=file]').first().setInputFiles({ name: 'demo-s3.bin', mimeType: 'application/octet-stream', buffer: data6 });
    await t.page.click('#upload');
    await t.page.waitForFunction(() => /^(success|error)/.test(document.querySelector('#file-list li .meta')?.textContent ?? ''), null, { timeout: 60000 });
    const row = await t.eval(() => document.querySelector('#file-list li').textContent);
    expectTrue(row.includes('success'), 'the file row says success', row);
    await t.page.waitForFunction(() => document.querySelector('#bucket-files li')?.textContent.includes('demo-s3.bin'), null, { timeout: 10000 });
    const listed = await t.eval(() => document.querySelector('#bucket-files li').textContent);
    const key = listed.split(' — ')[0];
    const object = await control(`/__fixture/s3/object?key=${encodeURIComponent(key)}`);
    expectEqual([object.size, object.sha256], [data6.length, createHash('sha256').update(data6).digest('hex')], `object ${key} in the bucket`);
    expectTrue(listed.includes(object.sha256.slice(0, 16)), 'the page lists the object with its sha256', listed);
    const byPath = (await control('/__fixture/stats')).by_path ?? {};
    const calls = ['/s3/create', '/s3/sign-part', '/s3/complete', '/upload'].map((p) => byPath[p] ?? 0);
    expectEqual(calls, [1, 2, 1, 0], 'signing calls (create, sign-part, complete) and no byte through /upload');
    expectEqual(readdirSync(join(data, 'files')).length, 0, 'no file in the upload server\'s data dir');

    // s3-post: the same bucket (its CORS configuration has the POST rule too), no preflight.
    await t.page.selectOption('#o-proto', 's3-post');
    await t.page.waitForFunction(() => document.getElementById('preflight').textContent.startsWith('chunk form POST: no preflight'));
    const data7 = bytes(7 * 1024 * 1024, 8);
    await t.page.locator('input[type=file]').first().setInputFiles({ name: 'demo-s3p.bin', mimeType: 'application/octet-stream', buffer: data7 });
    await t.page.click('#upload');
    await t.page.waitForFunction(() => [...document.querySelectorAll('#bucket-files li')].some((li) => li.textContent.includes('demo-s3p.bin')), null, { timeout: 60000 });
    const postKey = await t.eval(() => [...document.querySelectorAll('#bucket-files li')].find((li) => li.textContent.includes('demo-s3p.bin')).textContent.split(' — ')[0]);
    const postObject = await control(`/__fixture/s3/object?key=${encodeURIComponent(postKey)}`);
    expectEqual([postObject.size, postObject.sha256], [data7.length, createHash('sha256').update(data7).digest('hex')], `object ${postKey} in the bucket (s3-post)`);
    const after = (await control('/__fixture/stats')).by_path ?? {};
    expectEqual(['/s3/policy', '/s3/compose', '/upload'].map((p) => after[p] ?? 0), [1, 1, 0], 's3-post calls (policy, compose) and no byte through /upload');
  } finally {
    await t.close();
    await demo.stop();
    rmSync(data, { recursive: true, force: true });
  }
});

test('demo.sh with its page port taken: exits non-zero and says how to pick other ports', { timeout: TEST_TIMEOUT }, async () => {
  const taken = await listenAnywhere();
  const port = taken.address().port;
  const data = mkdtempSync(join(tmpdir(), 'rw-e2e-demo-'));
  const demo = runDemo({ PAGE_PORT: String(port), DEMO_DATA_DIR: data });
  try {
    const code = await Promise.race([demo.exited, sleep(BOUND_MS).then(() => `still running after ${BOUND_MS} ms`)]);
    const { stderr } = demo.output();
    expectEqual(code, 1, 'exit code of demo.sh', demo.output());
    expectTrue(stderr.includes(`binding 127.0.0.1:${port}: Address already in use`), 'the fixture names the taken address', stderr);
    expectTrue(stderr.includes('make demo PAGE_PORT=') && stderr.includes('API_PORT='), 'the message says how to pick other ports', stderr);
  } finally {
    await demo.stop();
    await new Promise((r) => taken.close(r));
    rmSync(data, { recursive: true, force: true });
  }
});
