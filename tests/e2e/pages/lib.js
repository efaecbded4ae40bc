// In-page helpers for the end-to-end suite, installed in every page with `addInitScript`.
// window.__e2e: deterministic files, SHA-256, and a recorder around one Uploader run.
(() => {
  if (window.__e2e) return;
  const E = (window.__e2e = {});

  /** Deterministic pseudo-random bytes (xorshift32 over 32-bit words, little endian). */
  E.makeBytes = (size, seed = 1) => {
    const buf = new Uint8Array(size);
    let x = (seed >>> 0) ^ 0x9e3779b9 || 1;
    const words = size >>> 2;
    const u32 = new Uint32Array(buf.buffer, 0, words);
    for (let i = 0; i < words; i++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      u32[i] = x >>> 0;
    }
    for (let i = words * 4; i < size; i++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      buf[i] = x & 0xff;
    }
    return buf;
  };
  E.files = {};
  /** A `File` named `name` of `size` deterministic bytes; kept in `E.files[name]`. */
  E.makeFile = (name, size, seed = 1, type = '') => {
    const f = new File([E.makeBytes(size, seed)], name, { type, lastModified: 1700000000000 + seed });
    E.files[name] = f;
    return f;
  };
  /** Writes E.makeBytes(size, seed) to `name` in the origin private file system (a file a handle can reopen after a restart). */
  E.opfsFile = async (name, size, seed = 1) => {
    const h = await (await navigator.storage.getDirectory()).getFileHandle(name, { create: true });
    const w = await h.createWritable();
    await w.write(E.makeBytes(size, seed));
    await w.close();
    return { name, size, sha256: await E.sha256(await h.getFile()) };
  };
  /** `pending()` of an Uploader with `options`, as plain data (kept file or handle as booleans). */
  E.pending = async (options) => {
    const up = new (await E.rw()).Uploader(options);
    try {
      return (await up.pending()).map((p) => ({ name: p.name, size: p.size, identifier: p.identifier, confirmed: p.confirmed, status: p.status, file: !!p.file, handle: !!p.handle }));
    } finally { up.free(); }
  };
  E.hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
  E.sha256 = async (blob) => E.hex(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()));

  /** The library namespace ({ Uploader, isUploadError }), whichever way the page loaded it. */
  E.rw = async (timeoutMs = 15000) => {
    const t0 = Date.now();
    for (;;) {
      if (window.__RW) return window.__RW;
      if (window.ResumableWasm && window.ResumableWasm.ready) {
        await window.ResumableWasm.ready;
        return window.ResumableWasm;
      }
      if (window.__RW_ERROR) throw new Error('page failed to load the library: ' + window.__RW_ERROR);
      if (Date.now() - t0 > timeoutMs) throw new Error('library not loaded after ' + timeoutMs + ' ms (no window.__RW / ResumableWasm)');
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  const pick = (o, keys) => {
    const r = {};
    for (const k of keys) if (o && o[k] !== undefined) r[k] = o[k];
    return r;
  };
  E.err = (e) => {
    if (e == null) return e;
    if (typeof e !== 'object') return { message: String(e) };
    return {
      isError: e instanceof Error,
      isUploadError: !!(window.__RWlib && window.__RWlib.isUploadError && window.__RWlib.isUploadError(e)),
      ...pick(e, ['name', 'message', 'kind', 'status', 'body', 'url', 'method', 'phase', 'chunk', 'attempts', 'hint', 'rule', 'option', 'algorithm']),
    };
  };
  E.file = (f) => (f ? { ...pick(f, ['identifier', 'name', 'size', 'relativePath', 'status', 'progress']), error: E.err(f.error) } : f);

  /**
   * Requests to a path ending in `/upload` that the page started (through `fetch` or
   * `XMLHttpRequest`) and that ended (answered, failed or aborted). A test waits for
   * `ended === started` — nothing of the page's in flight — instead of sleeping, and compares
   * `started` before and after a control to see whether anything new was sent.
   */
  E.net = { started: 0, ended: 0 };
  const isUploadUrl = (u) => { try { return new URL(String(u), location.href).pathname.endsWith('/upload'); } catch { return false; } };
  const pageFetch = window.fetch;
  window.fetch = function (input, init) {
    const url = input && typeof input === 'object' && 'url' in input ? input.url : input;
    if (!isUploadUrl(url)) return pageFetch.apply(this, arguments);
    E.net.started++;
    let p;
    try { p = pageFetch.apply(this, arguments); } catch (e) { E.net.ended++; throw e; }
    const end = () => { E.net.ended++; };
    p.then(end, end);
    return p;
  };
  const xhrOpen = XMLHttpRequest.prototype.open;
  const xhrSend = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (method, url) {
    this.__e2eUpload = isUploadUrl(url);
    return xhrOpen.apply(this, arguments);
  };
  XMLHttpRequest.prototype.send = function () {
    if (this.__e2eUpload) {
      E.net.started++;
      this.addEventListener('loadend', () => { E.net.ended++; }, { once: true });
    }
    return xhrSend.apply(this, arguments);
  };

  /**
   * The `s3` option of an app whose server is server-fixture's S3 signing role at `api`: each
   * callback POSTs JSON (as text/plain, a simple request) to its /s3/* route, as an app would.
   * A listParts answered NoSuchUpload rejects with that code.
   */
  // `algorithm`: the page's `checksum` option ('crc32c' or 'sha256'): the upload is created with
  // it and each part's checksum is signed into its header.
  E.s3Callbacks = (api, algorithm) => {
    const post = E.s3Callbacks.post(api);
    return {
      createMultipartUpload: (file) => post('/s3/create', { name: file.name || 'blob', checksumAlgorithm: algorithm }),
      signPart: (_file, p) => post('/s3/sign-part', { uploadId: p.uploadId, key: p.key, partNumber: p.partNumber, checksum: p.checksum, checksumAlgorithm: algorithm }),
      listParts: (_file, u) => post('/s3/list-parts', { uploadId: u.uploadId, key: u.key }),
      completeMultipartUpload: (_file, u) => post('/s3/complete', { uploadId: u.uploadId, key: u.key, parts: u.parts }),
      abortMultipartUpload: (_file, u) => post('/s3/abort', { uploadId: u.uploadId, key: u.key }),
      signUpload: (file) => post('/s3/sign-upload', { name: file.name || 'blob' }),
    };
  };
  /** A JSON POST (as text/plain: a simple request) to the role's `path`; a failure rejects with its code. */
  E.s3Callbacks.post = (api) => async (path, body) => {
    const r = await fetch(api + path, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'text/plain' } });
    const json = await r.json();
    if (!r.ok) throw Object.assign(new Error(json.message || path + ' answered ' + r.status), { code: json.error });
    return json;
  };

  /**
   * The `s3` option of `protocol: 's3-post'` for an app whose server is server-fixture's S3
   * signing role at `api`: one POST policy per file (`createUpload`, again with its keyPrefix
   * when the policy expired), the chunks listed for a resume, composed by the server, discarded
   * on cancel — each a simple JSON POST to the role's route.
   */
  /** The `keyPrefix` each createUpload call of this page was given (null: none), in order. */
  E.s3PostAsked = [];
  E.s3PostCallbacks = (api) => {
    const post = E.s3Callbacks.post(api);
    return {
      createUpload: (file, p) => {
        E.s3PostAsked.push(p.keyPrefix ?? null);
        return post('/s3/policy', { name: file.name || 'blob', chunkSize: p.chunkSize, keyPrefix: p.keyPrefix });
      },
      listChunks: (_file, u) => post('/s3/list-chunks', { keyPrefix: u.keyPrefix }),
      complete: (_file, u, chunks) => post('/s3/compose', { keyPrefix: u.keyPrefix, chunks }),
      abort: (_file, u) => post('/s3/discard', { keyPrefix: u.keyPrefix }),
    };
  };

  E.runs = {};
  /**
   * Starts `new Uploader(options)` with `files` (names in E.files, or {name,size,seed,type} specs
   * created here) and records every event. `extra` may carry JS source evaluated into options
   * (e.g. { query: '(file, chunk) => ({ token: "t" })' }).
   */
  E.start = async (id, options, files = [], extra = {}) => {
    const lib = await E.rw();
    window.__RWlib = lib;
    const opts = { ...options };
    for (const [k, src] of Object.entries(extra.fnOptions || {})) opts[k] = (0, eval)(src);
    if (extra.s3Api) opts.s3 = E.s3Callbacks(extra.s3Api, opts.checksum === true ? 'crc32c' : opts.checksum || undefined);
    if (extra.s3PostApi) opts.s3 = E.s3PostCallbacks(extra.s3PostApi);
    const run = (E.runs[id] = { events: [], counts: {}, progressValues: [], t0: performance.now(), settled: false });
    const rec = (name, data) => {
      run.counts[name] = (run.counts[name] || 0) + 1;
      if (name === 'progress') { run.progressValues.push(data); return; }
      if (name === 'fileProgress') return;
      run.events.push({ t: Math.round(performance.now() - run.t0), name, ...data });
    };
    let up;
    try {
      up = new lib.Uploader(opts);
    } catch (e) {
      run.constructError = E.err(e);
      run.settled = true;
      return { constructError: run.constructError };
    }
    run.up = up;
    up.on('fileAdded', (f) => rec('fileAdded', { file: f.identifier }));
    up.on('filesAdded', (fs) => rec('filesAdded', { n: fs.length }));
    up.on('fileRejected', (_b, e) => rec('fileRejected', { error: E.err(e) }));
    up.on('uploadStart', () => rec('uploadStart', {}));
    up.on('fileProgress', () => rec('fileProgress', {}));
    up.on('progress', (p) => rec('progress', p));
    up.on('chunkSuccess', (f, c) => rec('chunkSuccess', { file: f.identifier, chunk: c }));
    up.on('fileRetry', (f, e, d) => rec('fileRetry', { file: f.identifier, error: E.err(e), delay: d }));
    up.on('fileSuccess', (f, text) => rec('fileSuccess', { file: f.identifier, text: String(text).slice(0, 200) }));
    up.on('fileError', (f, e) => rec('fileError', { file: f.identifier, error: E.err(e) }));
    up.on('error', (e, f) => rec('error', { file: f && f.identifier, error: E.err(e) }));
    up.on('complete', () => rec('complete', {}));
    up.on('pause', () => rec('pause', {}));
    up.on('cancel', () => rec('cancel', {}));
    if (opts.persist) up.on('persistWarning', (e) => rec('persistWarning', { error: E.err(e) }));
    if (opts.background) up.on('backgroundWarning', (w) => rec('backgroundWarning', { kind: w.kind, reason: w.reason }));
    const added = [];
    try {
      // persist: the kept files of an earlier page (or browser) instead of `files`.
      if (extra.resumePending) added.push(...(await up.resumePending()).map(E.file));
      for (const spec of files) {
        // { opfs: name }: a FileSystemFileHandle of the origin private file system (see E.opfsFile).
        const f = spec.opfs ? await (await navigator.storage.getDirectory()).getFileHandle(spec.opfs)
          : typeof spec === 'string' ? E.files[spec] : E.makeFile(spec.name, spec.size, spec.seed ?? 1, spec.type ?? '');
        if (!f) throw new Error('no such test file ' + JSON.stringify(spec));
        let r = up.addFile(f, spec.addOptions || undefined);
        if (r && typeof r.then === 'function') r = await r; // addFile resolves with the UploadFile (or null)
        added.push(r && typeof r === 'object' ? E.file(r) : r);
      }
    } catch (e) {
      run.addError = E.err(e);
    }
    run.added = added;
    if (extra.noStart) return { added, addError: run.addError };
    run.promise = Promise.resolve()
      .then(() => up.upload())
      .then(
        (s) => { run.summary = { succeeded: (s.succeeded || []).map(E.file), failed: (s.failed || []).map(E.file), paused: (s.paused || []).map(E.file) }; },
        (e) => { run.rejected = E.err(e); },
      )
      .finally(() => { run.settled = true; run.t1 = performance.now(); });
    return { added, addError: run.addError };
  };
  /** Waits for run `id` to settle (or `timeoutMs`) and returns its serialisable record. */
  E.wait = async (id, timeoutMs = 60000) => {
    const run = E.runs[id];
    if (!run) throw new Error('no run ' + id);
    if (!run.settled && run.promise) {
      let timer;
      await Promise.race([run.promise, new Promise((r) => { timer = setTimeout(r, timeoutMs); })]);
      clearTimeout(timer);
    }
    return E.snapshot(id);
  };
  E.snapshot = (id) => {
    const run = E.runs[id];
    const up = run.up;
    let files = null, progress = null, uploading = null;
    try { files = up ? up.files.map(E.file) : null; } catch (e) { files = { error: E.err(e) }; }
    try { progress = up ? up.progress() : null; } catch (e) { progress = { error: E.err(e) }; }
    try { uploading = up ? up.isUploading() : null; } catch (e) { uploading = { error: E.err(e) }; }
    return {
      settled: run.settled,
      ms: Math.round((run.t1 ?? performance.now()) - run.t0),
      constructError: run.constructError,
      addError: run.addError,
      added: run.added,
      summary: run.summary,
      rejected: run.rejected,
      events: run.events,
      counts: run.counts,
      progressValues: run.progressValues.length > 50 ? [...run.progressValues.slice(0, 20), '…', ...run.progressValues.slice(-20)] : run.progressValues,
      progressMonotonic: run.progressValues.every((p, i, a) => i === 0 || p >= a[i - 1] - 1e-9),
      files, progress, uploading,
    };
  };
  E.call = (id, method, ...args) => {
    const r = E.runs[id].up[method](...args);
    return r && typeof r.then === 'function' ? r.then(() => null, (e) => ({ error: E.err(e) })) : null;
  };
})();
