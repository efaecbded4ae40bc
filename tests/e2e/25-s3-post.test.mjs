// §25 Object storage with zero preflights (protocol 's3-post'): one POST policy per file signed by
// the app's server (server-fixture's S3 signing role), every chunk a browser-form POST into moto's
// S3 server (through scripts/moto-server.py, which applies the bucket's CORS rule to form POSTs as
// S3 does), composed into the object by the server (UploadPartCopy). Counts come from the store's
// request log (POSTs, OPTIONS) and the fixture's log (one route per callback); bytes are read
// back from the bucket.
import { test, describe, before, after } from 'node:test';
import {
  startFixture, startStore, launchBrowser, openUploader, scenario, expectEqual, expectTrue, makeFile,
  startRun, waitRun, callRun, untilRun, fileErrorOf, summarize, MiB, TEST_TIMEOUT,
} from './harness.mjs';
import { s3PostUploadAndCheck, s3KeyOf, reloadPage } from './scenarios.mjs';

const BUCKET = 'e2e-post-bucket';
let browser, store, fx;
before(async () => {
  store = await startStore();
  [browser, fx] = await Promise.all([launchBrowser(), startFixture({ flags: { 's3-endpoint': store.url, 's3-bucket': BUCKET } })]);
});
after(async () => { await browser?.close(); await fx?.stop(); await store?.stop(); });

const setCors = (cors) => fx.json('/__fixture/s3/bucket', { method: 'POST', body: JSON.stringify({ cors }) });
/** Requests the store got since its log was cleared: chunk POSTs (form uploads to the bucket itself) and OPTIONS. */
function storeCounts() {
  const log = store.requests(BUCKET);
  return { POST: log.filter((e) => e.method === 'POST' && e.path === `/${BUCKET}` && e.query === '').length, OPTIONS: log.filter((e) => e.method === 'OPTIONS').length };
}
/** The fixture's calls per callback route since its stats were reset. */
async function calls() {
  const s = await fx.stats();
  const n = (p) => s.by_path?.[p] ?? 0;
  return { createUpload: n('/s3/policy'), listChunks: n('/s3/list-chunks'), complete: n('/s3/compose'), abort: n('/s3/discard') };
}
async function fresh(cors = 'post') {
  await setCors(cors);
  await fx.reset(false);
  store.clearLog();
}
const POST = (o = {}) => ({ protocol: 's3-post', chunkSize: 5 * MiB, ...o });
/** The objects left under the chunk prefix of the object at `location` (the fixture's `<key>.chunks/`). */
const chunksLeft = (location) => fx.json(`/__fixture/s3/objects?prefix=${encodeURIComponent(s3KeyOf(location, BUCKET) + '.chunks/')}`);

describe('§25 zero-preflight object storage (s3-post, moto)', () => {
  test('§25 64 MiB in 5 MiB chunks: byte-identical, chunks gone, 13 form POSTs, 0 OPTIONS, 1 createUpload', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await s3PostUploadAndCheck(t, fx, store, BUCKET, 's3p-64.bin', 64 * MiB);
      const report = await t.eval(() => new window.__RWlib.Uploader({ protocol: 's3-post', s3: window.__e2e.s3PostCallbacks('http://x.invalid') }).preflightReport());
      expectEqual([report.test.preflight, report.upload.preflight], [false, false], 'preflightReport (test, upload): no preflight', report);
    });
    await t.close();
  });

  test('§25 bucket without a POST rule (none, or only the multipart PUT rule): kind cors with the POST rule to add', { timeout: TEST_TIMEOUT }, async () => {
    for (const cors of ['none', 'full']) {
      await fresh(cors);
      const t = await openUploader(browser, fx);
      await scenario({ fixtures: [fx], pages: [t] }, async () => {
        const name = `s3p-nocors-${cors}.bin`;
        await startRun(t, name, POST(), [{ name, size: 6 * MiB, seed: 4 }], { s3PostApi: fx.api });
        const run = await waitRun(t, name, 60000);
        const e = fileErrorOf(run, name);
        expectEqual(e?.kind, 'cors', `error kind (bucket CORS ${cors})`, e);
        for (const want of [`"AllowedOrigins":["${fx.page}"]`, '"AllowedMethods":["POST"]', `${store.url}/${BUCKET} has no CORS rule`]) {
          expectTrue((e?.hint ?? '').includes(want), `the hint includes ${want}`, e);
        }
        expectTrue(!/x-amz-signature|policy=/i.test(`${e?.url} ${e?.hint}`), 'no policy or signature in the error', e);
        expectEqual(storeCounts().OPTIONS, 0, 'OPTIONS at the store');
      });
      await t.close();
    }
  });

  test('§25 resume: upload() again after a failure asks listChunks once and sends only the missing chunks', { timeout: TEST_TIMEOUT }, async () => {
    await fresh();
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      const name = 's3p-resume.bin';
      const f = await makeFile(t, name, 64 * MiB, 7);
      await startRun(t, 'res', POST({ simultaneousUploads: 1, maxChunkRetries: 0 }), [{ name, size: 64 * MiB, seed: 7 }], { s3PostApi: fx.api });
      await untilRun(t, 'res', (r) => (r.counts.chunkSuccess ?? 0) >= 2, 'two chunks stored');
      await setCors('none');
      const failed = await waitRun(t, 'res', 60000);
      expectEqual([failed.files?.[0]?.status, fileErrorOf(failed, name)?.kind], ['error', 'cors'], 'the file failed once the bucket refused the page', summarize(failed));
      const before = failed.events.filter((e) => e.name === 'chunkSuccess').map((e) => e.chunk);
      const seen = failed.events.length;
      await setCors('post');
      store.clearLog();
      await callRun(t, 'res', 'upload');
      await untilRun(t, 'res', (r) => r.files?.[0]?.status === 'success', 'the file succeeds', 120000);
      const run = await waitRun(t, 'res', 1000);
      const after = run.events.slice(seen).filter((e) => e.name === 'chunkSuccess').map((e) => e.chunk);
      expectEqual(after.filter((n) => before.includes(n)), [], 'chunks confirmed before the failure sent again', { before, after });
      const sc = storeCounts();
      expectEqual(sc.POST, after.length, 'chunk POSTs after the retry (one per chunk confirmed then)', { sc, after });
      expectTrue(sc.POST + before.length <= 13, 'only missing chunks sent', { before, sc });
      expectEqual(await calls(), { createUpload: 1, listChunks: 1, complete: 1, abort: 0 }, 'callbacks: the policy of the first run serves the retry');
      const success = run.events.find((e) => e.name === 'fileSuccess');
      const object = await fx.json(`/__fixture/s3/object?key=${encodeURIComponent(s3KeyOf(success.text, BUCKET))}`);
      expectEqual(object.sha256, f.sha256, 'the object in the bucket');
      expectEqual(await chunksLeft(success.text), [], 'temporary chunk objects left');
    });
    await t.close();
  });

  test('§25 an expired policy (403 Policy expired) is fetched again once with the same prefix; expired again: the file fails', { timeout: TEST_TIMEOUT }, async () => {
    await fresh();
    await fx.json('/__fixture/s3/faults', { method: 'POST', body: JSON.stringify({ expire_policy: 1 }) });
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      const f = await makeFile(t, 's3p-exp.bin', 12 * MiB, 6);
      await startRun(t, 'exp', POST(), [{ name: 's3p-exp.bin', size: 12 * MiB, seed: 6 }], { s3PostApi: fx.api });
      const run = await waitRun(t, 'exp', 60000);
      expectEqual(run.summary?.succeeded?.length, 1, 'files succeeded', summarize(run));
      const success = run.events.find((e) => e.name === 'fileSuccess');
      const object = await fx.json(`/__fixture/s3/object?key=${encodeURIComponent(s3KeyOf(success.text, BUCKET))}`);
      expectEqual(object.sha256, f.sha256, 'the object in the bucket');
      const s = await fx.stats();
      const policies = (s.log ?? []).filter((e) => e.path === '/s3/policy');
      expectEqual(policies.length, 2, 'createUpload calls (the first policy, then once more)', s.by_path);
      expectTrue((s.by_path?.['/s3/expired-url'] ?? 0) >= 1, 'chunks were refused under the expired policy', s.by_path);
      expectEqual(storeCounts(), { POST: 3, OPTIONS: 0 }, 'chunk POSTs and OPTIONS at the store');
      expectEqual(await chunksLeft(success.text), [], 'temporary chunk objects left');

      await fx.json('/__fixture/s3/faults', { method: 'POST', body: JSON.stringify({ expire_policy: 2 }) });
      await fx.reset(false);
      await startRun(t, 'exp2', POST(), [{ name: 's3p-exp2.bin', size: 12 * MiB, seed: 9 }], { s3PostApi: fx.api });
      const failed = await waitRun(t, 'exp2', 60000);
      const e = fileErrorOf(failed, 's3p-exp2.bin');
      expectEqual([e?.kind, e?.status], ['http', 403], 'a policy refused again fails the file', e);
      expectEqual((await calls()).createUpload, 2, 'createUpload calls: fetched again once, not more');
    });
    await t.close();
  });

  test('§25 cancel calls abort: the chunks stored so far are deleted', { timeout: TEST_TIMEOUT }, async () => {
    await fresh();
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await startRun(t, 'cancel', POST({ simultaneousUploads: 1 }), [{ name: 's3p-cancel.bin', size: 64 * MiB, seed: 5 }], { s3PostApi: fx.api });
      await untilRun(t, 'cancel', (r) => (r.counts.chunkSuccess ?? 0) >= 3, 'three chunks stored');
      await callRun(t, 'cancel', 'cancel');
      const run = await waitRun(t, 'cancel', 60000);
      expectEqual(run.files?.[0]?.status, 'cancelled', 'file status', summarize(run));
      let left;
      // abort is sent and not awaited: wait (up to 20 s on a loaded machine) for it. The one chunk
      // in flight at the cancel may still land in the store after abort listed the prefix (the
      // browser aborted its request, but a simple POST may be stored regardless): at most that
      // one is left, of the three or more stored.
      // (moto once answered the listing 500 while the aborted chunk's POST was being stored,
      // seemingly its bucket changing under the listing: such a listing is asked again.)
      for (let i = 0; i < 200; i++) {
        const objects = await fx.json('/__fixture/s3/objects?prefix=uploads/').catch(() => null);
        left = objects?.filter((o) => o.key.includes('/s3p-cancel.bin.chunks/')) ?? left;
        if (objects && left.length <= 1 && (await calls()).abort === 1) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expectTrue(left.length <= 1, 'chunks of the cancelled file left in the store: at most the one in flight', left);
      expectEqual((await calls()).abort, 1, 'abort calls');
    });
    await t.close();
  });

  /**
   * `persist`: `size` bytes uploaded under `opts` (persist on) until two chunks are stored, the
   * page reloaded, then the file resumed — chosen again, or (`kept`) from `resumePending()` with
   * the file kept whole. After the reload: 1 createUpload given the kept keyPrefix, 1 listChunks,
   * no chunk the store had POSTed again (form POSTs counted per key), every chunk stored once,
   * the object byte-identical, no chunk object left, 0 OPTIONS, nothing left in pending().
   */
  async function reloadAndResume(name, size, opts, kept) {
    await fresh();
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      const spec = [{ name, size, seed: 9 }];
      const count = Math.ceil(size / (5 * MiB));
      const f = await makeFile(t, name, size, 9);
      await startRun(t, 'before', opts, spec, { s3PostApi: fx.api });
      await untilRun(t, 'before', (r) => (r.counts.chunkSuccess ?? 0) >= 2, 'two chunks stored');
      await reloadPage(t);
      // The chunk POST cut by the reload ends on the store (stored or not) before the count.
      for (let seen = -1; seen !== store.log().length;) {
        seen = store.log().length;
        await new Promise((r) => setTimeout(r, 500));
      }
      const ours = (posts) => posts.filter((p) => p.key.includes(`/${name}.chunks/`));
      const before = ours(store.formPosts());
      const prefix = before[0]?.key.replace(/[^/]*$/, '');
      const had = [...new Set(before.filter((p) => p.status >= 200 && p.status < 300).map((p) => Number(p.key.slice(prefix.length))))];
      expectTrue(had.length >= 2 && had.length < count, 'the store had some chunks before the reload', { before, count });
      expectEqual(storeCounts().OPTIONS, 0, 'OPTIONS at the store before the reload');
      store.clearLog();
      await fx.reset(false);
      const pendingNow = () => t.eval(([o, api]) => window.__e2e.pending({ ...o, s3: window.__e2e.s3PostCallbacks(api) }), [opts, fx.api]);
      const pending = await pendingNow();
      expectEqual(pending.map((p) => [p.name, p.size, p.file]), [[name, size, kept]], 'pending() after the reload');
      // Counted in the record's 5 MiB parts, and never 'success' before `complete` answered.
      expectEqual(pending[0].status, 'pending', 'pending() status after the reload');
      expectTrue(pending[0].confirmed % (5 * MiB) === 0 && pending[0].confirmed >= 2 * 5 * MiB && pending[0].confirmed <= had.length * 5 * MiB,
        'pending() confirmed: whole parts, at least the two seen, at most what the store had', { confirmed: pending[0].confirmed, had });
      if (kept) {
        await startRun(t, 'after', opts, [], { s3PostApi: fx.api, resumePending: true });
      } else {
        const again = await makeFile(t, name, size, 9);
        expectEqual(again.sha256, f.sha256, 'the file chosen again is the same');
        await startRun(t, 'after', opts, spec, { s3PostApi: fx.api });
      }
      const run = await waitRun(t, 'after', 180000);
      expectEqual(run.summary?.succeeded?.length, 1, 'files succeeded', summarize(run));
      expectEqual(await calls(), { createUpload: 1, listChunks: 1, complete: 1, abort: 0 }, 'callbacks after the reload');
      expectEqual(await t.eval(() => window.__e2e.s3PostAsked), [prefix], 'createUpload after the reload was given the kept keyPrefix');
      const after = ours(store.formPosts());
      expectTrue(after.every((p) => p.key.startsWith(prefix)), 'chunks after the reload go under the kept prefix', { prefix, after });
      const sent = after.map((p) => Number(p.key.slice(prefix.length)));
      expectEqual(sent.filter((n) => had.includes(n)), [], 'chunks the store had, POSTed again', { had, sent });
      expectEqual(sent.length, new Set(sent).size, 'each missing chunk POSTed once', sent);
      expectEqual([...had, ...sent].sort((a, b) => a - b), Array.from({ length: count }, (_, i) => i + 1), 'chunks before and after the reload: every chunk once');
      expectEqual(storeCounts().OPTIONS, 0, 'OPTIONS at the store after the reload');
      const success = run.events.find((e) => e.name === 'fileSuccess');
      expectEqual(s3KeyOf(success.text, BUCKET) + '.chunks/', prefix, 'the object is the kept prefix\'s');
      const object = await fx.json(`/__fixture/s3/object?key=${encodeURIComponent(s3KeyOf(success.text, BUCKET))}`);
      expectEqual([object.size, object.sha256], [f.size, f.sha256], 'the object in the bucket (size, sha256)', object);
      expectEqual(await chunksLeft(success.text), [], 'temporary chunk objects left');
      expectEqual(await pendingNow(), [], 'pending() once the file succeeded: the record is deleted');
    });
    await t.close();
  }

  test('§25 persist: reload mid-upload, the file chosen again: 1 createUpload with the kept keyPrefix, 1 listChunks, no chunk the store had POSTed again, byte-identical, chunks gone, 0 OPTIONS', { timeout: TEST_TIMEOUT }, async () => {
    await reloadAndResume('s3p-persist.bin', 64 * MiB, POST({ simultaneousUploads: 1, persist: true }), false);
  });

  test('§25 persist: reload mid-upload, the file kept whole and resumed by resumePending(): the same', { timeout: TEST_TIMEOUT }, async () => {
    await reloadAndResume('s3p-kept.bin', 30 * MiB, POST({ simultaneousUploads: 1, persist: true, persistBlobMaxBytes: 32 * MiB }), true);
  });
});
