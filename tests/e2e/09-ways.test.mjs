// §9 The three ways of use: (a) the npm package (`npm pack` of pkg/) imported by a tiny app built
// with Vite 7, (b) the script-tag build served from a third origin (a CDN-like second fixture)
// on a page with nothing but a <script src>, (c) the package imported as an ES module by a plain
// page, and (d) the app of (a) built with webpack 5 instead. Each uploads a file cross-origin with
// credentials, byte-identical, then gets a typed `cors` UploadError with the right hint once the
// server's CORS is broken.
import { test, describe, before, after } from 'node:test';
import { mkdtempSync, mkdirSync, writeFileSync, cpSync, copyFileSync, rmSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { E2E, startFixture, launchBrowser, openUploader, newPage, scenario, expectEqual, expectTrue, TEST_TIMEOUT } from './harness.mjs';
import { uploadAndCheck, startScriptTagDoor, installPackedPackage, buildViteApp } from './scenarios.mjs';

let browser;
const tmp = mkdtempSync(join(tmpdir(), 'rw-e2e-ways-'));
const stops = [];
before(async () => { browser = await launchBrowser(); });
after(async () => {
  await browser?.close();
  for (const s of stops) await s();
  rmSync(tmp, { recursive: true, force: true });
});

/**
 * Serves a bundler's output `dist` under /app of a fresh fixture, opens its index.html and runs
 * uploadAndCheck; `checkWasm` gets the paths of the .wasm requests the page made.
 */
async function uploadFromBuiltApp(dist, fileName, checkWasm) {
  const fx = await startFixture({ mounts: { '/app': dist, '/e2e': join(E2E, 'pages') } });
  stops.push(() => fx.stop());
  const t = await newPage(browser);
  await scenario({ fixtures: [fx], pages: [t] }, async () => {
    const resp = await t.goto(`${fx.page}/app/index.html`);
    expectEqual(resp.status(), 200, 'status of the built app');
    await uploadAndCheck(t, fx, fileName);
    checkWasm([...t.requests.values()].filter((r) => r.url.endsWith('.wasm')).map((r) => new URL(r.url).pathname));
    expectEqual(await t.page.textContent('#status'), 'ready', 'app status');
  });
  await t.close();
}

describe('§9 the three ways of use', () => {
  test('§9a npm package: Vite 7 app importing the packed tarball, built in the test, uploads a file', { timeout: TEST_TIMEOUT }, async () => {
    const dist = await buildViteApp(tmp);
    const assets = readdirSync(join(dist, 'assets'));
    expectTrue(assets.some((a) => a.endsWith('.wasm')), `Vite emitted the .wasm as an asset: ${assets}`);
    await uploadFromBuiltApp(dist, 'vite.bin', (wasm) => {
      expectTrue(wasm.length === 1 && wasm[0].startsWith('/app/assets/'), `the wasm came from the app's bundle: ${wasm}`);
    });
  });

  test('§9b script-tag build from a third (CDN) origin on a page with only <script src>', { timeout: TEST_TIMEOUT }, async () => {
    const { fx, cdn, pageUrl, scriptUrl } = await startScriptTagDoor(join(tmp, 'gen'));
    stops.push(() => cdn.stop(), () => fx.stop());
    const t = await newPage(browser);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      const resp = await t.goto(pageUrl);
      expectEqual(resp.status(), 200, 'status of the script-tag page');
      const g = await t.eval(() => ({ type: typeof window.ResumableWasm, ready: !!(window.ResumableWasm && window.ResumableWasm.ready && window.ResumableWasm.ready.then) }));
      expectEqual(g, { type: 'object', ready: true }, 'global ResumableWasm with a ready promise');
      await uploadAndCheck(t, fx, 'script-tag.bin');
      const scripts = [...t.requests.values()].filter((r) => r.url.includes('resumable-wasm')).map((r) => r.url);
      expectEqual(scripts, [scriptUrl], 'script requests (only the CDN one, no separate .wasm fetch)');
    });
    await t.close();
  });

  test('§9c plain page importing the package as an ES module', { timeout: TEST_TIMEOUT }, async () => {
    const fx = await startFixture();
    stops.push(() => fx.stop());
    const t = await openUploader(browser, fx, 'esm.html');
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await uploadAndCheck(t, fx, 'esm.bin');
      const mods = [...t.requests.values()].map((r) => new URL(r.url).pathname).filter((p) => p.startsWith('/pkg/'));
      expectTrue(mods.includes('/pkg/resumable_wasm.js') && mods.includes('/pkg/resumable_wasm_bg.wasm'), `module and wasm loaded from /pkg: ${mods}`);
    });
    await t.close();
  });

  test('§9d npm package: webpack 5 app importing the packed tarball, built in the test with a default config, uploads a file', { timeout: TEST_TIMEOUT }, async () => {
    // The same app as §9a (vite-app/main.js), built by webpack 5's Node API with nothing but
    // mode, entry and output.path: no plugins, no loaders, no experiments. The package's
    // `new URL('resumable_wasm_bg.wasm', import.meta.url)` is an asset module out of the box and
    // output.publicPath defaults to 'auto' (resolved from the script's own URL, here under /app/).
    const dir = join(tmp, 'webpack');
    const app = join(dir, 'app');
    mkdirSync(app, { recursive: true });
    cpSync(join(E2E, 'vite-app/main.js'), join(app, 'main.js'));
    // As html-webpack-plugin would write it: a deferred classic script (webpack's default output).
    writeFileSync(join(app, 'index.html'), '<!doctype html>\n<meta charset="utf-8">\n<title>e2e: webpack 5 app importing the packed resumable-wasm</title>\n<p id="status">loading</p>\n<script defer src="./main.js"></script>\n');
    installPackedPackage(app, dir, { name: 'e2e-webpack-app' });
    const { default: webpack } = await import('webpack');
    const compiler = webpack({ mode: 'production', context: app, entry: './main.js', output: { path: join(app, 'dist') } });
    const stats = await new Promise((resolve, reject) => compiler.run((err, s) => (err ? reject(err) : resolve(s))));
    await new Promise((resolve) => compiler.close(resolve));
    const info = stats.toJson({ all: false, assets: true, errors: true, warnings: true, version: true });
    const text = () => stats.toString({ all: false, assets: true, errors: true, warnings: true, colors: false });
    expectEqual(info.errors.map((e) => e.message), [], `webpack ${info.version} errors`, text());
    expectEqual(info.warnings.map((w) => w.message), [], `webpack ${info.version} warnings`, text());
    const wasmAssets = info.assets.filter((a) => a.name.endsWith('.wasm'));
    expectEqual(wasmAssets.map((a) => a.info.sourceFilename), ['node_modules/resumable-wasm/resumable_wasm_bg.wasm'], 'webpack emitted the package\'s .wasm as one asset module', text());
    const wasmName = wasmAssets[0].name;
    expectTrue(existsSync(join(app, 'dist', wasmName)) && existsSync(join(app, 'dist/main.js')), `dist holds main.js and ${wasmName}: ${readdirSync(join(app, 'dist'))}`);
    copyFileSync(join(app, 'index.html'), join(app, 'dist/index.html'));
    await uploadFromBuiltApp(join(app, 'dist'), 'webpack.bin', (wasm) => {
      expectEqual(wasm, [`/app/${wasmName}`], 'the wasm came from the app\'s bundle (the emitted asset, under the publicPath \'auto\' resolved from /app/main.js)');
    });
  });
});
