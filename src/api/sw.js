// resumable-wasm's worker part, for the app's own service worker (`background: true`):
//   classic worker: importScripts('/node_modules/resumable-wasm/sw.js');
//   module worker:  import 'resumable-wasm/sw.js';
// It answers the page's question whether it is here, and when one of the library's Background
// Fetch jobs ends it writes every chunk's answer (its HTTP status; 0 for none) into the file's
// durable-resume record, as lines the wasm engine folds in on the next page (a success status
// confirms the chunk). Chunks that failed with a status worth retrying it sends again itself,
// after the delay the engine gave for each retry; after the last one the page sends them on its
// next visit. It decides nothing else, and touches no event that is not the library's.
(() => {
  const G = self;
  const call = (f) => new Promise(f);
  const req = (r) => call((ok, no) => { r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
  // The page's database (dom.js opens it the same way).
  const open = () => call((ok, no) => {
    const r = G.indexedDB.open('resumable-wasm', 2);
    r.onupgradeneeded = () => ['uploads', 'files', 'jobs']
      .forEach((n) => r.result.objectStoreNames.contains(n) || r.result.createObjectStore(n));
    r.onsuccess = () => ok(r.result);
    r.onerror = () => no(r.error);
  });
  // As in dom.js: the job id names the record; each URL's fragment (never sent) its chunk.
  const JOB = 'resumable-wasm:';
  const CHUNK = '#rw-chunk=';

  G.addEventListener('message', (e) => {
    if (e.data === 'resumable-wasm?' && e.ports && e.ports[0]) e.ports[0].postMessage('resumable-wasm!');
  });

  // Appends the answers `got` (chunk → status) of `reqs` (default: the job's) to the record
  // of `key`; resolves with the job kept under `key` (undefined when there is none, or no
  // record any more: the page forgot the upload), deleted when `last`.
  const note = async (key, got, last, reqs) => {
    const t = (await open()).transaction(['uploads', 'jobs'], 'readwrite');
    const [uploads, jobs] = [t.objectStore('uploads'), t.objectStore('jobs')];
    const done = call((ok, no) => { t.oncomplete = ok; t.onabort = () => no(t.error); });
    const [text, job] = await Promise.all([req(uploads.get(key)), req(jobs.get(key))]);
    const kept = typeof text === 'string';
    if (kept) uploads.put(text + (reqs || (job ? job.reqs : [])).map((r) => `\no ${r.chunk}\t${got.get(r.chunk) || 0}`).join(''), key);
    if (last || !kept) jobs.delete(key);
    await done;
    return kept ? job : undefined;
  };

  const settle = async (e) => {
    const bg = e.registration;
    if (!bg.id.startsWith(JOB)) return;
    const key = decodeURIComponent(bg.id.slice(bg.id.indexOf(':', JOB.length) + 1));
    const got = new Map();
    for (const rec of await bg.matchAll().catch(() => [])) {
      const at = rec.request.url.indexOf(CHUNK);
      if (at < 0) continue;
      got.set(+rec.request.url.slice(at + CHUNK.length), await rec.responseReady.then((r) => r.status, () => 0));
    }
    // The user cancelled the job in the browser's UI: nothing is sent again.
    const retrying = e.type !== 'backgroundfetchabort';
    const job = await note(key, got, !retrying);
    if (!job || !retrying) return;
    // Chromium lets only pages start jobs: the worker part sends the chunks that failed with a
    // status worth another try (or got no answer) itself, while this event keeps it alive,
    // after the engine's delay for each retry; what is left goes to the page's next visit.
    const failing = (answers) => (r) => {
      const status = answers.get(r.chunk) || 0;
      return !job.ok.includes(status) && !job.permanent.includes(status);
    };
    let reqs = job.reqs.filter(failing(got));
    for (let n = 0; reqs.length && n < job.delays.length; n++) {
      await call((ok) => setTimeout(ok, job.delays[n]));
      const now = new Map();
      for (const r of reqs) now.set(r.chunk, await fetch(new Request(r.url, r)).then((res) => res.status, () => 0));
      if (!(await note(key, now, false, reqs))) return;
      reqs = reqs.filter(failing(now));
    }
    await note(key, got, true, []);
  };

  for (const type of ['backgroundfetchsuccess', 'backgroundfetchfail', 'backgroundfetchabort']) {
    G.addEventListener(type, (e) => e.waitUntil(settle(e)));
  }
})();
