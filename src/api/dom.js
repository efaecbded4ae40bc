// DOM bindings of `Uploader`: a file picker on an element (`assignBrowse`) and drop targets
// (`assignDrop`, `unAssignDrop`). Plain JavaScript on top of the wasm `addFiles`: none of it
// decides anything, and in wasm it cost more than it does here. scripts/build.sh appends this
// function to the ES-module glue and scripts/script-tag.mjs to the script-tag build; both call it
// with the `Uploader` class. The listeners are removed, and the hidden inputs too, by `free()`.
// It also gives `free()` its meaning (cancel everything, settle every `upload()`, release every
// listener: the wasm `__release`, which the garbage collector's finalizer never calls), and makes
// every call after `free()` throw an `invalid` UploadError instead of wasm-bindgen's plain
// "null pointer passed to rust".
(function installDom(Uploader) {
  const P = Uploader.prototype;
  // Per uploader: { regs: [[target, event, listener]], inputs: [HTMLInputElement] }.
  const bound = new WeakMap();
  const state = (up) => {
    let s = bound.get(up);
    if (!s) bound.set(up, (s = { regs: [], inputs: [] }));
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
      // Entries must be taken during the event: the DataTransfer is emptied after it.
      const entries = [];
      const items = transfer.items;
      for (let i = 0; i < items.length; i++) {
        const item = items[i];
        if (item && item.kind === 'file') {
          try {
            const entry = item.webkitGetAsEntry();
            if (entry) entries.push(entry);
          } catch (_) { /* no entry: skipped */ }
        }
      }
      if (entries.length) walk(entries).then((files) => add(this, files));
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
