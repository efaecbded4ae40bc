// One WebDriver harness for the three engines: Chromium (chromedriver), Firefox (geckodriver) and
// WebKit (WebKitWebDriver driving WebKitGTK's MiniBrowser), through `selenium-webdriver` against a
// driver process started here on a free port. Classic WebDriver for navigation and scripts;
// WebDriver BiDi where the session offers it (Chromium, Firefox) to install the in-page helpers
// before the page's own scripts run; WebKitWebDriver has no BiDi, so there they are injected
// right after each navigation.
//
// The page object has the shape of tests/e2e/harness.mjs's Playwright page (`eval`, `console`,
// `pageErrors`, `loadingFailed`, ...), so the scenario and assertion code of the Playwright suite
// runs unchanged in every engine.
import { spawn } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { WebDriver, Capabilities } from 'selenium-webdriver';
import { Executor, HttpClient } from 'selenium-webdriver/http/index.js';
import getScriptManager from 'selenium-webdriver/bidi/scriptManager.js';
import { E2E, CHROMIUM, chromiumArgs, pkgBuilt, PKG, sleep } from '../e2e/harness.mjs';
import { freePort } from '../e2e/scenarios.mjs';

/** The engine under test: E2E_BROWSER=chromium|firefox|webkit (default chromium). */
export const ENGINE = process.env.E2E_BROWSER || 'chromium';

/** `name` on PATH (scripts/ensure-browsers.sh installs geckodriver with cargo), else `name`. */
const onPath = (name) => (process.env.PATH ?? '').split(delimiter).map((d) => join(d, name)).find((p) => existsSync(p)) ?? name;

const arch = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
export const MINIBROWSER = process.env.MINIBROWSER_BIN || `/usr/lib/${arch}/webkit2gtk-4.1/MiniBrowser`;

/** How to start each engine's driver and which capabilities open a session in it. */
const ENGINES = {
  chromium: {
    driver: process.env.CHROMEDRIVER || '/usr/bin/chromedriver',
    caps: { browserName: 'chrome', webSocketUrl: true, 'goog:chromeOptions': { binary: CHROMIUM, args: chromiumArgs } },
  },
  firefox: {
    driver: process.env.GECKODRIVER || onPath('geckodriver'),
    caps: { browserName: 'firefox', webSocketUrl: true, 'moz:firefoxOptions': { binary: process.env.FIREFOX_BIN || '/usr/bin/firefox-esr', args: ['-headless'] } },
  },
  webkit: {
    // MiniBrowser needs an X display: scripts/test-engines.sh runs WebKit under xvfb-run.
    driver: process.env.WEBKITWEBDRIVER || '/usr/bin/WebKitWebDriver',
    caps: { 'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] } },
  },
};

/** In-page recorder of console lines and uncaught errors, drained by every `t.eval`. */
const RECORDER = `(() => {
  if (window.__e2eWD) return;
  const R = (window.__e2eWD = { console: [], errors: [] });
  const text = (a) => { try { return typeof a === 'string' ? a : (a instanceof Error ? String(a) : JSON.stringify(a)); } catch { return String(a); } };
  // Playwright's names for the console types, so filters written for it work here.
  for (const [m, type] of [['log', 'log'], ['info', 'info'], ['warn', 'warning'], ['error', 'error'], ['debug', 'debug']]) {
    const orig = console[m].bind(console);
    console[m] = (...args) => { R.console.push('[' + type + '] ' + args.map(text).join(' ')); if (R.console.length > 400) R.console.shift(); orig(...args); };
  }
  addEventListener('error', (e) => R.errors.push(String((e.error && e.error.stack) || e.message)));
  addEventListener('unhandledrejection', (e) => R.errors.push('unhandled rejection: ' + String((e.reason && e.reason.stack) || e.reason)));
  R.drain = () => { const out = { console: R.console, errors: R.errors }; R.console = []; R.errors = []; return out; };
})();`;
const INSTRUMENTATION = `${RECORDER}\n${readFileSync(join(E2E, 'pages/lib.js'), 'utf8')}`;

/**
 * Starts the engine's driver on a free port and opens one browser session; returns
 * { engine, driver, bidi, newPage(), close() }. One session per test file: tests keep their
 * preflight-cache entries apart with their own target URLs (`/upload?t=…`).
 */
/** How long one new-session request may take before it is tried again. */
const SESSION_TIMEOUT_MS = 60000;

export async function startSession(engine = ENGINE) {
  const spec = ENGINES[engine];
  if (!spec) throw new Error(`unknown engine ${engine}: expected one of ${Object.keys(ENGINES).join(', ')}`);
  if (!existsSync(spec.driver)) throw new Error(`${spec.driver} is missing: run scripts/ensure-browsers.sh`);
  const port = await freePort();
  const proc = spawn(spec.driver, [`--port=${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (d) => { log = (log + d).slice(-20000); };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  const kill = () => { try { proc.kill('SIGKILL'); } catch { /* gone */ } };
  process.on('exit', kill);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try { await fetch(`${url}/status`); break; } catch { /* not listening yet */ }
    if (proc.exitCode !== null || i > 150) { kill(); throw new Error(`${spec.driver} did not start:\n${log}`); }
    await sleep(100);
  }
  // A browser that never answers the new-session request (seen once with WebKit's MiniBrowser
  // under a loaded Xvfb) would hang the whole run: each try is bounded, and a second one starts
  // a fresh browser.
  let driver;
  for (let attempt = 1; ; attempt++) {
    try {
      driver = WebDriver.createSession(new Executor(new HttpClient(url)), new Capabilities(spec.caps));
      await Promise.race([
        driver.getSession(),
        sleep(SESSION_TIMEOUT_MS).then(() => { throw new Error(`no answer within ${SESSION_TIMEOUT_MS / 1000} s`); }),
      ]);
      break;
    } catch (e) {
      if (attempt < 2) continue;
      kill();
      throw new Error(`${engine}: no session after ${attempt} tries (${e.message})\ndriver log:\n${log}`);
    }
  }
  // Long enough for the longest in-page wait (E.wait with its own timeout).
  await driver.manage().setTimeouts({ script: 300000, pageLoad: 60000 });
  const caps = await driver.getCapabilities();
  let bidi = null;
  if (caps.get('webSocketUrl')) {
    const scripts = await getScriptManager([], driver);
    await scripts.addPreloadScript(`() => { ${INSTRUMENTATION} }`);
    bidi = scripts;
  }
  const session = {
    engine,
    driver,
    bidi,
    browserName: caps.get('browserName'),
    browserVersion: caps.get('browserVersion'),
    get driverLog() { return log; },
    newPage: () => newPage(session),
    async close() {
      try { await driver.quit(); } catch { /* browser already gone */ }
      kill();
    },
  };
  return session;
}

/**
 * A page object in the session's one window, shaped like harness.mjs's Playwright page: `eval(fn,
 * arg)` runs `fn(arg)` in the page and returns its JSON-serialisable result (undefined fields
 * dropped, as Playwright does); `console` and `pageErrors` collect what the page recorded.
 */
export function newPage(session) {
  const { driver } = session;
  const t = {
    session,
    pageErrors: [],
    console: [],
    loadingFailed: [], // CDP-only in the Playwright harness; nothing engine-neutral fills it
    allowPageErrors: false,
    corsErrors: () => [],
    async goto(url) {
      await driver.get(url);
      // Without BiDi preload scripts the helpers arrive after the page's own scripts; they only
      // wait for the library, so that is early enough.
      if (!session.bidi) await driver.executeScript(INSTRUMENTATION);
    },
    async eval(fn, arg) {
      const out = await driver.executeScript(
        `const __arg = JSON.parse(arguments[0]);
         return Promise.resolve((${fn})(__arg)).then((r) => JSON.stringify({ r, log: window.__e2eWD ? window.__e2eWD.drain() : null }));`,
        JSON.stringify(arg ?? null),
      );
      const { r, log } = JSON.parse(out);
      if (log) {
        t.console.push(...log.console);
        t.pageErrors.push(...log.errors);
      }
      return r;
    },
    /** Paths of the resources the page loaded (Resource Timing), e.g. to see where a .wasm came from. */
    resourcePaths() {
      return t.eval(() => performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname));
    },
    async close() { await driver.get('about:blank'); },
  };
  return t;
}

/** Opens `pages/<page>` on the fixture's page origin and waits for the library, as harness.mjs's openUploader. */
export async function openUploader(session, fx, page = 'esm.html') {
  if (!pkgBuilt()) throw new Error(`the package is not built (${PKG}): run \`make build\``);
  const t = newPage(session);
  await t.goto(`${fx.page}/e2e/${page}`);
  await t.eval(() => window.__e2e.rw().then(() => true));
  return t;
}
