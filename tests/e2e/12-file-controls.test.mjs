// §12 Per-file controls: two files, one paused mid-upload while the other completes, then
// resumed; one cancelled mid-upload, then retried (its stored chunks probed, not re-sent). Both
// byte-identical on the server, with exact request counts per file. `method: 'octet'` puts the
// parameters in the URL, so the fixture's log tells the files apart; `--delay-ms` keeps the
// first file mid-upload while the test acts.
import { test, describe, before, after } from 'node:test';
import { startFixture, launchBrowser, openUploader, makeFile, startRun, waitRun, untilRun, untilPageIdle, expectNothingSent, scenario, expectEqual, expectTrue, expectStored, formatLog, summarize, countBy, KiB, TEST_TIMEOUT } from './harness.mjs';

let browser, fx;
before(async () => { [browser, fx] = await Promise.all([launchBrowser(), startFixture({ flags: { 'delay-ms': 150 } })]); });
after(async () => { await browser?.close(); await fx?.stop(); });

const CS = 32 * KiB;
const N_FIRST = 12;
const N_SECOND = 6;
const options = () => ({ target: fx.target(), chunkSize: CS, simultaneousUploads: 2, method: 'octet' });

/** The fixture's /upload log entries of the file with `identifier` (octet: parameters in the query). */
const ofFile = (log, identifier) => log.filter((e) => new URLSearchParams(e.query ?? '').get('resumableIdentifier') === identifier);
const chunkSuccessesOf = (run, identifier) => run.events.filter((e) => e.name === 'chunkSuccess' && e.file === identifier).length;

/** Calls `up[method](arg)` in the page, `arg` being the test file itself, its identifier, or its `UploadFile`. */
function control(t, run, method, name, as) {
  return t.eval(([r, m, n, a]) => {
    const up = window.__e2e.runs[r].up;
    const file = window.__e2e.files[n];
    const snapshot = up.files.find((f) => f.file === file);
    const arg = a === 'file' ? file : a === 'identifier' ? snapshot.identifier : snapshot;
    return up[m](arg);
  }, [run, method, name, as]);
}

/**
 * Makes two files (`N_FIRST` and `N_SECOND` chunks), starts run `run` with them, and waits until
 * the first is mid-upload (3 chunks confirmed): { a, b, idA, idB }.
 */
async function twoFilesMidUpload(t, run, [nameA, nameB], seed) {
  const a = await makeFile(t, nameA, N_FIRST * CS, seed);
  const b = await makeFile(t, nameB, N_SECOND * CS + 100, seed + 1);
  const start = await startRun(t, run, options(), [a.name, b.name]);
  const [idA, idB] = start.added.map((f) => f.identifier);
  await untilRun(t, run, (s) => chunkSuccessesOf(s, idA) >= 3, '3 chunks of the first file');
  return { a, b, idA, idB };
}

describe('§12 per-file pause, resume, retry and cancel', () => {
  test('§12 pause one file mid-upload: the other completes, upload() reports it paused; resumed, both are byte-identical', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      const { a, b, idA, idB } = await twoFilesMidUpload(t, 'p', ['paused.bin', 'other.bin'], 41);
      expectEqual(await control(t, 'p', 'pauseFile', a.name, 'file'), true, 'pauseFile(File) applied');
      expectEqual(await control(t, 'p', 'pauseFile', a.name, 'identifier'), false, 'pauseFile of a paused file');
      expectEqual(await t.eval(() => window.__e2e.runs.p.up.pauseFile('no-such-identifier')), false, 'pauseFile of an unknown file');
      // Arrivals after this marker: at most the first file's 2 requests in flight at the pause.
      const m = await fx.mark('paused');
      const run = await waitRun(t, 'p', 60000);
      expectTrue(run.settled, 'upload() settled once the other file was done', summarize(run));
      expectEqual(run.summary.succeeded.map((f) => f.name), [b.name], 'summary.succeeded');
      expectEqual(run.summary.failed.length, 0, 'summary.failed');
      expectEqual(run.summary.paused.map((f) => [f.name, f.status]), [[a.name, 'paused']], 'summary.paused');
      expectEqual(run.counts.complete ?? 0, 1, 'complete events');
      expectTrue(run.uploading === false, `isUploading() with only a paused file left: ${run.uploading}`);
      const stored = await fx.files();
      expectEqual(stored.map((f) => [f.name, f.sha256]), [[b.name, b.sha256]], 'files on the server while the first is paused');
      // upload() resolved: nothing is in flight; the fixture has served everything it logged.
      const idle = await untilPageIdle(t, 'the requests of the run to end');
      await fx.untilServed();
      const late = ofFile(await fx.apiLog(), idA).filter((e) => e.seq > m.seq);
      expectTrue(late.length <= 2 && late.every((e) => e.method === 'POST'), `requests of the paused file after pauseFile(): at most its 2 chunk POSTs in flight, got ${late.length}`, formatLog(late));
      await expectNothingSent(t, fx, idle.started, 'pauseFile() and the end of the run');

      expectEqual(await control(t, 'p', 'resumeFile', a.name, 'identifier'), true, 'resumeFile(identifier) applied');
      const done = await untilRun(t, 'p', (s) => (s.counts.fileSuccess ?? 0) >= 2, 'the resumed file to finish', 30000);
      expectEqual(done.files.map((f) => f.status), ['success', 'success'], 'statuses after the resume');
      expectEqual([done.counts.uploadStart, done.counts.complete], [2, 2], 'runs started / completed (the resume starts a second run)');
      await expectStored(fx, [a, b]);
      const log = await fx.apiLog();
      expectEqual(countBy(log).OPTIONS ?? 0, 0, 'preflights');
      expectEqual(countBy(ofFile(log, idA)), { GET: 1, POST: N_FIRST }, 'requests of the paused file: one probe, each chunk once', formatLog(ofFile(log, idA)));
      expectEqual(countBy(ofFile(log, idB)), { GET: 1, POST: N_SECOND }, 'requests of the other file', formatLog(ofFile(log, idB)));
      expectTrue(log.every((e) => e.status === 200 || (e.method === 'GET' && e.status === 204)), 'every request answered 200 (204 for the absent first chunks)', formatLog(log));
    });
    await t.close();
  });

  test('§12 cancel one file mid-upload: the other completes; retried, its stored chunks are probed, not re-sent', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await fx.reset();
      const { a, b, idA, idB } = await twoFilesMidUpload(t, 'c', ['cancelled.bin', 'kept.bin'], 43);
      expectEqual(await control(t, 'c', 'cancelFile', a.name, 'snapshot'), true, 'cancelFile(UploadFile) applied');
      expectEqual(await control(t, 'c', 'cancelFile', a.name, 'snapshot'), false, 'cancelFile of a cancelled file');
      const run = await waitRun(t, 'c', 30000);
      expectEqual(run.summary.succeeded.map((f) => f.name), [b.name], 'summary.succeeded');
      expectEqual(run.summary.failed.map((f) => [f.name, f.status]), [[a.name, 'cancelled']], 'summary.failed holds the cancelled file');
      expectEqual(run.summary.paused.length, 0, 'summary.paused');
      // upload() resolved, so the page has nothing in flight; the requests the cancel cut end on
      // the fixture too (logged on arrival, ended with no status).
      await untilPageIdle(t, 'the requests of the run to end');
      await fx.untilServed();
      const m = await fx.mark('cancelled');
      const before = ofFile(await fx.apiLog(), idA);
      const had = new Set(before.filter((e) => e.method === 'POST' && e.status === 200).map((e) => e.chunk));
      expectTrue(had.size >= 3 && had.size < N_FIRST && had.has(1), `chunks of the cancelled file stored before the retry: ${[...had]}`);

      expectEqual(await control(t, 'c', 'retryFile', a.name, 'snapshot'), true, 'retryFile(UploadFile) applied');
      await untilRun(t, 'c', (s) => (s.counts.fileSuccess ?? 0) >= 2, 'the retried file to finish', 30000);
      await expectStored(fx, [a, b]);
      const after = ofFile(await fx.apiLog(), idA).filter((e) => e.seq > m.seq);
      const probes = after.filter((e) => e.method === 'GET');
      const posts = after.filter((e) => e.method === 'POST');
      const sorted = (xs) => [...xs].sort((x, y) => x - y);
      expectEqual(sorted(probes.map((e) => e.chunk)), [...Array(N_FIRST).keys()].map((i) => i + 1), 'after the retry every chunk is probed once', formatLog(after));
      const present = probes.filter((e) => e.status === 200).map((e) => e.chunk);
      expectTrue([...had].every((c) => present.includes(c)), `the stored chunks ${[...had]} probe present: ${present}`, formatLog(after));
      expectEqual(sorted(posts.map((e) => e.chunk)), sorted(probes.filter((e) => e.status === 204).map((e) => e.chunk)), 'after the retry exactly the absent chunks are POSTed', formatLog(after));
      expectEqual(countBy(ofFile(await fx.apiLog(), idB)), { GET: 1, POST: N_SECOND }, 'requests of the other file');
    });
    await t.close();
  });
});
