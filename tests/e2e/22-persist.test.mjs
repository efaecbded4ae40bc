// §22 Durable resume (`persist`): an unfinished upload resumes after a reload or a browser
// restart from the record IndexedDB kept — only the chunks the record lacks are POSTed (counted on
// the fixture), at most one probe per resumed file, bytes equal; a small file is kept whole and a
// file handle is reopened, so nothing need be chosen again; a changed file is refused; a server
// that lost the upload gets all of it again; a failing store (IndexedDB throwing, quota exceeded)
// warns once and the upload goes on.
import { test, describe, before, after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import {
  E2E, CHROMIUM, chromiumArgs, startFixture, launchBrowser, openUploader, makeFile, runUpload, scenario, expectEqual,
  expectTrue, expectStored, countBy, formatLog, summarize, KiB, MiB, TEST_TIMEOUT,
} from './harness.mjs';
import { expectReloadResume, expectKeptFileResume, interruptPersistedUpload, expectResumedFromRecord, pendingIn, reloadPage } from './scenarios.mjs';

let browser, fx;
const dirs = [];
before(async () => { [browser, fx] = await Promise.all([launchBrowser(), startFixture({ flags: { 'delay-ms': 120 } })]); });
after(async () => {
  await browser?.close();
  await fx?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const reload = async (t) => { await reloadPage(t); return t; };

/**
 * Chromium on a persistent profile (`--user-data-dir`), shaped like harness.mjs's page object,
 * with the uploader page open: closing it and calling this again on the same directory is a
 * browser restart with its IndexedDB and origin private file system.
 */
async function openProfile(dir) {
  const context = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, args: chromiumArgs });
  await context.addInitScript({ path: join(E2E, 'pages/lib.js') });
  const page = context.pages()[0] ?? (await context.newPage());
  const t = {
    context, page, pageErrors: [], console: [], loadingFailed: [], allowPageErrors: false,
    eval: (fn, arg) => page.evaluate(fn, arg),
    goto: (url) => page.goto(url, { waitUntil: 'load' }),
    close: () => context.close(),
  };
  page.on('pageerror', (e) => t.pageErrors.push(String(e && e.stack ? e.stack : e)));
  page.on('console', (m) => t.console.push(`[${m.type()}] ${m.text()}`));
  await t.goto(`${fx.page}/e2e/esm.html`);
  await t.eval(() => window.__e2e.rw().then(() => true));
  return t;
}

/** A browser restart: the profile's browser closed, then launched again on the same profile. */
const restart = (dir) => async (t) => {
  await t.close();
  return openProfile(dir);
};

describe('§22 durable resume (persist)', () => {
  test('§22 reload mid-upload of 32 MiB, the file chosen again: only the chunks the record lacks are POSTed, ≤ 1 probe, bytes equal', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, () => expectReloadResume(t, fx, { name: 'persist-32m.bin', size: 32 * MiB, chunkSize: MiB }));
    await t.close();
  });

  test('§22 reload mid-upload of a small file: resumePending() alone finishes it from the kept Blob', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, () => expectKeptFileResume(t, fx, { name: 'persist-kept.bin', size: 16 * 64 * KiB, chunkSize: 64 * KiB }));
    await t.close();
  });

  test('§22 browser restart (same profile) with a kept small file: resumePending() finishes it', { timeout: TEST_TIMEOUT }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rw-profile-'));
    dirs.push(dir);
    let t = await openProfile(dir);
    const pages = [t];
    await scenario({ fixtures: [fx], pages }, async () => {
      t = await expectKeptFileResume(t, fx, { name: 'persist-restart.bin', size: 16 * 64 * KiB, chunkSize: 64 * KiB, interrupt: restart(dir) });
    });
    await t.close();
  });

  test('§22 browser restart with a FileSystemFileHandle (origin private file system, 6 MiB: above persistBlobMaxBytes): resumePending() reopens it', { timeout: TEST_TIMEOUT }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rw-profile-'));
    dirs.push(dir);
    let t = await openProfile(dir);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      const chunkSize = 256 * KiB;
      const n = 24;
      const opts = { target: fx.target(), chunkSize, simultaneousUploads: 2, persist: true };
      const f = await t.eval(() => window.__e2e.opfsFile('persist-handle.bin', 24 * 256 * 1024, 71));
      const r = await interruptPersistedUpload(t, fx, opts, f, 6, restart(dir), { opfs: f.name });
      t = r.t;
      expectEqual([r.pending.file, r.pending.handle], [false, true], 'pending(): the handle is kept, not the bytes', r.pending);
      const run = await runUpload(t, opts, [], { timeoutMs: 120000, extra: { resumePending: true } });
      await expectResumedFromRecord(fx, f, run, { n, chunkSize, stored: r.stored, since: r.maxSeq, pending: r.pending });
      expectEqual(await pendingIn(t, opts), [], 'pending() once the file succeeded');
    });
    await t.close();
  });

  test('§22 a file changed since its upload began (same name and size, another lastModified) → rejected, rule changed, nothing sent', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      const opts = { target: fx.target(), chunkSize: 64 * KiB, simultaneousUploads: 2, persist: true };
      const f = await makeFile(t, 'persist-changed.bin', 16 * 64 * KiB, 61);
      const r = await interruptPersistedUpload(t, fx, opts, f, 4, reload);
      await makeFile(t, f.name, f.size, 62); // another version: other bytes, other lastModified
      const run = await runUpload(t, opts, [f.name]);
      const rejected = (run.events ?? []).filter((e) => e.name === 'fileRejected').map((e) => [e.error.kind, e.error.rule]);
      expectEqual(rejected, [['rejected', 'changed']], 'fileRejected of the changed file', summarize(run));
      const after = (await fx.apiLog()).filter((e) => e.seq > r.maxSeq);
      expectEqual(after.length, 0, 'requests after the changed file was refused', formatLog(after));
    });
    await t.close();
  });

  test('§22 the server lost the upload (fixture reset): the kept record is verified once, then every chunk is uploaded again', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      const n = 16;
      const opts = { target: fx.target(), chunkSize: 64 * KiB, simultaneousUploads: 2, persist: true };
      const f = await makeFile(t, 'persist-lost.bin', n * 64 * KiB, 63);
      const r = await interruptPersistedUpload(t, fx, opts, f, 4, reload);
      expectTrue(r.pending.confirmed > 0, 'the record has confirmed chunks', r.pending);
      await fx.reset();
      await makeFile(t, f.name, f.size, 63);
      const run = await runUpload(t, opts, [f.name], { timeoutMs: 120000 });
      await expectStored(fx, [f], run);
      const log = await fx.apiLog();
      const posts = log.filter((e) => e.method === 'POST').map((e) => e.chunk).sort((a, b) => a - b);
      expectEqual(posts, [...Array(n).keys()].map((i) => i + 1), 'every chunk POSTed once after the reset', formatLog(log));
    });
    await t.close();
  });

  // With `checksum`, the record keeps each confirmed chunk's CRC-32C, so the resumed upload
  // sends the whole-file digest without reading the kept chunks; a record written without
  // `checksum` has none, and the kept chunks are then read and hashed in the page, not sent.
  for (const [first, label] of [['crc32c', 'the record keeps the chunk CRCs'], [false, 'a record written without checksum: the kept chunks are hashed locally']]) {
    test(`§22 persist + checksum 'crc32c', reload mid-upload, the file chosen again (${label}): only the missing chunks POSTed, the fixture verified the page's file digest`, { timeout: TEST_TIMEOUT }, async () => {
      const t = await openUploader(browser, fx);
      await scenario({ fixtures: [fx], pages: [t] }, async () => {
        await fx.reset();
        const n = 16;
        const chunkSize = 64 * KiB;
        const opts = { target: fx.target(), chunkSize, simultaneousUploads: 2, persist: true, checksum: 'crc32c' };
        const f = await makeFile(t, `persist-checksum-${first || 'off'}.bin`, n * chunkSize, 73);
        const r = await interruptPersistedUpload(t, fx, { ...opts, checksum: first }, f, 4, reload);
        await makeFile(t, f.name, f.size, 73);
        const run = await runUpload(t, opts, [f.name], { timeoutMs: 120000 });
        await expectResumedFromRecord(fx, f, run, { n, chunkSize, stored: r.stored, since: r.maxSeq, pending: r.pending });
        const s = (await fx.files()).find((x) => x.name === f.name);
        expectEqual([s?.checksum?.algorithm, s?.checksum?.value], ['crc32c', s?.crc32c], `the file digest the page sent for ${f.name}, verified by the fixture`, s);
      });
      await t.close();
    });
  }

  test('§22 IndexedDB throwing: one persistWarning, the upload completes', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      await t.eval(() => { indexedDB.open = () => { throw new DOMException('IndexedDB is not available here', 'InvalidStateError'); }; });
      const f = await makeFile(t, 'persist-noidb.bin', 8 * 64 * KiB, 65);
      const run = await runUpload(t, { target: fx.target(), chunkSize: 64 * KiB, persist: true }, [f.name]);
      await expectStored(fx, [f], run);
      const warnings = (run.events ?? []).filter((e) => e.name === 'persistWarning');
      expectEqual(warnings.map((w) => w.error.name), ['InvalidStateError'], 'persistWarning events (what the store threw)', summarize(run));
    });
    await t.close();
  });

  test('§22 quota exceeded part-way (a store that throws QuotaExceededError from its 4th write): one persistWarning, the upload completes, nothing is resumed later', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      await t.eval(() => {
        const put = IDBObjectStore.prototype.put;
        let writes = 0;
        IDBObjectStore.prototype.put = function (...args) {
          if (++writes > 3) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
          return put.apply(this, args);
        };
      });
      const opts = { target: fx.target(), chunkSize: 64 * KiB, simultaneousUploads: 1, persist: true };
      const f = await makeFile(t, 'persist-quota.bin', 12 * 64 * KiB, 67);
      const run = await runUpload(t, opts, [f.name], { timeoutMs: 120000 });
      await expectStored(fx, [f], run);
      const warnings = (run.events ?? []).filter((e) => e.name === 'persistWarning');
      expectEqual(warnings.map((w) => w.error.name), ['QuotaExceededError'], 'persistWarning events', summarize(run));
      await reloadPage(t); // IndexedDB as a fresh page finds it: no write throws any more
      expectEqual(await pendingIn(t, opts), [], 'pending() after the failed store: nothing half-written is left to resume');
    });
    await t.close();
  });

  test('§22 a real quota (the origin\'s quota lowered to 256 KiB with CDP Storage.overrideQuotaForOrigin): the kept 1 MiB file does not fit, one persistWarning, the upload completes, nothing to resume', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      await t.cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(fx.page).origin, quotaSize: 256 * KiB });
      const opts = { target: fx.target(), chunkSize: 64 * KiB, persist: true };
      const f = await makeFile(t, 'persist-real-quota.bin', 16 * 64 * KiB, 69);
      const run = await runUpload(t, opts, [f.name], { timeoutMs: 120000 });
      await expectStored(fx, [f], run);
      const warnings = (run.events ?? []).filter((e) => e.name === 'persistWarning');
      expectEqual(warnings.map((w) => w.error.name), ['QuotaExceededError'], 'persistWarning events', summarize(run));
      await reloadPage(t);
      expectEqual(await pendingIn(t, opts), [], 'pending() after the quota ran out');
    });
    await t.close();
  });
});

describe('§22 handles from the picker and from drops', () => {
  // A headless browser opens no file picker and has no drag from the OS: the page's
  // showOpenFilePicker and DataTransferItem.getAsFileSystemHandle hand out a real handle of the
  // origin private file system instead. What is checked is the library's side: with `persist`,
  // assignBrowse uses the picker (never the <input>) and assignDrop asks each dropped item for
  // its handle, and the handle is kept (listed after a reload); without `persist`, neither.
  test('§22 assignBrowse uses showOpenFilePicker and assignDrop getAsFileSystemHandle with persist (the handles are kept); without persist, the <input> and entries', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      await fx.config({ delay_ms: 400 }); // the uploads stay unfinished until the reload
      const opts = { target: fx.target(), chunkSize: 256 * KiB, simultaneousUploads: 1, persist: true };
      await t.eval(() => Promise.all([window.__e2e.opfsFile('picked.bin', 5 * 1024 * 1024, 81), window.__e2e.opfsFile('dropped.bin', 5 * 1024 * 1024, 82)]));
      const wire = (o) => t.eval(async (options) => {
        const root = await navigator.storage.getDirectory();
        const picked = await root.getFileHandle('picked.bin');
        const dropped = await root.getFileHandle('dropped.bin');
        const seen = (window.__seen = { picker: 0, input: 0, handles: 0, added: [] });
        window.showOpenFilePicker = async () => { seen.picker++; return [picked]; };
        DataTransferItem.prototype.getAsFileSystemHandle = async function () { seen.handles++; return dropped; };
        const up = (window.__up = new (await window.__e2e.rw()).Uploader(options));
        up.on('filesAdded', (fs) => { seen.added.push(...fs.map((f) => f.name)); up.upload(); });
        const button = Object.assign(document.createElement('button'), { id: 'browse', textContent: 'choose' });
        const zone = Object.assign(document.createElement('div'), { id: 'zone', textContent: 'drop' });
        document.body.append(button, zone);
        up.assignBrowse(button);
        button.querySelector('input').addEventListener('click', (e) => { if (!e.defaultPrevented) { seen.input++; e.preventDefault(); } });
        up.assignDrop(zone);
        return true;
      }, o);
      const drop = () => t.eval(async () => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(10)], 'dropped.bin'));
        document.getElementById('zone').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      });
      const seen = () => t.eval(() => ({ ...window.__seen }));

      await wire(opts);
      await t.page.click('#browse');
      await drop();
      await t.page.waitForFunction(() => window.__seen.added.length === 2, null, { timeout: 15000 });
      const s = await seen();
      expectEqual([s.picker, s.input, s.handles, [...s.added].sort()], [1, 0, 1, ['dropped.bin', 'picked.bin']], 'with persist: picker calls, <input> clicks, handles asked of drops, files added', s);
      await t.page.waitForTimeout(500); // each record is written when its file is added
      await reloadPage(t);
      const kept = (await pendingIn(t, opts)).map((p) => [p.name, p.file, p.handle]).sort();
      expectEqual(kept, [['dropped.bin', false, true], ['picked.bin', false, true]], 'pending() after the reload: both kept as handles');

      await wire({ ...opts, persist: false });
      await t.page.click('#browse');
      await drop();
      await t.page.waitForTimeout(500);
      const w = await seen();
      expectEqual([w.picker, w.input, w.handles], [0, 1, 0], 'without persist: picker calls, <input> clicks, handles asked of drops', w);
      await fx.config({ delay_ms: 0 });
    });
    await t.close();
  });
});
