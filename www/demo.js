// The demo page: drives the package from /pkg/ against the fixture's API origin.
import init, { Uploader } from '/pkg/resumable_wasm.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
// The API listens on the next port, on the page's scheme (`make demo TLS=1` serves both over HTTPS).
const api = params.get('api') ?? `${location.protocol}//localhost:${Number(location.port || 80) + 1}`;
$('page-origin').textContent = location.origin;
$('api-origin').textContent = api;

await init();

let uploader = null;
let queued = [];            // { file, relativePath } added so far, re-added when options change
const rows = new Map();     // identifier -> <li>

function options() {
  const header = $('o-header').value.trim();
  const opts = {
    target: `${api}/upload`,
    chunkSize: Math.max(1, Number($('o-chunk').value) | 0) * 1024,
    // Empty: 'auto' (the default), which adapts the number to the link.
    simultaneousUploads: $('o-sim').value ? Number($('o-sim').value) | 0 : 'auto',
    testChunks: { auto: 'auto', true: true, false: false }[$('o-test').value],
    protocol: $('o-proto').value,
    method: $('o-method').value,
    progress: $('o-progress').value,
    withCredentials: $('o-cred').checked,
    timeout: 15000,
    // Unfinished uploads survive a reload or a restart (the "Unfinished uploads" panel).
    persist: true,
  };
  const colon = header.indexOf(':');
  if (colon > 0) opts.headers = { [header.slice(0, colon).trim()]: header.slice(colon + 1).trim() };
  if (opts.protocol.startsWith('s3')) {
    // Direct to S3: the callbacks say where each part goes (no target); parts are PUTs (s3) or
    // form POSTs (s3-post) of their own, so the body and header options do not apply.
    // persist stays under s3 (an unfinished upload resumes after a reload through listParts);
    // s3-post does not take persist or checksum yet (an invalid error).
    const drop = ['target', 'method', 'headers', 'testChunks'];
    if (opts.protocol === 's3-post') drop.push('persist', 'checksum');
    for (const k of drop) delete opts[k];
    opts.s3 = opts.protocol === 's3' ? s3Callbacks() : s3PostCallbacks();
  }
  return opts;
}

/**
 * The `s3` option of an app whose server is the fixture's S3 signing role: each callback POSTs
 * JSON (as text/plain, a simple request: no preflight) to its /s3/* route on the API origin.
 */
function s3Callbacks() {
  const post = s3Callbacks.post;
  const upload = (p) => ({ uploadId: p.uploadId, key: p.key });
  return {
    createMultipartUpload: (file) => post('create', { name: file.name || 'blob' }),
    // With the `checksum` option, p.checksum is the part's CRC-32C (S3's base64) to sign.
    signPart: (_file, p) => post('sign-part', { ...upload(p), partNumber: p.partNumber, checksum: p.checksum }),
    listParts: (_file, p) => post('list-parts', upload(p)),
    completeMultipartUpload: (_file, p) => post('complete', { ...upload(p), parts: p.parts }),
    abortMultipartUpload: (_file, p) => post('abort', upload(p)),
    signUpload: (file) => post('sign-upload', { name: file.name || 'blob' }),
  };
}
s3Callbacks.post = async (path, body) => {
  const r = await fetch(`${api}/s3/${path}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'text/plain' } });
  const json = await r.json();
  if (!r.ok) throw Object.assign(new Error(json.message || `${path} answered ${r.status}`), { code: json.error });
  return json;
};

/**
 * The `s3` option of `protocol: 's3-post'` against the same role: one POST policy per file, the
 * chunks composed into the object by the role (no preflight at all).
 */
function s3PostCallbacks() {
  const post = (path, body) => s3Callbacks.post(path, body);
  return {
    createUpload: (file, p) => post('policy', { name: file.name || 'blob', chunkSize: p.chunkSize, keyPrefix: p.keyPrefix }),
    listChunks: (_file, u) => post('list-chunks', { keyPrefix: u.keyPrefix }),
    complete: (_file, u, chunks) => post('compose', { keyPrefix: u.keyPrefix, chunks }),
    abort: (_file, u) => post('discard', { keyPrefix: u.keyPrefix }),
  };
}

// The objects this page completed in the bucket (keys, from each file's location), newest last.
const bucketKeys = [];

function fmtBytes(n) {
  if (!Number.isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// Each row's buttons: the uploader's per-file control and the statuses it applies to.
const rowControls = [
  ['Pause', 'pauseFile', ['queued', 'uploading']],
  ['Resume', 'resumeFile', ['paused']],
  ['Retry', 'retryFile', ['error', 'cancelled']],
  ['Cancel', 'cancelFile', ['queued', 'uploading', 'paused']],
];

function render(file) {
  let li = rows.get(file.identifier);
  if (!li) {
    li = document.createElement('li');
    li.innerHTML = '<div class="name"></div><progress max="1" value="0"></progress><div class="meta"></div><div class="row-buttons" role="group"></div><div class="err" role="alert"></div>';
    const group = li.querySelector('.row-buttons');
    group.setAttribute('aria-label', `Controls of ${file.name}`);
    for (const [label, method] of rowControls) {
      const button = Object.assign(document.createElement('button'), { type: 'button', textContent: label });
      button.dataset.control = method;
      button.setAttribute('aria-label', `${label} ${file.name}`);
      // By identifier: the row outlives an uploader rebuilt after an options change.
      button.addEventListener('click', () => { uploader?.[method](file.identifier); renderAll(); });
      group.append(button);
    }
    rows.set(file.identifier, li);
    $('file-list').append(li);
  }
  for (const [, method, statuses] of rowControls) {
    li.querySelector(`[data-control=${method}]`).disabled = !statuses.includes(file.status);
  }
  li.querySelector('.name').textContent = `${file.relativePath || file.name} (${fmtBytes(file.size)})`;
  const bar = li.querySelector('progress');
  bar.value = file.progress;
  bar.setAttribute('aria-label', `${file.name}: ${Math.round(file.progress * 100)}%`);
  const eta = file.eta != null && file.status === 'uploading' ? `, ${Math.ceil(file.eta / 1000)} s left` : '';
  li.querySelector('.meta').textContent = `${file.status} · ${Math.round(file.progress * 100)}% · ${fmtBytes(file.speed)}/s${eta}`;
  const err = li.querySelector('.err');
  err.textContent = '';
  if (file.error) {
    const kind = document.createElement('span');
    kind.className = 'kind';
    kind.textContent = file.error.kind;
    err.append(kind, ` ${file.error.message}`);
    if (file.error.hint) err.append(document.createElement('br'), `Fix: ${file.error.hint}`);
  }
}

/** Re-renders every row: controls change statuses without a per-file event. */
function renderAll() {
  for (const f of uploader?.files ?? []) render(f);
}

const drop = $('drop');

function makeUploader() {
  try {
    const opts = options();
    const up = new Uploader(opts);
    // The library's drop target walks dropped folders and keeps each file's relative path.
    uploader?.unAssignDrop(drop);
    up.assignDrop(drop);
    up.on('filesAdded', (files) => {
      for (const f of files) if (!queued.some((q) => q.file === f.file)) queued.push({ file: f.file, relativePath: f.relativePath });
    });
    for (const ev of ['fileAdded', 'fileProgress', 'fileSuccess', 'fileRetry']) up.on(ev, (f) => f && render(f));
    // Under s3, fileSuccess carries the object's URL in the bucket: <store>/<bucket>/<key>.
    up.on('fileSuccess', (_f, location) => {
      if (!opts.protocol.startsWith('s3') || !location) return;
      const path = decodeURIComponent(new URL(location).pathname);
      bucketKeys.push(path.slice(path.indexOf('/', 1) + 1));
      refreshServer();
    });
    up.on('fileError', (f) => render(f));
    for (const ev of ['pause', 'cancel', 'complete']) up.on(ev, renderAll);
    for (const ev of ['filesAdded', 'cancel', 'complete']) up.on(ev, refreshPending);
    up.on('persistWarning', (cause) => alertMessage(`unfinished uploads are not kept: ${cause?.name ?? ''} ${cause?.message ?? cause}`));
    up.on('progress', (p) => { $('overall').value = p; $('overall-text').textContent = `${Math.round(p * 100)}%`; });
    up.on('fileRejected', (_file, err) => alertMessage(`${err.kind}: ${err.message}`));
    $('preflight').textContent = describeReport(up.preflightReport());
    return up;
  } catch (err) {
    $('preflight').textContent = `${err.kind ?? 'error'}: ${err.message}`;
    return null;
  }
}

function describeReport(r) {
  const line = (name, p) => `${name}: ${p.preflight ? 'PREFLIGHT' : 'no preflight'}${p.reasons.length ? `\n  - ${p.reasons.join('\n  - ')}` : ''}`;
  if ($('o-proto').value === 's3') return line('part PUT', r.upload);
  if ($('o-proto').value === 's3-post') return line('chunk form POST', r.upload);
  return `${line('probe GET', r.test)}\n${line('chunk POST', r.upload)}`;
}

function alertMessage(text) {
  const li = document.createElement('li');
  li.className = 'err';
  li.setAttribute('role', 'alert');
  li.textContent = text;
  $('file-list').append(li);
}

// The unfinished uploads this browser kept (persist): list, resume, forget.
async function refreshPending() {
  const list = (await uploader?.pending()) ?? [];
  $('pending-list').replaceChildren(...list.map((p) => {
    const li = document.createElement('li');
    const done = p.size ? Math.round((p.confirmed / p.size) * 100) : 0;
    const how = p.file ? 'kept in the browser' : p.handle ? 'kept as a file handle' : 'choose the file again to resume';
    li.append(Object.assign(document.createElement('div'), { className: 'name', textContent: `${p.relativePath} (${fmtBytes(p.size)})` }),
      Object.assign(document.createElement('div'), { className: 'meta', textContent: `${done}% on the server · ${how}` }));
    const forget = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Forget' });
    forget.setAttribute('aria-label', `Forget ${p.name}`);
    forget.addEventListener('click', async () => { await uploader?.forgetPending(p.identifier); refreshPending(); });
    li.append(forget);
    return li;
  }));
}
$('resume-pending').addEventListener('click', async () => {
  if (!uploader) return;
  // From the click: a kept handle may need the user's permission again.
  const added = await uploader.resumePending();
  refreshPending();
  if (added.length) $('upload').click();
});

function addFiles(list) {
  uploader?.addFiles(list);
}

// Options changes rebuild the uploader (not while uploading) and refresh the preflight report.
$('options').addEventListener('input', () => {
  if (uploader?.isUploading()) return;
  const next = makeUploader();
  if (!next) return;
  uploader = next;
  for (const q of queued) uploader.addFile(q.file, { relativePath: q.relativePath });
  refreshPending(); // records are kept per set of wire options
});
uploader = makeUploader();
refreshPending();

const picker = Object.assign(document.createElement('input'), { type: 'file', multiple: true, hidden: true });
const folderPicker = Object.assign(document.createElement('input'), { type: 'file', multiple: true, hidden: true });
folderPicker.setAttribute('webkitdirectory', '');
document.body.append(picker, folderPicker);
for (const p of [picker, folderPicker]) p.addEventListener('change', () => { addFiles([...p.files]); p.value = ''; });
drop.addEventListener('click', () => picker.click());
drop.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); picker.click(); } });
drop.addEventListener('dragover', () => drop.classList.add('over'));
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', () => drop.classList.remove('over'));
$('choose-folder').addEventListener('click', () => folderPicker.click());

$('upload').addEventListener('click', async () => {
  if (!uploader) uploader = makeUploader();
refreshPending();
  if (!uploader) return;
  const summary = await uploader.upload();
  queued = queued.filter((q) => !summary.succeeded.some((s) => s.file === q.file));
  refreshServer();
});
$('pause').addEventListener('click', () => uploader?.pause());
$('resume').addEventListener('click', () => { uploader?.resume(); renderAll(); });
$('cancel').addEventListener('click', () => uploader?.cancel());

// The fixture's introspection and runtime switches.
async function refreshServer() {
  try {
    const stats = await (await fetch(`${api}/__fixture/stats`)).json();
    $('s-options').textContent = stats.requests.OPTIONS ?? 0;
    $('s-get').textContent = stats.requests.GET ?? 0;
    $('s-post').textContent = stats.requests.POST ?? 0;
    $('s-bytes').textContent = fmtBytes(stats.bytes_received ?? 0);
    const files = await (await fetch(`${api}/__fixture/files`)).json();
    $('server-files').replaceChildren(...files.map((f) => {
      const li = document.createElement('li');
      li.textContent = `${f.name} — ${fmtBytes(f.size)} — sha256 ${f.sha256.slice(0, 16)}…`;
      return li;
    }));
    const objects = await Promise.all(bucketKeys.map(async (key) =>
      (await fetch(`${api}/__fixture/s3/object?key=${encodeURIComponent(key)}`)).json()));
    $('bucket-files').replaceChildren(...objects.map((o) => {
      const li = document.createElement('li');
      li.textContent = `${o.key} — ${fmtBytes(o.size)} — sha256 ${o.sha256.slice(0, 16)}…`;
      return li;
    }));
  } catch { /* the fixture may be restarting */ }
}
setInterval(refreshServer, 1000);
// The fixture answers its control calls from this page's origin; state changes must be JSON.
$('reset-stats').addEventListener('click', async () => {
  await fetch(`${api}/__fixture/reset`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  refreshServer();
});

async function loadServerConfig() {
  try {
    const cfg = await (await fetch(`${api}/__fixture/config`)).json();
    $('f-cors').value = cfg.cors;
    $('f-fail').value = Math.round((cfg.fail_rate ?? 0) * 100);
    $('f-delay').value = cfg.delay_ms ?? 0;
    $('f-stall').checked = !!cfg.stall;
  } catch { /* fixture without --control */ }
}
$('server').addEventListener('change', async () => {
  await fetch(`${api}/__fixture/config`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      cors: $('f-cors').value,
      fail_rate: Number($('f-fail').value) / 100,
      fail_status: 503,
      delay_ms: Number($('f-delay').value) | 0,
      stall: $('f-stall').checked,
    }),
  });
});
loadServerConfig();
refreshServer();

// Direct to S3 is offered when the fixture signs for a store (`make demo` with moto installed):
// this creates the bucket if new and sets its CORS rules for this page (PUT with the ETag
// exposed, for s3; POST, for s3-post).
async function enableS3() {
  try {
    const r = await fetch(`${api}/__fixture/s3/bucket`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"cors":"all"}' });
    if (!r.ok) return;
    for (const v of ['s3', 's3-post']) $('o-proto').querySelector(`option[value=${v}]`).disabled = false;
    $('s3-state').textContent = 'On: the bucket allows this page to PUT parts and read their ETag, and to POST chunks.';
  } catch { /* no S3 role */ }
}
enableS3();
