// In-page side of `make bench` (bench/run.mjs drives it through playwright-core).
// window.__B: one deterministic file per page, one prepared client at a time, timed upload().
(() => {
  const B = (window.__B = { ready: false, file: null, current: null });

  /** Deterministic bytes: xorshift32 over little-endian 32-bit words (same generator as tests/e2e). */
  function makeBytes(size, seed) {
    const buf = new Uint8Array(size);
    let x = (seed >>> 0) ^ 0x9e3779b9 || 1;
    const words = size >>> 2;
    const u32 = new Uint32Array(buf.buffer, 0, words);
    for (let i = 0; i < words; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; u32[i] = x >>> 0; }
    for (let i = words * 4; i < size; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; buf[i] = x & 0xff; }
    return buf;
  }
  const hex = (b) => Array.from(new Uint8Array(b), (v) => v.toString(16).padStart(2, '0')).join('');

  /**
   * Builds the page's File (`name`, `size` bytes) and its SHA-256, computed here in the page.
   * The generating buffer is dropped afterwards: only the Blob (browser-side storage) stays.
   */
  B.makeFile = async (name, size, seed) => {
    const t0 = performance.now();
    let bytes = makeBytes(size, seed);
    const sha256 = hex(await crypto.subtle.digest('SHA-256', bytes));
    B.file = new File([bytes], name, { type: 'application/octet-stream', lastModified: 1700000000000 });
    bytes = null;
    return { name, size, sha256, ms: Math.round(performance.now() - t0) };
  };
  /**
   * Takes the File the driver put into <input id=pick> (disk-backed: Chromium cannot hold a
   * 400+ MiB in-memory Blob) and computes its SHA-256 here in the page.
   */
  B.takePicked = async () => {
    const t0 = performance.now();
    const f = document.getElementById('pick').files[0];
    if (!f) throw new Error('no file picked');
    let buf = await f.arrayBuffer();
    const sha256 = hex(await crypto.subtle.digest('SHA-256', buf));
    buf = null;
    B.file = f;
    return { name: f.name, size: f.size, sha256, ms: Math.round(performance.now() - t0) };
  };

  B.wasmMemoryBytes = () => (B.wasmExports && B.wasmExports.memory ? B.wasmExports.memory.buffer.byteLength : 0);

  const err = (e) => (e == null ? String(e) : e.message ? `${e.name || 'Error'}: ${e.message}${e.kind ? ` [${e.kind}${e.status ? ' ' + e.status : ''}]` : ''}` : String(e));

  /** Resume variant: stores chunks 1..⌊n/2⌋ on the server with plain fetch POSTs (untimed). */
  async function preseed(prefix, cfg, identifier, filename, relativePath) {
    const size = B.file.size;
    const n = Math.max(1, Math.floor(size / cfg.chunkSize));
    const half = Math.floor(n / 2);
    const one = async (k) => {
      const start = (k - 1) * cfg.chunkSize;
      const end = k === n ? size : start + cfg.chunkSize;
      const fd = new FormData();
      const p = { ChunkNumber: k, ChunkSize: cfg.chunkSize, CurrentChunkSize: end - start, TotalSize: size,
        Identifier: identifier, Filename: filename, RelativePath: relativePath, TotalChunks: n };
      for (const [key, v] of Object.entries(p)) fd.append(prefix + key, String(v));
      fd.append('file', B.file.slice(start, end), filename);
      const r = await fetch(cfg.seedTarget, { method: 'POST', body: fd, credentials: 'include' });
      const text = await r.text();
      if (r.status !== 200) throw new Error(`pre-seed of chunk ${k} → ${r.status}: ${text}`);
    };
    const queue = Array.from({ length: half }, (_, i) => i + 1);
    await Promise.all([0, 1, 2].map(async () => { while (queue.length) await one(queue.shift()); }));
    return { chunks: n, seeded: half };
  }

  /**
   * Creates the client and adds the file (untimed); for `cfg.resume`, pre-seeds half the chunks.
   * cfg: { target, seedTarget, chunkSize, simultaneousUploads?, headers?, resume?, timeoutMs }
   */
  /**
   * Hashing throughput of `checksum`'s algorithms on the picked file, read in `pieceBytes`
   * pieces as the uploader reads chunks: CRC-32C in resumable-wasm's wasm (`__crc32c`), SHA-256
   * by WebCrypto (what the uploader calls). Returns { crc32c, sha256 } in MB/s (10^6 B/s), the
   * read time excluded, plus the digests (so the work cannot be skipped).
   */
  B.hashThroughput = async (pieceBytes) => {
    const file = B.file;
    const pieces = [];
    for (let at = 0; at < file.size; at += pieceBytes) pieces.push(new Uint8Array(await file.slice(at, at + pieceBytes).arrayBuffer()));
    const time = async (f) => { const t0 = performance.now(); const out = await f(); return { ms: performance.now() - t0, out }; };
    const crc = await time(async () => pieces.map((p) => B.crc32c(p)).join(''));
    const sha = await time(async () => { const all = []; for (const p of pieces) all.push(await crypto.subtle.digest('SHA-256', p)); return all.length; });
    const mbps = (ms) => Math.round((file.size / 1e6) / (ms / 1000));
    return { bytes: file.size, pieceBytes, crc32c: mbps(crc.ms), sha256: mbps(sha.ms), crcDigests: crc.out.length };
  };

  B.prepare = async (client, cfg) => {
    const file = B.file;
    const c = { client, cfg, retries: 0, errors: [] };
    B.current = c;
    const common = { target: cfg.target, chunkSize: cfg.chunkSize, withCredentials: true };
    // Unset for 'resumable-wasm' and its variants on the defaults (the library's default);
    // 'resumable-wasm-3' and the peers get 3.
    if (cfg.simultaneousUploads != null) common.simultaneousUploads = cfg.simultaneousUploads;
    if (cfg.headers) common.headers = cfg.headers;
    let identifier, relativePath, prefix = 'resumable';
    if (client === 'resumable-wasm' || client === 'resumable-wasm-3' || client === 'resumable-wasm-no-tao' || client === 'resumable-wasm-auto-chunk' || client.startsWith('resumable-wasm-checksum-')) {
      // resumable-wasm-checksum-crc32c / -sha256: the defaults plus `checksum`.
      if (client.startsWith('resumable-wasm-checksum-')) common.checksum = client.slice('resumable-wasm-checksum-'.length);
      // resumable-wasm-auto-chunk: the driver sends chunkSize 'auto' and its maxChunkSize.
      if (cfg.maxChunkSize != null) common.maxChunkSize = cfg.maxChunkSize;
      // resumable-wasm-no-tao: the defaults; the driver turns the fixture's Timing-Allow-Origin off.
      const up = new B.Uploader(common); // library defaults otherwise (testChunks 'auto', 8 retries, multipart)
      up.on('fileRetry', () => { c.retries++; });
      up.on('fileError', (_f, e) => { c.errors.push(err(e)); });
      const uf = await up.addFile(file);
      if (!uf) throw new Error('addFile returned null');
      identifier = uf.identifier; relativePath = uf.relativePath;
      c.start = () => up.upload().then((s) => ({ ok: s.succeeded.length === 1 && s.failed.length === 0, failed: s.failed.map((f) => err(f.error)) }));
      c.cancel = () => { try { up.cancel(); } catch { /* ignore */ } };
    } else if (client === 'resumablejs') {
      const r = new window.Resumable(common); // defaults: testChunks true, maxChunkRetries 100, multipart
      if (!r.support) throw new Error('Resumable.support is false');
      const added = new Promise((res) => r.on('filesAdded', res));
      r.addFile(file);
      await Promise.race([added, new Promise((res) => setTimeout(res, 5000))]);
      if (r.files.length !== 1) throw new Error(`Resumable.js has ${r.files.length} files after addFile`);
      identifier = r.files[0].uniqueIdentifier; relativePath = r.files[0].relativePath;
      c.start = () => new Promise((resolve) => {
        let success = false;
        r.on('fileRetry', () => { c.retries++; });
        r.on('fileSuccess', () => { success = true; });
        r.on('fileError', (_f, m) => { c.errors.push(`fileError: ${String(m).slice(0, 200)}`); });
        r.on('complete', () => resolve({ ok: success && c.errors.length === 0 }));
        r.upload();
      });
      c.cancel = () => { try { r.cancel(); } catch { /* ignore */ } };
    } else if (client === 'flowjs') {
      prefix = 'flow';
      const f = new window.Flow({ ...common, maxChunkRetries: 3 }); // Flow's default is 0 retries
      if (!f.support) throw new Error('Flow.support is false');
      f.addFile(file);
      if (f.files.length !== 1) throw new Error(`Flow.js has ${f.files.length} files after addFile`);
      identifier = f.files[0].uniqueIdentifier; relativePath = f.files[0].relativePath;
      c.start = () => new Promise((resolve) => {
        let success = false;
        f.on('fileRetry', () => { c.retries++; });
        f.on('fileSuccess', () => { success = true; });
        f.on('fileError', (_f, m) => { c.errors.push(`fileError: ${String(m).slice(0, 200)}`); });
        f.on('complete', () => resolve({ ok: success && c.errors.length === 0 }));
        f.upload();
      });
      c.cancel = () => { try { f.cancel(); } catch { /* ignore */ } };
    } else if (client === 'limit') {
      // The limit: one plain fetch POST of the whole file (a 1-chunk upload in the protocol's terms).
      identifier = `limit-${file.size}-${Math.random().toString(36).slice(2)}`;
      const ac = new AbortController();
      c.start = async () => {
        const fd = new FormData();
        const p = { ChunkNumber: 1, ChunkSize: file.size, CurrentChunkSize: file.size, TotalSize: file.size,
          Identifier: identifier, Filename: file.name, RelativePath: file.name, TotalChunks: 1 };
        for (const [key, v] of Object.entries(p)) fd.append('resumable' + key, String(v));
        fd.append('file', file, file.name);
        const init = { method: 'POST', body: fd, credentials: 'include', signal: ac.signal };
        if (cfg.headers) init.headers = cfg.headers;
        const r = await fetch(cfg.target, init);
        const text = await r.text();
        if (r.status !== 200) c.errors.push(`HTTP ${r.status}: ${text.slice(0, 200)}`);
        return { ok: r.status === 200 };
      };
      c.cancel = () => ac.abort();
    } else {
      throw new Error('unknown client ' + client);
    }
    c.identifier = identifier;
    let seed = null;
    if (cfg.resume) {
      if (client === 'limit') throw new Error('no resume variant for the limit');
      seed = await preseed(prefix, cfg, identifier, file.name, relativePath);
    }
    return { identifier, relativePath, seed };
  };

  // ---- many files (issue 13 §3) ------------------------------------------------------------
  // `count` small in-memory files of `size` bytes; addFiles is timed apart from the upload.

  /** Builds the files (bytes from seed + i) and their SHA-256s, computed here in the page. */
  B.makeMany = async (count, size, seed) => {
    B.many = [];
    const out = [];
    for (let i = 0; i < count; i++) {
      const bytes = makeBytes(size, seed + i);
      const name = `m-${String(i).padStart(5, '0')}.bin`;
      out.push({ name, size, sha256: hex(await crypto.subtle.digest('SHA-256', bytes)) });
      B.many.push(new File([bytes], name, { type: 'application/octet-stream', lastModified: 1700000000000 }));
    }
    return out;
  };

  /**
   * Creates the client and adds every file of B.many (timed: addMs); `B.run()` then uploads them.
   * cfg: { target, chunkSize, simultaneousUploads, timeoutMs }
   */
  B.prepareMany = async (client, cfg) => {
    const files = B.many;
    const n = files.length;
    const c = { client, cfg, retries: 0, errors: [] };
    B.current = c;
    const common = { target: cfg.target, chunkSize: cfg.chunkSize, simultaneousUploads: cfg.simultaneousUploads, withCredentials: true };
    const t0 = performance.now();
    // Resumable.js and Flow.js: done when every file succeeded or one failed for good.
    const waitAll = (lib) => new Promise((resolve) => {
      let succeeded = 0;
      lib.on('fileRetry', () => { c.retries++; });
      lib.on('fileSuccess', () => { succeeded++; });
      lib.on('fileError', (_f, m) => { c.errors.push(`fileError: ${String(m).slice(0, 200)}`); });
      lib.on('complete', () => resolve({ ok: succeeded === n && c.errors.length === 0, succeeded }));
      lib.upload();
    });
    if (client === 'resumable-wasm') {
      const up = new B.Uploader(common);
      up.on('fileRetry', () => { c.retries++; });
      up.on('fileError', (_f, e) => { c.errors.push(err(e)); });
      const added = await up.addFiles(files);
      if (added.length !== n) throw new Error(`addFiles accepted ${added.length} of ${n}`);
      c.start = () => up.upload().then((s) => ({ ok: s.succeeded.length === n && s.failed.length === 0, succeeded: s.succeeded.length }));
      c.cancel = () => { try { up.cancel(); } catch { /* ignore */ } };
    } else if (client === 'resumablejs') {
      const r = new window.Resumable(common);
      const added = new Promise((res) => r.on('filesAdded', res));
      r.addFiles(files);
      await Promise.race([added, new Promise((res) => setTimeout(res, 60000))]);
      if (r.files.length !== n) throw new Error(`Resumable.js has ${r.files.length} of ${n} files`);
      c.start = () => waitAll(r);
      c.cancel = () => { try { r.cancel(); } catch { /* ignore */ } };
    } else if (client === 'flowjs') {
      const f = new window.Flow({ ...common, maxChunkRetries: 3 });
      f.addFiles(files);
      if (f.files.length !== n) throw new Error(`Flow.js has ${f.files.length} of ${n} files`);
      c.start = () => waitAll(f);
      c.cancel = () => { try { f.cancel(); } catch { /* ignore */ } };
    } else {
      throw new Error('unknown client ' + client);
    }
    return { addMs: performance.now() - t0 };
  };

  /**
   * The page's Resource Timing entries of the run's `/upload` requests (URL starting with
   * `target`), counted by `nextHopProtocol` ('' where the answer sent no Timing-Allow-Origin).
   */
  B.uploadProtocolsSeen = (target) => {
    const seen = {};
    for (const e of performance.getEntriesByType('resource')) {
      if (e.name.startsWith(target)) seen[e.nextHopProtocol] = (seen[e.nextHopProtocol] ?? 0) + 1;
    }
    return seen;
  };

  /** Runs the prepared client: wall time from the upload() call to its completion. */
  B.run = async () => {
    const c = B.current;
    // Every run starts with an empty Resource Timing buffer, as a fresh page load would: the
    // buffer holds 250 entries, and a page that has made 250 requests already cannot see the
    // protocol of the next ones (resumable-wasm then treats it as unknown and probes).
    performance.clearResourceTimings();
    const t0 = performance.now();
    let timer;
    const timeout = new Promise((res) => { timer = setTimeout(() => res({ ok: false, timeout: true }), c.cfg.timeoutMs); });
    let out;
    try {
      out = await Promise.race([c.start(), timeout]);
    } catch (e) {
      out = { ok: false, thrown: err(e) };
    }
    const ms = performance.now() - t0;
    clearTimeout(timer);
    if (out.timeout) c.cancel();
    B.current = null;
    return { ...out, ms, retries: c.retries, errors: c.errors.slice(0, 5), identifier: c.identifier };
  };
})();
