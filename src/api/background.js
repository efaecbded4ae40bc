// The page part of `background` (Background Fetch), loaded by the glue (dom.js) with `import()`
// the first time an uploader with the option calls `upload()` or `pending()`: pages without the
// option never download it. It sits beside the ES-module glue and beside the script-tag build
// (scripts/build.sh copies it to both). Plain browser glue: the wasm decides which chunks a job
// sends and what their requests are, and reads the outcomes back (src/engine/background.rs).
const G = globalThis;
const call = (f) => new Promise(f);

// A job's id names its record (a retry job of the worker part counts up `n`); each request's URL
// carries its chunk number in a fragment (never sent) so that the worker part can tell the job's
// records apart. sw.js has the same two lines.
const JOB = 'resumable-wasm:';
const startJob = (reg, job) => reg.backgroundFetch.fetch(`${JOB}${job.tries}:${encodeURIComponent(job.key)}`,
  job.reqs.map((r) => new Request(`${r.url.replace(/#.*/, '')}#rw-chunk=${r.chunk}`, r)),
  { title: job.title, uploadTotal: job.reqs.reduce((n, r) => n + r.body.size, 0) });

// The app's service worker registration, when it can run jobs and includes the worker part
// (which answers this page's question); else why not: 'unsupported' or 'no-worker'.
const workerPart = async () => {
  if (typeof G.BackgroundFetchManager !== 'function') return [null, 'unsupported'];
  const reg = await G.navigator.serviceWorker.getRegistration().catch(() => null);
  const ours = reg && reg.active && reg.backgroundFetch && await call((done) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = (e) => done(e.data === 'resumable-wasm!');
    reg.active.postMessage('resumable-wasm?', [ch.port2]);
    setTimeout(() => done(false), 3000);
  });
  return ours ? [reg] : [null, 'no-worker'];
};

// A file's job from the engine's text (first line: what every request shares; then one line per
// chunk), each request as the page would send it: multipart `FormData` or the raw slice. The
// body is made a Blob once, so that the worker part can send it again; a multipart one keeps the
// Content-Type (with its boundary, whose case the Blob's type would lose) as a header.
const jobOf = async (key, file, text) => {
  const [head, ...lines] = text.split('\n');
  const [name, field, method, cred, common, ...lists] = head.split('\t');
  const [delays, ok, permanent] = lists.map((v) => (v ? v.split(',').map(Number) : []));
  const reqs = await Promise.all(lines.map(async (line) => {
    const [chunk, start, end, url, fields] = line.split('\t');
    const headers = [...new URLSearchParams(common)];
    let body = file.slice(+start, +end);
    if (field) {
      const form = new FormData();
      new URLSearchParams(fields).forEach((v, k) => form.append(k, v));
      form.append(field, body, decodeURIComponent(name));
      const r = new Request(url, { method: 'POST', body: form });
      headers.push(['content-type', r.headers.get('content-type')]);
      body = await r.blob();
    }
    return { chunk: +chunk, url, method, headers, credentials: cred === '1' ? 'include' : 'same-origin', body };
  }));
  return { key, title: decodeURIComponent(name) || file.name || 'Upload', tries: 0, delays, ok, permanent, reqs };
};

// Keeps a job's description under its record's key, for the worker part to send again.
const keep = (key, job) => G[Symbol.for('resumable-wasm/store')].open().then((d) => call((ok, no) => {
  const t = d.transaction('jobs', 'readwrite');
  t.objectStore('jobs').put(job, key);
  t.oncomplete = ok;
  t.onabort = () => no(t.error);
}));

/**
 * `upload()` of uploader `up` (its state `s` in dom.js; `send` the in-page upload, `emit` the
 * glue's events): where a job can run, hands every waiting file to a Background Fetch job (the
 * page may close once this resolved), then runs the in-page upload for what is left; else the
 * in-page upload, with one `backgroundWarning`.
 */
export const upload = async (up, send, emit, s) => {
  const [reg, reason] = await workerPart();
  if (!reg) {
    if (!s.warned) {
      s.warned = true;
      emit(up, 'backgroundWarning', {
        kind: 'backgroundUnavailable', reason,
        message: reason === 'unsupported'
          ? 'this browser has no Background Fetch: uploading in the page (durable resume keeps it going after a reload)'
          : "the page's service worker does not include resumable-wasm's worker part (sw.js): uploading in the page",
      });
    }
    return send.call(up);
  }
  // The files being added are queued first.
  await Promise.allSettled(s.adding.splice(0));
  let handed = 0;
  for (const [key, file, text] of up.__handOver()) {
    const identifier = key.slice(key.lastIndexOf('\n') + 1);
    try {
      const job = await jobOf(key, file, text);
      await keep(key, job);
      const bg = await startJob(reg, job);
      handed++;
      const tell = () => emit(up, 'backgroundProgress', {
        identifier, uploaded: bg.uploaded, uploadTotal: bg.uploadTotal, result: bg.result, failureReason: bg.failureReason,
      });
      bg.addEventListener('progress', tell);
      tell();
    } catch (e) {
      // Refused (quota, permission, nothing left to send): the page uploads it, resuming from
      // its record.
      emit(up, 'backgroundWarning', { kind: 'backgroundRefused', reason: e && e.name, message: String(e && e.message), identifier });
      await up.addFiles([{ file, identifier }]);
    }
  }
  return Object.assign(await send.call(up), { background: handed });
};

/** `pending()`: whether a job of this page's origin is sending the file of `identifier` now. */
export const running = async () => {
  const reg = G.navigator.serviceWorker && await G.navigator.serviceWorker.getRegistration().catch(() => null);
  const ids = reg && reg.backgroundFetch ? await reg.backgroundFetch.getIds() : [];
  return (identifier) => ids.some((id) => id.startsWith(JOB) && id.endsWith(encodeURIComponent(`\n${identifier}`)));
};
