// DOM bindings of `Uploader`: a file picker on an element (`assignBrowse`) and drop targets
// (`assignDrop`, `unAssignDrop`). Plain JavaScript on top of the wasm `addFiles`: none of it
// decides anything, and in wasm it cost more than it does here. scripts/build.sh appends this
// function to the ES-module glue and scripts/script-tag.mjs to the script-tag build; both call it
// with the `Uploader` class. The listeners are removed, and the hidden inputs too, by `free()`.
// It also gives `free()` its meaning (cancel everything, settle every `upload()`, release every
// listener: the wasm `__release`, which the garbage collector's finalizer never calls), and makes
// every call after `free()` throw an `invalid` UploadError instead of wasm-bindgen's plain
// "null pointer passed to rust".
// With `persist`, it is also the record store: IndexedDB reads and writes in plain JS (the wasm
// decides what a record holds and when it changes; here it is only kept), `pending()`'s
// companion `resumePending()`, and the file handles of the picker and of drops.
(function installDom(Uploader) {
  const P = Uploader.prototype;
  const G = globalThis;
  // Per uploader: { regs: [[target, event, listener]], inputs: [HTMLInputElement] }.
  const bound = new WeakMap();
  const state = (up) => {
    let s = bound.get(up);
    if (!s) bound.set(up, (s = { regs: [], inputs: [], adding: [] }));
    return s;
  };
  const listen = (up, target, event, listener) => {
    target.addEventListener(event, listener);
    state(up).regs.push([target, event, listener]);
  };
  const unlisten = (r) => r[0].removeEventListener(r[1], r[2]);
  const is = (name, v) => typeof globalThis[name] === 'function' && v instanceof globalThis[name];
  // An `invalid` UploadError, shaped like the ones the wasm throws.
  const invalid = (option, message) => Object.assign(new Error(message), {
    name: 'UploadError', kind: 'invalid', attempts: 0, option,
  });
  const add = (up, files) => {
    up.addFiles(files);
  };
  // Runs a callback-style API as a promise.
  const call = (f) => new Promise(f);

  // The record store (one per page, shared by every uploader and by every copy of the library,
  // found by the wasm under this symbol). Database `resumable-wasm`: `uploads` holds each
  // record's text, `files` the kept Blob or FileSystemFileHandle, both under the record's key.
  // Writes queue up by key and go in one transaction at a time, so a burst of confirmed chunks
  // costs one transaction, not one each; every call's promise settles with its transaction.
  const STORE = Symbol.for('resumable-wasm/store');
  if (!G[STORE]) {
    let db;
    let queue = new Map();
    let waiting = [];
    let running = false;
    // The flush under way (it never rejects): reads wait for it, so they see every write and
    // delete issued before them, even one still queued behind a transaction in progress.
    let flushing = null;
    const req = (r) => call((ok, no) => { r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
    const open = () => (db ||= call((ok, no) => {
      // Version 2 added `jobs` (`background`: what each Background Fetch job sends, for the
      // worker part to send again). The worker part (sw.js) opens it the same way.
      const r = G.indexedDB.open('resumable-wasm', 2);
      r.onupgradeneeded = () => ['uploads', 'files', 'jobs']
        .forEach((n) => r.result.objectStoreNames.contains(n) || r.result.createObjectStore(n));
      r.onsuccess = () => ok(r.result);
      r.onerror = () => no(r.error);
    }).catch((e) => { db = null; throw e; }));
    // Runs `body(uploads, files)` in one transaction; settles when it commits or aborts.
    const tx = async (mode, body) => {
      const t = (await open()).transaction(['uploads', 'files'], mode);
      // A failed request aborts the transaction; `abort` then carries the reason.
      const done = call((ok, no) => { t.oncomplete = ok; t.onabort = () => no(t.error || new Error('IndexedDB transaction aborted')); });
      let out;
      try { out = body(t.objectStore('uploads'), t.objectStore('files')); } catch (e) {
        try { t.abort(); } catch (_) { /* already finished */ }
        done.catch(() => {});
        throw e;
      }
      await done;
      return out;
    };
    // A kept file goes in a transaction of its own: where the browser cannot store Blobs in
    // IndexedDB (WebKitGTK's ephemeral sessions: "Error preparing Blob/File data") the record
    // is kept without it, as for a large file. The quota running out is a failure like any other.
    const keepFile = (key, file) => tx('readwrite', (u, f) => f.put(file, key))
      .catch((e) => { if (e && e.name === 'QuotaExceededError') throw e; });
    const flush = async () => {
      running = true;
      while (queue.size) {
        const [ops, settle] = [queue, waiting];
        [queue, waiting] = [new Map(), []];
        const r = await Promise.all([...ops].filter(([, op]) => op && op.file).map(([key, op]) => keepFile(key, op.file)))
          .then(() => tx('readwrite', (u, f) => ops.forEach((op, key) => {
            if (op) u.put(op.rec, key);
            else { u.delete(key); f.delete(key); }
          })))
          .then(() => null, (e) => e || new Error('IndexedDB failed'));
        settle.forEach(([ok, no]) => (r ? no(r) : ok()));
      }
      running = false;
    };
    const write = (key, op) => {
      const before = queue.get(key);
      if (op && before && before.file && !op.file) op.file = before.file;
      queue.set(key, op);
      const p = call((ok, no) => waiting.push([ok, no]));
      if (!running) flushing = flush();
      return p;
    };
    const settled = () => (running ? flushing : Promise.resolve());
    G[STORE] = {
      put: (key, rec, file) => write(key, { rec, file }),
      del: (key) => write(key, null),
      // The record text and kept file of `key`: [text, file] or undefined.
      get: (key) => settled().then(() => tx('readonly', (u, f) => [req(u.get(key)), req(f.get(key))]))
        .then((rs) => Promise.all(rs)).then(([t, f]) => (t === undefined ? undefined : [t, f])),
      // The database (background.js keeps its jobs there).
      open,
      // Every [key, text, file].
      all: () => settled().then(() => tx('readonly', (u, f) => [req(u.getAllKeys()), req(u.getAll()), req(f.getAllKeys()), req(f.getAll())]))
        .then((rs) => Promise.all(rs))
        .then(([k, v, fk, fv]) => k.map((key, i) => [key, v[i], fv[fk.indexOf(key)]])),
    };
  }

  // A handle's file, with read permission asked for when needed (a prompt needs the user's
  // gesture: call resumePending() from a click); null when refused or gone.
  const fromHandle = async (handle) => {
    try {
      const opts = { mode: 'read' };
      if (handle.queryPermission && (await handle.queryPermission(opts)) !== 'granted'
        && (await handle.requestPermission(opts)) !== 'granted') return null;
      return await handle.getFile();
    } catch (_) {
      return null;
    }
  };
  const isHandle = (v) => v && typeof v === 'object' && v.kind === 'file' && typeof v.getFile === 'function';

  // `background`: its page part (background.js, beside this file) is loaded when first needed,
  // so that pages without the option never download it.
  const part = () => import('./background.js');
  const upload = P.upload;
  /**
   * With `background` where a job can run: hands every waiting file to a Background Fetch job
   * (the page may close once this resolved); else the in-page upload.
   */
  P.upload = async function () {
    const s = state(this);
    // Where it cannot be loaded (a CDN without CORS, a bundler that left it out) the page
    // uploads, and says so once.
    const m = this.__persists() > 1 && await part().catch((e) => {
      if (!s.warned) this.__emit('backgroundWarning', { kind: 'backgroundUnavailable', reason: 'no-part', message: String(e) });
      s.warned = 1;
    });
    return m ? m.upload(this, upload, s) : upload.call(this);
  };

  // `background`: the report says what the browser takes over.
  const report = P.preflightReport;
  P.preflightReport = function preflightReport() {
    const r = report.call(this);
    if ((this.__persists() > 1)) {
      r.background = [
        'Chromium with resumable-wasm/sw.js in the service worker: a Background Fetch job sends the same requests, scheduled by the browser (no simultaneousUploads, adaptive window, timeout or probes), with its notification; it may ask the user or refuse (the page uploads then); bodies kept in IndexedDB until it ends (quota). Elsewhere the page uploads (backgroundWarning)',
      ];
    }
    return r;
  };

  /**
   * `persist`: the unfinished uploads kept under these options whose files are not queued now
   * (after a reload or a restart). `status`: 'success' (a background job sent every chunk),
   * 'background' (a job is sending it) or 'pending'.
   */
  P.pending = async function pending() {
    const running = this.__persists() > 1 ? await part().then((m) => m.running(), () => () => 0) : () => 0;
    return (await this.__pending()).map(([identifier, name, size, lastModified, relativePath, confirmed, kept, over]) => {
      // `over`: the engine's word (an object-storage upload is over only once completed).
      const status = over ? 'success' : running(identifier) ? 'background' : 'pending';
      const p = { identifier, name, size, relativePath, confirmed, status };
      if (lastModified !== undefined) p.lastModified = lastModified;
      if (is('Blob', kept)) p.file = kept;
      else if (kept) p.handle = kept;
      return p;
    });
  };

  /**
   * Re-adds every pending upload whose file was kept (a Blob, or a handle whose read
   * permission is granted or granted now): resolves with the added `UploadFile`s.
   */
  P.resumePending = async function resumePending() {
    const items = [];
    for (const p of await this.pending()) {
      // A running job sends it; a second sender would race it.
      if (p.status === 'background') continue;
      const file = p.handle ? await fromHandle(p.handle) : p.file;
      if (file) items.push({ file, handle: p.handle, identifier: p.identifier, relativePath: p.relativePath });
    }
    return items.length ? this.addFiles(items) : [];
  };

  // addFile(handle): the handle's file, with the handle kept for a resume after a restart.
  const addFile = P.addFile;
  P.addFile = function (file, options) {
    if (!isHandle(file)) return addFile.call(this, file, options);
    return fromHandle(file).then((f) => addFile.call(this, f || file, { ...options, handle: file }));
  };

  // `background`: upload() hands over only files already queued; these are the additions
  // under way.
  for (const name of ['addFile', 'addFiles']) {
    const f = P[name];
    P[name] = function (...args) {
      const p = f.apply(this, args);
      if ((this.__persists() > 1)) state(this).adding.push(p);
      return p;
    };
  }

  // Every file under the dropped entries, as `{ file, relativePath }` (the path inside the
  // dropped folder); unreadable entries are skipped.
  const walk = async (stack) => {
    const out = [];
    let entry;
    while ((entry = stack.pop())) {
      if (entry.isDirectory) {
        const reader = entry.createReader();
        for (;;) {
          const batch = await call((ok, err) => reader.readEntries(ok, err)).catch(() => []);
          if (!batch.length) break;
          stack.push(...batch);
        }
      } else if (entry.isFile) {
        const file = await call((ok, err) => entry.file(ok, err)).catch(() => null);
        if (file) out.push({ file, relativePath: entry.fullPath.replace(/^\/+/, '') });
      }
    }
    return out;
  };

  /**
   * Opens a file picker when `element` is clicked (or listens to it if it is an
   * `<input type=file>`); chosen files are added.
   */
  P.assignBrowse = function assignBrowse(element, options) {
    const opts = options !== null && (typeof options === 'object' || typeof options === 'function') ? options : {};
    let input = element;
    if (!(is('HTMLInputElement', element) && element.type === 'file')) {
      const doc = is('Window', globalThis) ? globalThis.document : null;
      if (!doc) throw invalid('assignBrowse', 'assignBrowse needs a document');
      input = doc.createElement('input');
      input.type = 'file';
      input.setAttribute('hidden', '');
      element.appendChild(input);
      state(this).inputs.push(input);
      // Clicks on the hidden input itself bubble up here; don't reopen for them.
      listen(this, element, 'click', (ev) => {
        if (ev.target !== input) input.click();
      });
    }
    input.multiple = true;
    if (opts.directory === true) input.setAttribute('webkitdirectory', '');
    if (typeof opts.accept === 'string') input.accept = opts.accept;
    // With persist, files are picked as handles where the browser can (Chromium): a large one
    // then resumes after a restart without being chosen again.
    if (input !== element && opts.directory !== true && typeof opts.accept !== 'string') {
      listen(this, input, 'click', (ev) => {
        if (!this.__persists() || typeof G.showOpenFilePicker !== 'function') return;
        ev.preventDefault();
        G.showOpenFilePicker({ multiple: true }).then(async (handles) => {
          const items = [];
          for (const handle of handles) items.push({ file: await handle.getFile(), handle });
          add(this, items);
        }, (e) => {
          // The picker itself failed (not a cancel): fall back to the input.
          if (e && e.name !== 'AbortError') input.showPicker ? input.showPicker() : null;
        });
      });
    }
    listen(this, input, 'change', () => {
      if (input.files) add(this, input.files);
      // Allow choosing the same file again.
      input.value = '';
    });
  };

  /** Adds files and folders dropped on `element`. */
  P.assignDrop = function assignDrop(element) {
    listen(this, element, 'dragover', (ev) => ev.preventDefault());
    listen(this, element, 'drop', (ev) => {
      ev.preventDefault();
      const transfer = is('DragEvent', ev) ? ev.dataTransfer : null;
      if (!transfer) return;
      // Entries (and handles) must be taken during the event: the DataTransfer is emptied after it.
      const entries = [];
      const handles = [];
      const items = transfer.items;
      const persists = this.__persists();
      for (let i = 0; i < items.length; i++) {
        const item = items[i];
        if (item && item.kind === 'file') {
          try {
            const entry = item.webkitGetAsEntry();
            // With persist, a dropped file's handle (Chromium) lets it resume after a restart.
            const handle = persists && (!entry || entry.isFile) && typeof item.getAsFileSystemHandle === 'function'
              ? item.getAsFileSystemHandle() : null;
            if (handle) handles.push([entry, handle.catch(() => null)]);
            else if (entry) entries.push(entry);
          } catch (_) { /* no entry: skipped */ }
        }
      }
      if (handles.length) {
        Promise.all(handles.map(async ([entry, h]) => {
          h = await h;
          if (isHandle(h)) return [{ file: await h.getFile(), handle: h }];
          return entry ? walk([entry]) : [];
        })).then(async (lists) => add(this, lists.flat().concat(await walk(entries))));
      } else if (entries.length) walk(entries).then((files) => add(this, files));
      // No entry API: plain files only.
      else if (transfer.files) add(this, transfer.files);
    });
  };

  /** Stops listening for drops on `element`. */
  P.unAssignDrop = function unAssignDrop(element) {
    const s = bound.get(this);
    if (!s) return;
    s.regs = s.regs.filter((r) => {
      const ours = r[0] === element && (r[1] === 'dragover' || r[1] === 'drop');
      if (ours) unlisten(r);
      return !ours;
    });
  };

  // After `free()` (wasm-bindgen zeroes `__wbg_ptr`), every method and the `files` getter throw.
  const alive = (up, name) => {
    if (!up.__wbg_ptr) throw invalid('free', `${name} was called after free(): this Uploader is freed; create a new one`);
  };
  for (const name of Object.getOwnPropertyNames(P)) {
    const d = Object.getOwnPropertyDescriptor(P, name);
    if (name === 'constructor' || name === 'free' || name.startsWith('__')) continue;
    if (typeof d.value === 'function') {
      const f = d.value;
      d.value = function (...args) { alive(this, `${name}()`); return f.apply(this, args); };
      Object.defineProperty(d.value, 'name', { value: name });
    } else if (d.get) {
      const get = d.get;
      d.get = function () { alive(this, name); return get.call(this); };
    } else continue;
    Object.defineProperty(P, name, d);
  }

  // An explicit `free()` cancels and releases everything first, and removes the DOM listeners
  // and hidden inputs; a second call does nothing.
  const wasmFree = P.free;
  P.free = function free() {
    if (!this.__wbg_ptr) return;
    const s = bound.get(this);
    if (s) {
      bound.delete(this);
      s.regs.forEach(unlisten);
      s.inputs.forEach((input) => input.remove());
    }
    this.__release();
    return wasmFree.call(this);
  };
  if (typeof Symbol === 'function' && Symbol.dispose) P[Symbol.dispose] = P.free;
})
