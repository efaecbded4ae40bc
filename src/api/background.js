// The page part of `background` (Background Fetch), loaded by the glue (dom.js) with `import()`
// the first time an uploader with the option calls `upload()` or `pending()`: pages without the
// option never download it. It sits beside the ES-module glue and beside the script-tag build
// (scripts/build.sh copies it to both). Plain browser glue: the wasm decides which chunks a job
// sends and builds their requests, and reads the outcomes back (src/engine/background.rs).
const G = globalThis;
const call = (f) => new Promise(f);

// A job's id names its record (`tries` is 0: the worker part sends failed chunks again itself,
// as Chromium lets only pages start jobs); each request's URL
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

// A file's job: `list` holds each chunk's number and its `Request` as the wasm built it (the one
// the page would send), `policy` the engine's retry rules as text (delays, success statuses,
// permanent errors). Each request is kept as plain fields with its body made a Blob once (a
// multipart one keeps its Content-Type, boundary included, among the headers), so that the
// worker part can send it again.
const jobOf = async (key, file, name, policy, list) => {
  const [delays, ok, permanent] = policy.split('\t').map((v) => (v ? v.split(',').map(Number) : []));
  const reqs = [];
  for (let i = 0; i < list.length; i += 2) {
    const r = list[i + 1];
    reqs.push({ chunk: list[i], url: r.url, method: r.method, headers: [...r.headers], credentials: r.credentials, body: await r.blob() });
  }
  return { key, title: name || file.name || 'Upload', tries: 0, delays, ok, permanent, reqs };
};

// Writes the job descriptions kept under their records' keys, for the worker part to send again.
const jobs = (write) => G[Symbol.for('resumable-wasm/store')].open().then((d) => call((ok, no) => {
  const t = d.transaction('jobs', 'readwrite');
  write(t.objectStore('jobs'));
  t.oncomplete = ok;
  t.onabort = () => no(t.error);
}));

/**
 * `upload()` of uploader `up` (its state `s` in dom.js; `send` the in-page upload): where a job
 * can run, hands every waiting file to a Background Fetch job (the page may close once this
 * resolved), then runs the in-page upload for what is left; else the in-page upload, with one
 * `backgroundWarning`.
 */
export const upload = async (up, send, s) => {
  const [reg, reason] = await workerPart();
  if (!reg) {
    if (!s.warned) {
      s.warned = true;
      up.__emit('backgroundWarning', {
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
  const [policy, ...files] = up.__handOver();
  for (const [key, file, name, ...list] of files) {
    const identifier = key.slice(key.lastIndexOf('\n') + 1);
    try {
      const job = await jobOf(key, file, name, policy, list);
      await jobs((j) => j.put(job, key));
      const bg = await startJob(reg, job);
      handed++;
      // (Not after `free()`: the uploader is gone.)
      const tell = () => up.__wbg_ptr && up.__emit('backgroundProgress', {
        identifier, uploaded: bg.uploaded, uploadTotal: bg.uploadTotal, result: bg.result, failureReason: bg.failureReason,
      });
      bg.addEventListener('progress', tell);
      tell();
    } catch (e) {
      // Refused (quota, permission, nothing left to send): the page uploads it, resuming from
      // its record. The job's bodies kept for the worker part go (a file's size of quota), and
      // one file the page cannot take back does not stop the others: its record stays, and
      // `pending()` lists it.
      await jobs((j) => j.delete(key)).catch(() => {});
      up.__emit('backgroundWarning', { kind: 'backgroundRefused', reason: e && e.name, message: String(e && e.message), identifier });
      await up.addFiles([{ file, identifier }]).catch(() => {});
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
