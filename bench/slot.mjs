// Where a chunk request's time goes (issue 28's "half round trip"): resumable-wasm with a fixed
// number of slots, 1 MiB chunks, through server-fixture's `--link` at 1 Gbit/s, and per chunk
// POST from Chromium's own timing (CDP Network): the client's gap (the previous request of the
// slot finished → this one issued by the page), Chromium's queue (issued → first byte sent), the
// send, the wait for the answer's headers (the round trip, the transfer through the link and the
// server's handling) and the answer's body. Prints the medians.
//   node bench/slot.mjs [rtt ms=100] [slots=1] [chunks=24] [h1|h2]   (after `make build` and
//   `cargo build --release -p server-fixture`)
import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const [rtt = '100', slots = '1', chunks = '24', proto = 'h1'] = process.argv.slice(2);
const F = `${ROOT}/target/release/server-fixture`;
const fx = spawn(F, ['--page-listen', '127.0.0.1:0', '--api-listen', 'localhost:0', '--www', `${ROOT}/bench/pages`, '--mount', `/pkg=${ROOT}/pkg`, '--mount', `/vendor=${ROOT}/node_modules`, '--link', `rtt=${rtt},up=1000,down=1000`, ...(proto === 'h2' ? ['--tls'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
const info = await new Promise((ok) => { let b = ''; fx.stdout.on('data', (d) => { b += d; const l = b.split('\n').find((x) => x.startsWith('{')); if (l) ok(JSON.parse(l)); }); });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', ...(info.tls ? [`--ignore-certificate-errors-spki-list=${info.tls.spki_sha256}`] : [])] });
const page = await browser.newPage();
const cdp = await page.context().newCDPSession(page);
await cdp.send('Network.enable');
const reqs = new Map();
cdp.on('Network.requestWillBeSent', (e) => { if (e.request.url.includes('/upload') && e.request.method === 'POST') reqs.set(e.requestId, { will: e.timestamp * 1000 }); });
cdp.on('Network.responseReceived', (e) => { const r = reqs.get(e.requestId); if (r) { r.t = e.response.timing; r.proto = e.response.protocol; } });
cdp.on('Network.loadingFinished', (e) => { const r = reqs.get(e.requestId); if (r) r.done = e.timestamp * 1000; });
await page.goto(info.page + '/index.html');
await page.waitForFunction(() => window.__B && window.__B.ready);
const res = await page.evaluate(async ([api, slots, chunks]) => {
  const S = 1 << 20;
  const f = new File([new Uint8Array(S * chunks).map((_, i) => i)], 'slot.bin');
  const up = new window.__B.Uploader({ target: api + '/upload', chunkSize: S, simultaneousUploads: slots, testChunks: false });
  await up.addFiles([f]);
  const t0 = performance.now();
  const s = await up.upload();
  return { ms: performance.now() - t0, ok: s.succeeded.length };
}, [info.api, +slots, +chunks]);
await new Promise((r) => setTimeout(r, 300));
const list = [...reqs.values()].filter((r) => r.t && r.done).sort((a, b) => a.will - b.will);
const rows = list.map((r, i) => {
  const base = r.t.requestTime * 1000;
  const prev = list[i - slots];
  return { gap: prev ? r.will - prev.done : NaN, queue: base + r.t.sendStart - r.will, send: r.t.sendEnd - r.t.sendStart, wait: r.t.receiveHeadersStart - r.t.sendEnd, body: r.done - (base + r.t.receiveHeadersEnd), total: r.done - r.will };
});
const med = (k) => { const v = rows.map((r) => r[k]).filter((x) => !Number.isNaN(x)).sort((a, b) => a - b); return v[v.length >> 1].toFixed(1); };
console.log(`rtt ${rtt} slots ${slots}: ${res.ok} file ok, ${res.ms.toFixed(0)} ms, ${(res.ms / (chunks / slots)).toFixed(1)} ms per chunk per slot; proto ${list[0]?.proto}; n=${rows.length}`);
console.log('median ms: gap', med('gap'), 'queue', med('queue'), 'send', med('send'), 'wait', med('wait'), 'body', med('body'), 'total', med('total'));
await browser.close(); fx.kill();
