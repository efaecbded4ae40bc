// resumable-wasm's worker part, for the app's own service worker (`background: true`):
//   classic worker: importScripts('/node_modules/resumable-wasm/sw.js');
//   module worker:  import 'resumable-wasm/sw.js';
// It answers the page's question whether it is here, and when one of the library's Background
// Fetch jobs ends it writes every chunk's answer (its HTTP status; 0 for none) into the file's
// durable-resume record, as lines the wasm engine folds in on the next page (a success status
// confirms the chunk). Chunks that failed with a status worth retrying go into a new job after
// the delay the engine gave for that retry; after the last one the page sends them on its next
// visit. It decides nothing else, and touches no event that is not the library's.
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
  const startJob = (reg, job) => reg.backgroundFetch.fetch(`${JOB}${job.tries}:${encodeURIComponent(job.key)}`,
    job.reqs.map((r) => new Request(`${r.url.replace(/#.*/, '')}${CHUNK}${r.chunk}`, r)),
    { title: job.title, uploadTotal: job.reqs.reduce((n, r) => n + r.body.size, 0) });

  G.addEventListener('message', (e) => {
    if (e.data === 'resumable-wasm?' && e.ports && e.ports[0]) e.ports[0].postMessage('resumable-wasm!');
  });

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
    const db = await open();
    const t = db.transaction(['uploads', 'jobs'], 'readwrite');
    const [uploads, jobs] = [t.objectStore('uploads'), t.objectStore('jobs')];
    const done = call((ok, no) => { t.oncomplete = ok; t.onabort = () => no(t.error); });
    const [text, job] = await Promise.all([req(uploads.get(key)), req(jobs.get(key))]);
    let again = null;
    if (job) {
      // No record (the page forgot the upload): nothing to write, nothing to retry.
      if (typeof text === 'string') {
        uploads.put(text + job.reqs.map((r) => `\no ${r.chunk}\t${got.get(r.chunk) || 0}`).join(''), key);
        const failed = job.reqs.filter((r) => {
          const status = got.get(r.chunk) || 0;
          return !job.ok.includes(status) && !job.permanent.includes(status);
        });
        // The user cancelled the job in the browser's UI: no new one.
        if (failed.length && job.tries < job.delays.length && e.type !== 'backgroundfetchabort') {
          again = { ...job, tries: job.tries + 1, reqs: failed };
        }
      }
      if (again) jobs.put(again, key);
      else jobs.delete(key);
    }
    await done;
    if (again) {
      await call((ok) => setTimeout(ok, job.delays[job.tries]));
      await startJob(G.registration, again);
    }
  };
  for (const type of ['backgroundfetchsuccess', 'backgroundfetchfail', 'backgroundfetchabort']) {
    G.addEventListener(type, (e) => e.waitUntil(settle(e)));
  }
})();
