// §24 Direct to object storage (protocol 's3'): the page PUTs each part to a URL the app's
// server signed (server-fixture's S3 signing role), into moto's S3 server with the bucket's own
// CORS rules. Counts come from the store's request log (PUTs, OPTIONS) and the fixture's log
// (one route per callback); bytes are read back from the bucket.
import { test, describe, before, after } from 'node:test';
import {
  startFixture, startStore, launchBrowser, openUploader, scenario, expectEqual, expectTrue, makeFile,
  startRun, waitRun, callRun, untilRun, fileErrorOf, summarize, MiB, TEST_TIMEOUT,
} from './harness.mjs';
import { s3UploadAndCheck, s3EtagHidden, s3KeyOf, reloadPage } from './scenarios.mjs';

const BUCKET = 'e2e-bucket';
let browser, store, fx;
before(async () => {
  store = await startStore();
  [browser, fx] = await Promise.all([launchBrowser(), startFixture({ flags: { 's3-endpoint': store.url, 's3-bucket': BUCKET } })]);
});
after(async () => { await browser?.close(); await fx?.stop(); await store?.stop(); });

const setCors = (cors) => fx.json('/__fixture/s3/bucket', { method: 'POST', body: JSON.stringify({ cors }) });
/**
 * Requests the store got for the objects named `name` since the log was cleared: { PUT, OPTIONS,
 * parts: [partNumber of each PUT] }. By name: a part of an earlier case's file may still reach
 * the store after that case ended (the browser aborted it, the store had it already).
 */
function storeCounts(name) {
  const objects = store.requests(BUCKET).filter((e) => e.path.startsWith(`/${BUCKET}/`) && e.path.endsWith(`/${name}`));
  const parts = objects.filter((e) => e.method === 'PUT').map((e) => Number(new URLSearchParams(e.query).get('partNumber')));
  const count = (m) => objects.filter((e) => e.method === m).length;
  return { PUT: count('PUT'), OPTIONS: count('OPTIONS'), parts };
}
/** The fixture's calls per S3 route since its stats were reset. */
async function callbackCounts() {
  const s = await fx.stats();
  const n = (p) => s.by_path?.[p] ?? 0;
  return { create: n('/s3/create'), signPart: n('/s3/sign-part'), listParts: n('/s3/list-parts'), complete: n('/s3/complete'), abort: n('/s3/abort') };
}
async function fresh(cors = 'full') {
  await setCors(cors);
  await fx.reset(false);
  store.clearLog();
}
const S3 = (o = {}) => ({ protocol: 's3', chunkSize: 5 * MiB, ...o });
const keyOf = (location) => s3KeyOf(location, BUCKET);

describe('§24 direct to S3 (moto)', () => {
  test('§24 64 MiB in 5 MiB parts: byte-identical in the bucket; 13 PUTs, 13 OPTIONS, 1 create + 13 signPart + 1 complete', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await s3UploadAndCheck(t, fx, store, BUCKET, 's3-64.bin', 64 * MiB);
      const report = await t.eval(() => new window.__RWlib.Uploader({ protocol: 's3', s3: window.__e2e.s3Callbacks('http://x.invalid') }).preflightReport());
      expectEqual([report.test.preflight, report.upload.preflight], [false, true], 'preflightReport (test, upload)', report);
      expectTrue(report.upload.reasons.some((r) => /one preflight per part/.test(r)), 'the report says each part costs a preflight', report);
    });
    await t.close();
  });

  test('§24 bucket CORS without ExposeHeaders ETag: kind cors, phase etag, with the rule to add (no hang)', { timeout: TEST_TIMEOUT }, async () => {
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, () => s3EtagHidden(t, fx, 's3-etag.bin'));
    await t.close();
  });

  test('§24 signUpload: a file of one part is one signed PUT (no create, no complete), byte-identical', { timeout: TEST_TIMEOUT }, async () => {
    await fresh();
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      const f = await makeFile(t, 's3-small.bin', 3 * MiB, 8);
      await startRun(t, 'small', S3(), [{ name: 's3-small.bin', size: 3 * MiB, seed: 8 }], { s3Api: fx.api });
      const run = await waitRun(t, 'small', 60000);
      expectEqual(run.summary?.succeeded?.length, 1, 'files succeeded', summarize(run));
      const puts = store.requests(BUCKET).filter((e) => e.method === 'PUT' && e.path.endsWith('/s3-small.bin'));
      expectEqual(puts.map((e) => new URLSearchParams(e.query).has('partNumber')), [false], 'one PUT, not a part', puts);
      const key = decodeURIComponent(puts[0].path.slice(`/${BUCKET}/`.length));
      const object = await fx.json(`/__fixture/s3/object?key=${encodeURIComponent(key)}`);
      expectEqual([object.size, object.sha256], [f.size, f.sha256], 'the object in the bucket (size, sha256)', object);
      const s = await fx.stats();
      const calls = await callbackCounts();
      expectEqual([calls.create, calls.signPart, calls.complete, s.by_path?.['/s3/sign-upload'] ?? 0], [0, 0, 0, 1], 'create, signPart, complete, signUpload calls', s.by_path);
    });
    await t.close();
  });

  test('§24 bucket without a CORS rule: kind cors with the bucket CORS configuration to add', { timeout: TEST_TIMEOUT }, async () => {
    await fresh('none');
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await startRun(t, 'nocors', S3(), [{ name: 's3-nocors.bin', size: 6 * MiB, seed: 4 }], { s3Api: fx.api });
      const run = await waitRun(t, 'nocors', 60000);
      const e = fileErrorOf(run, 's3-nocors.bin');
      expectEqual(e?.kind, 'cors', 'error kind', e);
      for (const want of [`"AllowedOrigins":["${fx.page}"]`, '"AllowedMethods":["PUT"]', '"ExposeHeaders":["ETag"]', 'MaxAgeSeconds']) {
        expectTrue((e?.hint ?? '').includes(want), `the hint includes ${want}`, e);
      }
      expectTrue(!/X-Amz-Signature/.test(e?.url ?? '') && !/X-Amz-Signature/.test(e?.hint ?? ''), 'no signature in the error', e);
    });
    await t.close();
  });

  test('§24 cancel calls abortMultipartUpload: the store has no upload left', { timeout: TEST_TIMEOUT }, async () => {
    await fresh();
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      await startRun(t, 'cancel', S3({ simultaneousUploads: 1 }), [{ name: 's3-cancel.bin', size: 64 * MiB, seed: 5 }], { s3Api: fx.api });
      await untilRun(t, 'cancel', (r) => (r.counts.chunkSuccess ?? 0) >= 1, 'a part stored');
      await callRun(t, 'cancel', 'cancel');
      const run = await waitRun(t, 'cancel', 60000);
      expectEqual(run.files?.[0]?.status, 'cancelled', 'file status', summarize(run));
      let left;
      // abortMultipartUpload is sent and not awaited: wait (up to 20 s on a loaded machine) for it.
      for (let i = 0; i < 200; i++) {
        // Uploads of files that failed in earlier cases stay (a failed file keeps its upload
        // for a retry): only this file's counts.
        left = (await fx.json('/__fixture/s3/uploads')).filter((u) => u.key.endsWith('/s3-cancel.bin'));
        if (left.length === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const aborts = ((await fx.stats()).log ?? []).filter((e) => e.path === '/s3/abort');
      expectEqual(left, [], 'multipart uploads of the cancelled file left in the store', { aborts, store: store.log().filter((e) => e.method === 'DELETE' || /uploadId/.test(e.query)).slice(-6) });
      expectEqual((await callbackCounts()).abort, 1, 'abortMultipartUpload calls');
    });
    await t.close();
  });

  test('§24 an expired part URL (403 Request has expired) is signed again and retried once', { timeout: TEST_TIMEOUT }, async () => {
    await fresh();
    await fx.json('/__fixture/s3/faults', { method: 'POST', body: JSON.stringify({ expire_part_once: 2 }) });
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      const f = await makeFile(t, 's3-exp.bin', 12 * MiB, 6);
      await startRun(t, 'exp', S3(), [{ name: 's3-exp.bin', size: 12 * MiB, seed: 6 }], { s3Api: fx.api });
      const run = await waitRun(t, 'exp', 60000);
      expectEqual(run.summary?.succeeded?.length, 1, 'files succeeded', summarize(run));
      const success = run.events.find((e) => e.name === 'fileSuccess');
      const object = await fx.json(`/__fixture/s3/object?key=${encodeURIComponent(keyOf(success.text))}`);
      expectEqual(object.sha256, f.sha256, 'the object in the bucket');
      const s = await fx.stats();
      expectEqual([(await callbackCounts()).signPart, s.by_path?.['/s3/expired-url'] ?? 0], [4, 2], 'signPart calls (3 parts + 1 re-sign) and expired-URL requests (preflight + PUT)', s.by_path);
      expectEqual(storeCounts('s3-exp.bin').PUT, 3, 'parts PUT to the store');
    });
    await t.close();
  });

  test('§24 resume: upload() again after a failure lists the parts and sends only the missing ones', { timeout: TEST_TIMEOUT }, async () => {
    await fresh();
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      const f = await makeFile(t, 's3-resume.bin', 64 * MiB, 7);
      await startRun(t, 'res', S3({ simultaneousUploads: 1, maxChunkRetries: 0 }), [{ name: 's3-resume.bin', size: 64 * MiB, seed: 7 }], { s3Api: fx.api });
      await untilRun(t, 'res', (r) => (r.counts.chunkSuccess ?? 0) >= 2, 'two parts stored');
      await setCors('none');
      const failed = await waitRun(t, 'res', 60000);
      expectEqual(failed.files?.[0]?.status, 'error', 'the file failed once the bucket refused the page', summarize(failed));
      const before = failed.events.filter((e) => e.name === 'chunkSuccess').map((e) => e.chunk);
      await setCors('full');
      store.clearLog();
      await callRun(t, 'res', 'upload');
      await untilRun(t, 'res', (r) => r.files?.[0]?.status === 'success', 'the file succeeds', 120000);
      const sc = storeCounts('s3-resume.bin');
      const again = sc.parts.filter((n) => before.includes(n));
      expectEqual(again, [], 'parts confirmed before the failure sent again', { before, sc });
      expectEqual(sc.PUT + before.length <= Math.ceil(64 / 5), true, 'only missing parts sent', { before, sc });
      expectEqual((await callbackCounts()).listParts, 1, 'listParts calls');
      const run = await waitRun(t, 'res', 1000);
      const success = run.events.find((e) => e.name === 'fileSuccess');
      const object = await fx.json(`/__fixture/s3/object?key=${encodeURIComponent(keyOf(success.text))}`);
      expectEqual(object.sha256, f.sha256, 'the object in the bucket');
    });
    await t.close();
  });

  // moto accepts any x-amz-checksum-* header without checking it, and its ListParts shows no
  // part checksum: what the page handed to signPart is checked against the bytes in the bucket,
  // and the store's refusal of altered bytes is stood in for by the fixture (bad_digest_part).
  const checksums = () => fx.json('/__fixture/s3/checksums');
  const partSums = (key, algorithm) => fx.json(`/__fixture/s3/object?key=${encodeURIComponent(key)}&part_size=${5 * MiB}&algorithm=${algorithm}`);

  for (const [algorithm, size] of [['crc32c', 64 * MiB], ['sha256', 11 * MiB]]) {
    test(`§24 checksum ${algorithm}: ${size / MiB} MiB byte-identical; signPart got each part's checksum (S3's base64), equal to the ${algorithm} of that part in the bucket, and signed it into the part URL; 1 OPTIONS per part`, { timeout: TEST_TIMEOUT }, async () => {
      await fresh();
      const t = await openUploader(browser, fx);
      await scenario({ fixtures: [fx], pages: [t] }, async () => {
        const name = `s3-sum-${algorithm}.bin`;
        const f = await makeFile(t, name, size, 12);
        const before = (await checksums()).signed.length;
        // `preprocess` is not called under 's3' (with or without checksum).
        const fnOptions = { preprocess: '() => { window.__preprocessed = (window.__preprocessed || 0) + 1; return Promise.resolve(); }' };
        await startRun(t, 'sum', S3({ checksum: algorithm }), [{ name, size, seed: 12 }], { s3Api: fx.api, fnOptions });
        const run = await waitRun(t, 'sum', 180000);
        expectEqual(run.summary?.succeeded?.length, 1, 'files succeeded', summarize(run));
        const key = keyOf(run.events.find((e) => e.name === 'fileSuccess').text);
        const object = await partSums(key, algorithm);
        expectEqual([object.size, object.sha256], [f.size, f.sha256], 'the object in the bucket (size, sha256)', object);
        const n = Math.ceil(size / (5 * MiB));
        const signed = (await checksums()).signed.slice(before);
        const byPart = signed.sort((a, b) => a.partNumber - b.partNumber).map((c) => c.value);
        expectEqual(byPart, object.parts, 'checksums handed to signPart = the parts in the bucket, hashed', signed);
        const sc = storeCounts(name);
        expectEqual([sc.PUT, sc.OPTIONS], [n, n], 'part PUTs, OPTIONS');
        const puts = store.requests(BUCKET).filter((e) => e.method === 'PUT' && e.path.endsWith(`/${name}`));
        const headers = puts.map((e) => new URLSearchParams(e.query).get('X-Amz-SignedHeaders'));
        expectEqual(headers, Array(n).fill(`host;x-amz-checksum-${algorithm}`), 'the checksum header is signed into every part URL', puts);
        expectEqual(await t.eval(() => window.__preprocessed ?? 0), 0, 'preprocess calls');
      });
      await t.close();
    });
  }

  test('§24 checksum: a part the store refuses as BadDigest is read, hashed and sent again (integrity retries); always refused → kind integrity', { timeout: TEST_TIMEOUT }, async () => {
    await fresh();
    const listed = (await fx.config()).allow_headers;
    // The stand-in answers on the fixture's API origin: its CORS must allow the checksum header.
    await fx.config({ allow_headers: [...listed, 'x-amz-checksum-crc32c'] });
    const t = await openUploader(browser, fx);
    try {
      await scenario({ fixtures: [fx], pages: [t] }, async () => {
        const name = 's3-bad-digest.bin';
        const f = await makeFile(t, name, 11 * MiB, 13);
        const seenBefore = (await checksums()).seen.length;
        await fx.json('/__fixture/s3/faults', { method: 'POST', body: JSON.stringify({ bad_digest_part: 2, bad_digest_times: 2 }) });
        await startRun(t, 'bad', S3({ checksum: 'crc32c', chunkRetryInterval: 100 }), [{ name, size: 11 * MiB, seed: 13 }], { s3Api: fx.api });
        const run = await waitRun(t, 'bad', 120000);
        expectEqual(run.summary?.succeeded?.length, 1, 'files succeeded', summarize(run));
        const retries = run.events.filter((e) => e.name === 'fileRetry');
        expectEqual(retries.map((e) => [e.error?.kind, e.error?.chunk, e.error?.status, e.error?.algorithm]), [['integrity', 2, 400, 'crc32c'], ['integrity', 2, 400, 'crc32c']], 'integrity retries of part 2', retries);
        const { seen, signed } = await checksums();
        const got = seen.slice(seenBefore);
        expectEqual(got.map((s) => [s.part_number, s.header, s.matches_sent_bytes]), [[2, 'x-amz-checksum-crc32c', true], [2, 'x-amz-checksum-crc32c', true]], 'the refused PUTs carried the checksum of the bytes they sent', got);
        const key = keyOf(run.events.find((e) => e.name === 'fileSuccess').text);
        const object = await partSums(key, 'crc32c');
        expectEqual(object.sha256, f.sha256, 'the object in the bucket');
        const part2 = signed.filter((c) => c.partNumber === 2).slice(-3).map((c) => c.value);
        expectEqual(part2, Array(3).fill(object.parts[1]), 'part 2 signed three times with its checksum');
        // Never accepted: the file fails with kind integrity after its retries. One part in
        // flight and no retry delay (a retried part goes first), so no other part's success resets
        // its retry count:
        // attempts = the PUT + maxChunkRetries.
        await fx.json('/__fixture/s3/faults', { method: 'POST', body: JSON.stringify({ bad_digest_part: 1, bad_digest_times: 99 }) });
        await makeFile(t, 's3-never.bin', 6 * MiB, 14);
        await startRun(t, 'never', S3({ checksum: 'crc32c', chunkRetryInterval: 0, maxChunkRetries: 2, simultaneousUploads: 1 }), [{ name: 's3-never.bin', size: 6 * MiB, seed: 14 }], { s3Api: fx.api });
        const never = await waitRun(t, 'never', 120000);
        const e = never.events.find((x) => x.name === 'fileError')?.error;
        expectEqual([e?.kind, e?.chunk, e?.algorithm, e?.status, e?.attempts], ['integrity', 1, 'crc32c', 400, 3], 'the error after maxChunkRetries', summarize(never));
      });
    } finally {
      await fx.json('/__fixture/s3/faults', { method: 'POST', body: JSON.stringify({}) });
      await fx.config({ allow_headers: listed });
      await t.close();
    }
  });

  test('§24 persist: reload mid-upload, the file chosen again: 1 listParts, no second create, the parts the store had are not PUT again, byte-identical', { timeout: TEST_TIMEOUT }, async () => {
    await fresh();
    const t = await openUploader(browser, fx);
    await scenario({ fixtures: [fx], pages: [t] }, async () => {
      const name = 's3-persist.bin';
      const spec = [{ name, size: 32 * MiB, seed: 9 }];
      const opts = S3({ simultaneousUploads: 1, persist: true });
      const f = await makeFile(t, name, 32 * MiB, 9);
      await startRun(t, 'before', opts, spec, { s3Api: fx.api });
      await untilRun(t, 'before', (r) => (r.counts.chunkSuccess ?? 0) >= 2, 'two parts stored');
      await reloadPage(t);
      // The part PUT cut by the reload ends on the store (stored or not) before the count.
      for (let seen = -1; seen !== store.log().length;) {
        seen = store.log().length;
        await new Promise((r) => setTimeout(r, 500));
      }
      const stored = store.requests(BUCKET).filter((e) => e.method === 'PUT' && e.status === 200 && e.path.endsWith(`/${name}`));
      const had = [...new Set(stored.map((e) => Number(new URLSearchParams(e.query).get('partNumber'))))];
      expectTrue(had.length >= 2, 'the store had parts before the reload', had);
      store.clearLog();
      const again = await makeFile(t, name, 32 * MiB, 9);
      expectEqual(again.sha256, f.sha256, 'the file chosen again is the same');
      await startRun(t, 'after', opts, spec, { s3Api: fx.api });
      const run = await waitRun(t, 'after', 180000);
      expectEqual(run.summary?.succeeded?.length, 1, 'files succeeded', summarize(run));
      const calls = await callbackCounts();
      expectEqual([calls.create, calls.listParts], [1, 1], 'createMultipartUpload before the reload only, one listParts after it', calls);
      const sc = storeCounts(name);
      expectEqual(sc.parts.filter((n) => had.includes(n)), [], 'parts the store had, PUT again', { had, sc });
      expectTrue(sc.PUT + had.length <= Math.ceil(32 / 5), 'only the missing parts PUT', { had, sc });
      const success = run.events.find((e) => e.name === 'fileSuccess');
      const object = await fx.json(`/__fixture/s3/object?key=${encodeURIComponent(keyOf(success.text))}`);
      expectEqual([object.size, object.sha256], [f.size, f.sha256], 'the object in the bucket (size, sha256)', object);
    });
    await t.close();
  });
});
