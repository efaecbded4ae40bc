// `make bench`: resumable-wasm against Resumable.js 1.1.0, Flow.js 2.14.1 and the single-POST
// limit, side by side in one headless Chromium, against one server-fixture (release build).
// Writes bench/results.json (every run, raw) and BENCHMARKS.md (the tables); `make bench` points
// both into target/bench/ (ignored) and `make bench-publish` copies a run to the committed files.
//
// Environment knobs (defaults = the committed matrix):
//   BENCH_ROUNDS=5        rounds per client per 64 MiB scenario
//   BENCH_ROUNDS_BIG=3    rounds per client per 512 MiB scenario
//   node bench/run.mjs --render   only re-renders BENCHMARKS.md from the JSON (e.g. after editing bench/NOTES.md)
//   BENCH_ONLY=a,b        run only these scenario ids (many-files ids too)
//   BENCH_ROUNDS_MANY=1   rounds per client per many-files scenario
//   BENCH_MANY_CLIENTS=a,b   the many-files clients (default resumable-wasm,resumablejs,flowjs)
//   BENCH_PROFILE=dir     many-files runs also write a CPU profile of the page (CDP) into dir
//   BENCH_OUT=path        JSON output (default bench/results.json); BENCH_MD=path (default BENCHMARKS.md)
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, readFileSync, writeFileSync, existsSync, statfsSync, openSync, writeSync, closeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir, cpus, totalmem, platform, release } from 'node:os';
import { join, dirname, resolve, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { gzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURE_BIN = process.env.SERVER_FIXTURE_BIN || join(ROOT, 'target/release/server-fixture');
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
  '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'];
const MiB = 1024 * 1024;
const MAX_AGE = 600;
const ROUNDS = Number(process.env.BENCH_ROUNDS || 5);
const ROUNDS_BIG = Number(process.env.BENCH_ROUNDS_BIG || 3); // 512 MiB rounds are ~30 s each: 3 keep `make bench` < 15 min on 2 cores
const OUT_JSON = resolve(ROOT, process.env.BENCH_OUT || 'bench/results.json');
const OUT_MD = resolve(ROOT, process.env.BENCH_MD || 'BENCHMARKS.md');
const CLIENTS = ['resumable-wasm', 'resumablejs', 'flowjs', 'limit'];
const LABEL = { 'resumable-wasm': 'resumable-wasm', resumablejs: 'Resumable.js 1.1.0', flowjs: 'Flow.js 2.14.1', limit: 'limit (1 POST)' };
const AUTH = { Authorization: 'Bearer bench-token' };

/** The matrix. Every scenario: a fresh page, one file, `rounds` interleaved rounds of `clients`. */
const SCENARIOS = [
  { id: '64M-1M-d0', size: 64 * MiB, chunk: 1 * MiB, delay: 0 },
  { id: '64M-5M-d0', size: 64 * MiB, chunk: 5 * MiB, delay: 0 },
  { id: '64M-1M-d25', size: 64 * MiB, chunk: 1 * MiB, delay: 25 },
  { id: '64M-5M-d25', size: 64 * MiB, chunk: 5 * MiB, delay: 25 },
  { id: '64M-1M-d25-auth', size: 64 * MiB, chunk: 1 * MiB, delay: 25, auth: true },
  { id: '64M-1M-d25-resume', size: 64 * MiB, chunk: 1 * MiB, delay: 25, resume: true, clients: CLIENTS.filter((c) => c !== 'limit') },
  { id: '512M-1M-d0', size: 512 * MiB, chunk: 1 * MiB, delay: 0, big: true },
  { id: '512M-5M-d0', size: 512 * MiB, chunk: 5 * MiB, delay: 0, big: true },
].filter((s) => !process.env.BENCH_ONLY || process.env.BENCH_ONLY.split(',').includes(s.id));

const log = (...a) => console.error(`[bench ${((Date.now() - T0) / 1000).toFixed(0).padStart(4)} s]`, ...a);
const T0 = Date.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// server-fixture

async function startFixture() {
  if (!existsSync(FIXTURE_BIN)) throw new Error(`${FIXTURE_BIN} missing: cargo build --release -p server-fixture`);
  // Data on tmpfs when there is room: the fixture fsyncs every chunk, and on a disk that cost
  // (identical for every client) would dominate what is measured here, the clients.
  const shm = '/dev/shm';
  let base = tmpdir();
  try {
    const free = statfsSync(shm);
    if (free.bavail * free.bsize > 3 * 1024 * MiB) base = shm;
  } catch { /* no /dev/shm */ }
  const dataDir = mkdtempSync(join(base, 'rw-bench-data-'));
  const args = [
    '--www', join(ROOT, 'bench/pages'),
    '--mount', `/pkg=${join(ROOT, 'pkg')}`,
    '--mount', `/vendor=${join(ROOT, 'node_modules')}`,
    '--page-listen', '127.0.0.1:0', // page origin http://127.0.0.1:P
    '--api-listen', 'localhost:0', // API origin http://localhost:Q: cross-origin
    '--data-dir', dataDir,
    '--cors', 'strict', // allowlist = the page origin, credentials, explicit headers
    '--max-age', String(MAX_AGE),
    '--max-lifetime', '1800',
  ];
  const proc = spawn(FIXTURE_BIN, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr = (stderr + d).slice(-20000); });
  const lines = createInterface({ input: proc.stdout });
  const first = await new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`fixture printed nothing in 15 s: ${stderr}`)), 15000);
    lines.once('line', (l) => { clearTimeout(t); res(l); });
    proc.once('exit', (c) => { clearTimeout(t); rej(new Error(`fixture exited ${c}: ${stderr}`)); });
  });
  lines.on('line', () => {});
  const info = JSON.parse(first);
  // Control calls carry the fixture's token (printed in its start line); POSTs are JSON.
  const json = async (path, init = {}) => {
    const headers = { 'x-fixture-token': info.control_token, ...(init.method === 'POST' ? { 'content-type': 'application/json' } : {}) };
    const r = await fetch(info.page + path, { ...init, headers });
    const text = await r.text();
    if (!r.ok) throw new Error(`${init?.method ?? 'GET'} ${path} → ${r.status}: ${text}`);
    return text ? JSON.parse(text) : null;
  };
  return {
    info, args, dataDir, dataOnTmpfs: base === shm, get stderr() { return stderr; },
    stats: () => json('/__fixture/stats'),
    files: () => json('/__fixture/files'),
    reset: (data) => json(`/__fixture/reset${data ? '?data=1' : ''}`, { method: 'POST' }),
    config: (patch) => json('/__fixture/config', { method: 'POST', body: JSON.stringify(patch) }),
    async stop() {
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await Promise.race([new Promise((r) => proc.once('exit', r)), sleep(3000)]);
        if (proc.exitCode === null) proc.kill('SIGKILL');
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
    kill() { try { proc.kill('SIGKILL'); } catch { /* gone */ } },
  };
}

// ---------------------------------------------------------------------------------------------
// browser page

async function openPage(browser, fx) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e?.stack ?? e)));
  const cdp = await context.newCDPSession(page);
  const resp = await page.goto(`${fx.info.page}/index.html`, { waitUntil: 'load' });
  if (resp?.status() !== 200) throw new Error(`GET /index.html → ${resp?.status()}`);
  await page.waitForFunction(() => window.__B && (window.__B.ready || window.__B.loadError), null, { timeout: 15000 });
  const loadError = await page.evaluate(() => window.__B.loadError);
  if (loadError) throw new Error(`page could not load resumable-wasm: ${loadError}`);
  await cdp.send('HeapProfiler.enable');
  return { context, page, cdp, pageErrors, close: () => context.close() };
}

/** JS heap (V8 used size) and ArrayBuffer backing stores of the page, via CDP Runtime.getHeapUsage. */
async function heapSample(cdp) {
  const h = await cdp.send('Runtime.getHeapUsage');
  return { used: h.usedSize, total: h.totalSize, backing: h.backingStorageSize ?? null, embedder: h.embedderHeapUsedSize ?? null };
}

// ---------------------------------------------------------------------------------------------
// the benchmark files: written once per size (tmpfs when available), picked by the page

const FILES_DIR = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'rw-bench-files-'));
const fileCache = new Map();

/** Writes `size` deterministic bytes (the tests/e2e xorshift32 generator, seed 7); returns { path, sha256 }. */
async function benchFile(size, seed = 7) {
  if (fileCache.has(size)) return fileCache.get(size);
  const path = join(FILES_DIR, `bench-${size / MiB}MiB.bin`);
  const fd = openSync(path, 'w');
  const hash = createHash('sha256');
  let x = (seed >>> 0) ^ 0x9e3779b9 || 1;
  const piece = 8 * MiB; // multiple of 4: the word stream continues across pieces
  const buf = new Uint8Array(piece);
  const u32 = new Uint32Array(buf.buffer);
  for (let off = 0; off < size; off += piece) {
    const n = Math.min(piece, size - off);
    if (n % 4) throw new Error('benchmark sizes are multiples of 4');
    for (let i = 0; i < n >>> 2; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; u32[i] = x >>> 0; }
    const view = buf.subarray(0, n);
    hash.update(view);
    writeSync(fd, view);
  }
  closeSync(fd);
  const f = { path, size, sha256: hash.digest('hex') };
  fileCache.set(size, f);
  return f;
}

/** Puts the file into the page's <input type=file> (a disk-backed File) and hashes it in the page. */
async function pickFile(pg, f) {
  await pg.page.setInputFiles('#pick', f.path);
  const info = await pg.page.evaluate(() => window.__B.takePicked());
  if (info.sha256 !== f.sha256 || info.size !== f.size) throw new Error(`page sees ${info.size} B sha256 ${info.sha256}, written ${f.size} B ${f.sha256}`);
  return info;
}

// ---------------------------------------------------------------------------------------------
// one run

let runSeq = 0;

async function oneRun(fx, pg, sc, client, fileInfo, { round, warmup = false } = {}) {
  const runId = `${sc.id}-${client}-${warmup ? 'w' : round}-${++runSeq}`;
  // A per-run query parameter on the target (the fixture ignores unknown parameters) gives every
  // run a cold CORS preflight cache, as a fresh page load would have: otherwise a preflight
  // answered with Access-Control-Max-Age in round 1 would be reused by later rounds.
  const target = `${fx.info.api}/upload?run=${encodeURIComponent(runId)}`;
  const cfg = {
    target,
    seedTarget: `${fx.info.api}/upload?seed=${encodeURIComponent(runId)}`,
    chunkSize: sc.chunk,
    simultaneousUploads: 3,
    headers: sc.auth ? AUTH : undefined,
    resume: !!sc.resume,
    timeoutMs: sc.big ? 180000 : 90000,
  };
  await fx.reset(true);
  const prep = await pg.page.evaluate(([c, g]) => window.__B.prepare(c, g), [client, cfg]);
  await fx.reset(false); // the pre-seed (resume) is not counted
  await pg.cdp.send('HeapProfiler.collectGarbage');
  const base = await heapSample(pg.cdp);
  const wasmBefore = await pg.page.evaluate(() => window.__B.wasmMemoryBytes());
  let peak = { ...base };
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      await sleep(100);
      if (!sampling) break;
      try {
        const s = await heapSample(pg.cdp);
        if (s.used > peak.used) peak.used = s.used;
        if (s.backing != null && s.backing > (peak.backing ?? 0)) peak.backing = s.backing;
      } catch { /* page busy/closed */ }
    }
  })();
  let out;
  try {
    out = await pg.page.evaluate(() => window.__B.run());
  } finally {
    sampling = false;
    await sampler;
  }
  const end = await heapSample(pg.cdp);
  peak.used = Math.max(peak.used, end.used);
  if (end.backing != null) peak.backing = Math.max(peak.backing ?? 0, end.backing);
  const wasmAfter = await pg.page.evaluate(() => window.__B.wasmMemoryBytes());

  // Let straggling requests land before reading the counters (none expected after completion).
  await sleep(sc.delay ? sc.delay * 2 + 20 : 20);
  const stats = await fx.stats();
  const files = await fx.files();
  const upl = (stats.log ?? []).filter((e) => e.path === '/upload');
  const count = (m) => upl.filter((e) => e.method === m).length;
  const requests = { OPTIONS: count('OPTIONS'), GET: count('GET'), POST: count('POST') };
  // Which URLs the preflights were for: the run's bare target (constant-URL uploads, e.g.
  // multipart POSTs with the parameters in the body) or a per-chunk URL (parameters in the query:
  // probe GETs, Resumable.js POSTs). Chromium caches a preflight per URL.
  const preflights = { bareUrl: 0, perChunkUrl: 0 };
  for (const e of upl) if (e.method === 'OPTIONS') preflights[/ChunkNumber=/.test(e.query ?? '') ? 'perChunkUrl' : 'bareUrl']++;
  const non2xx = upl.filter((e) => e.method !== 'OPTIONS' && !(e.status >= 200 && e.status < 300)).map((e) => `${e.method} ${e.status} chunk=${e.chunk}`);
  const stored = files.filter((f) => f.size === fileInfo.size);
  const sha = stored.length ? stored[stored.length - 1].sha256 : null;
  const verified = stored.length === 1 && sha === fileInfo.sha256;
  const ok = !!out.ok && verified;
  const failure = ok ? null : [
    !out.ok && `client reported failure${out.timeout ? ' (timeout)' : ''}${out.thrown ? `: ${out.thrown}` : ''}${out.errors?.length ? `: ${out.errors.join('; ')}` : ''}${out.failed?.length ? `: ${out.failed.join('; ')}` : ''}`,
    !verified && `server file check failed: ${stored.length} file(s) of ${fileInfo.size} B, sha256 ${sha ?? '-'} vs page ${fileInfo.sha256}`,
  ].filter(Boolean).join('; ');
  const ms = out.ms;
  const rec = {
    scenario: sc.id, client, round: warmup ? null : round, warmup, ok, failure,
    ms: Math.round(ms * 10) / 10,
    mibPerS: ok ? Math.round((sc.size / MiB / (ms / 1000)) * 10) / 10 : null,
    requests,
    preflights,
    statsRequests: stats.requests,
    bytesReceived: stats.bytes_received,
    non2xx: non2xx.slice(0, 20),
    non2xxCount: non2xx.length,
    retries: out.retries,
    seed: prep.seed,
    identifier: prep.identifier,
    memory: {
      baseJsHeapUsed: base.used,
      peakJsHeapUsed: peak.used,
      baseArrayBuffers: base.backing,
      peakArrayBuffers: peak.backing,
      wasmMemoryBefore: wasmBefore,
      wasmMemoryAfter: wasmAfter,
      // JS heap plus, for resumable-wasm, its linear memory (monotonic: the end value is the peak).
      peakPage: peak.used + (client === 'resumable-wasm' ? wasmAfter : 0),
    },
    pageErrors: pg.pageErrors.splice(0),
  };
  if (process.env.BENCH_KEEP_LOG) rec.log = upl.map((e) => `${e.t_ms} ${e.method} ${e.status} ${e.chunk ?? ''}`);
  log(`${warmup ? 'warm-up' : `round ${round}`} ${sc.id} ${client.padEnd(14)} ${ok ? 'ok ' : 'FAIL'} ${ms.toFixed(0).padStart(6)} ms ` +
    `${rec.mibPerS ?? '-'} MiB/s  O/G/P ${requests.OPTIONS}/${requests.GET}/${requests.POST}  peak ${(rec.memory.peakPage / MiB).toFixed(1)} MiB` +
    `${rec.retries ? ` retries=${rec.retries}` : ''}${failure ? `  ${failure}` : ''}`);
  return rec;
}

// ---------------------------------------------------------------------------------------------
// statistics

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const range = (xs) => (xs.length ? [Math.min(...xs), Math.max(...xs)] : [null, null]);
const uniq = (xs) => [...new Set(xs.map((x) => JSON.stringify(x)))].map((x) => JSON.parse(x));

function summarize(sc, runs) {
  const clients = sc.clients ?? CLIENTS;
  const byClient = {};
  for (const c of clients) {
    const rs = runs.filter((r) => r.client === c && !r.warmup);
    const good = rs.filter((r) => r.ok);
    const ms = good.map((r) => r.ms);
    const tp = good.map((r) => r.mibPerS);
    byClient[c] = {
      runs: rs.length,
      ok: good.length,
      failures: rs.filter((r) => !r.ok).map((r) => `round ${r.round}: ${r.failure}`),
      msMedian: median(ms), msRange: range(ms),
      mibPerSMedian: median(tp), mibPerSRange: range(tp),
      requests: uniq(rs.map((r) => r.requests)),
      preflights: uniq(rs.map((r) => r.preflights)),
      retries: rs.reduce((a, r) => a + (r.retries || 0), 0),
      non2xx: rs.reduce((a, r) => a + r.non2xxCount, 0),
      peakPageMedian: median(good.map((r) => r.memory.peakPage)),
      peakPageMax: good.length ? Math.max(...good.map((r) => r.memory.peakPage)) : null,
      peakArrayBuffersMax: good.length && good[0].memory.peakArrayBuffers != null ? Math.max(...good.map((r) => r.memory.peakArrayBuffers)) : null,
      wasmMemoryMax: good.length ? Math.max(...good.map((r) => r.memory.wasmMemoryAfter)) : null,
    };
  }
  // Ratios per round: time(A) / time(B) for the same round; rounds where either failed are skipped.
  const ratios = {};
  for (const a of clients) {
    for (const b of clients) {
      if (a === b) continue;
      const xs = [];
      for (let r = 1; r <= sc.rounds; r++) {
        const ra = runs.find((x) => x.client === a && x.round === r && x.ok);
        const rb = runs.find((x) => x.client === b && x.round === r && x.ok);
        if (ra && rb) xs.push(ra.ms / rb.ms);
      }
      ratios[`${a}/${b}`] = { timeRatioMedian: median(xs), timeRatioRange: range(xs), n: xs.length, perRound: xs.map((x) => Math.round(x * 1000) / 1000) };
    }
  }
  return { byClient, ratios };
}

// ---------------------------------------------------------------------------------------------
// sizes, machine

function shippedSizes() {
  const gz = (p) => gzipSync(readFileSync(join(ROOT, p)), { level: 9 }).length;
  const raw = (p) => readFileSync(join(ROOT, p)).length;
  const entry = (files, note) => ({ files, raw: files.reduce((a, f) => a + raw(f), 0), gzip: files.reduce((a, f) => a + gz(f), 0), note });
  return {
    'resumable-wasm': entry(['pkg/resumable_wasm_bg.wasm', 'pkg/resumable_wasm.js'], 'ES module glue + .wasm (wasm-opt -Oz)'),
    resumablejs: entry(['node_modules/resumablejs/resumable.js'], 'npm ships no minified file: unminified'),
    flowjs: entry(['node_modules/@flowjs/flow.js/dist/flow.min.js'], 'dist/flow.min.js'),
    limit: { files: [], raw: 0, gzip: 0, note: 'no library' },
  };
}

function machine(browserVersion) {
  const sh = (cmd, args) => { try { return execFileSync(cmd, args, { encoding: 'utf8' }).trim(); } catch { return null; } };
  return {
    nproc: Number(sh('nproc', [])) || cpus().length,
    cpu: cpus()[0]?.model ?? null,
    memTotalGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${platform()} ${release()}`,
    node: process.version,
    chromium: browserVersion,
    commit: sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']),
  };
}

// ---------------------------------------------------------------------------------------------
// main

async function main() {
  log(`fixture ${FIXTURE_BIN}`);
  const fx = await startFixture();
  process.on('exit', () => fx.kill());
  // The limit sends the whole file as one body: raise the fixture's per-chunk cap (64 MiB default).
  await fx.config({ max_chunk_bytes: 1024 * MiB });
  log(`page ${fx.info.page}  api ${fx.info.api}`);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const results = {
    date: new Date().toISOString(),
    machine: machine(browser.version()),
    settings: {
      page: fx.info.page, api: fx.info.api, cors: 'strict', accessControlMaxAge: MAX_AGE, withCredentials: true,
      dataDir: fx.dataOnTmpfs ? 'tmpfs (/dev/shm)' : 'disk (tmpdir)', simultaneousUploads: 3, rounds: ROUNDS, roundsBig: ROUNDS_BIG, fixtureArgs: fx.args.filter((a) => !a.includes('/')),
      memoryMethod: 'CDP Runtime.getHeapUsage sampled every 100 ms during the run after HeapProfiler.collectGarbage (usedSize = JS heap; backingStorageSize = ArrayBuffer backing stores), plus WebAssembly.Memory.buffer.byteLength of resumable-wasm read after the run (linear memory never shrinks, so that is its peak)',
      timing: 'performance.now() in the page around upload() (client created and file added beforehand, untimed) until its completion (promise / complete event / fetch response)',
    },
    sizes: shippedSizes(),
    scenarios: [],
    runs: [],
  };
  let failed = false;
  try {
    for (const base of SCENARIOS) {
      const sc = { ...base, rounds: base.big ? ROUNDS_BIG : ROUNDS };
      const clients = sc.clients ?? CLIENTS;
      await fx.config({ delay_ms: sc.delay });
      const t0 = Date.now();
      let pg = await openPage(browser, fx);
      // Warm-up (untimed, verified): each client once on a small file, so JIT and lazy
      // initialisation are not billed to round 1.
      const small = await pg.page.evaluate(() => window.__B.makeFile('warmup.bin', 8 * 1048576 + 7, 99));
      for (const c of clients) results.runs.push(await oneRun(fx, pg, { ...sc, size: small.size }, c, small, { warmup: true }));
      const fileInfo = await pickFile(pg, await benchFile(sc.size));
      log(`scenario ${sc.id}: file ${fileInfo.name} ${sc.size} B sha256 ${fileInfo.sha256.slice(0, 16)}… built in ${fileInfo.ms} ms`);
      const runs = [];
      for (let round = 1; round <= sc.rounds; round++) {
        for (const c of clients) {
          let rec;
          try {
            rec = await oneRun(fx, pg, sc, c, fileInfo, { round });
          } catch (e) {
            rec = { scenario: sc.id, client: c, round, warmup: false, ok: false, failure: `harness error: ${e.message}`, requests: {}, non2xxCount: 0, memory: {} };
            log(`round ${round} ${sc.id} ${c} HARNESS ERROR ${e.stack}`);
            // A broken page is replaced (new file, same bytes).
            try { await pg.close(); } catch { /* ignore */ }
            pg = await openPage(browser, fx);
            await pickFile(pg, await benchFile(sc.size));
          }
          runs.push(rec);
          results.runs.push(rec);
        }
      }
      await pg.close();
      const chunks = Math.max(1, Math.floor(sc.size / sc.chunk));
      results.scenarios.push({ ...sc, chunks, clients, sha256: fileInfo.sha256, seconds: Math.round((Date.now() - t0) / 1000), ...summarize(sc, runs) });
      writeFileSync(OUT_JSON, JSON.stringify(results, null, 1) + '\n');
    }
    await runManyFiles(browser, fx, results);
  } catch (e) {
    failed = true;
    log(`ABORTED: ${e.stack}\nfixture stderr tail:\n${fx.stderr.slice(-3000)}`);
    results.aborted = String(e.stack ?? e);
  } finally {
    await browser.close().catch(() => {});
    await fx.stop();
    rmSync(FILES_DIR, { recursive: true, force: true });
  }
  results.totalSeconds = Math.round((Date.now() - T0) / 1000);
  results.targets = evaluateTargets(results);
  writeFileSync(OUT_JSON, JSON.stringify(results, null, 1) + '\n');
  writeFileSync(OUT_MD, renderMarkdown(results));
  log(`wrote ${OUT_JSON} and ${OUT_MD} in ${results.totalSeconds} s`);
  const runFailures = results.runs.filter((r) => !r.ok).length;
  if (runFailures) log(`${runFailures} run(s) failed: see the report`);
  if (failed) process.exitCode = 1;
}

// ---------------------------------------------------------------------------------------------
// many files (issue 13 §3): N small files in one queue, 1 MiB chunks (one chunk each), 3 slots.
// Time per file at 500, 2,000 and 10,000 files of 1 KiB shows whether the cost per file stays
// flat; 2,000 × 8 KiB is the issue's second row. addFiles is timed apart from the upload.

const ROUNDS_MANY = Number(process.env.BENCH_ROUNDS_MANY || 1);
const MANY_CLIENTS = (process.env.BENCH_MANY_CLIENTS || 'resumable-wasm,resumablejs,flowjs').split(',');
const MANY_FILES_SCENARIOS = [
  { id: 'many-500x1K', files: 500, size: 1024 },
  { id: 'many-2000x1K', files: 2000, size: 1024 },
  { id: 'many-2000x8K', files: 2000, size: 8 * 1024 },
  { id: 'many-10000x1K', files: 10000, size: 1024 },
].filter((s) => !process.env.BENCH_ONLY || process.env.BENCH_ONLY.split(',').includes(s.id));

async function oneManyRun(fx, pg, sc, client, expected, round) {
  const runId = `${sc.id}-${client}-${round}-${++runSeq}`;
  const cfg = { target: `${fx.info.api}/upload?run=${encodeURIComponent(runId)}`, chunkSize: MiB, simultaneousUploads: 3, timeoutMs: 600000 };
  await fx.reset(true);
  await pg.cdp.send('HeapProfiler.collectGarbage');
  const prep = await pg.page.evaluate(([c, g]) => window.__B.prepareMany(c, g), [client, cfg]);
  const profile = process.env.BENCH_PROFILE;
  if (profile) await pg.cdp.send('Profiler.enable').then(() => pg.cdp.send('Profiler.start'));
  const out = await pg.page.evaluate(() => window.__B.run());
  if (profile) {
    mkdirSync(profile, { recursive: true });
    writeFileSync(join(profile, `${runId}.cpuprofile`), JSON.stringify((await pg.cdp.send('Profiler.stop')).profile));
  }
  const wasmMemory = client === 'resumable-wasm' ? await pg.page.evaluate(() => window.__B.wasmMemoryBytes()) : null;
  const heap = await heapSample(pg.cdp);
  await sleep(20);
  const stats = await fx.stats();
  // The counters, not the log: the log keeps the last 20,000 requests.
  const requests = { OPTIONS: stats.requests.OPTIONS ?? 0, GET: stats.requests.GET ?? 0, POST: stats.requests.POST ?? 0 };
  const stored = new Map((await fx.files()).map((f) => [f.name, f.sha256]));
  const wrong = expected.filter((f) => stored.get(f.name) !== f.sha256).length;
  const ok = !!out.ok && wrong === 0 && stored.size === expected.length;
  const rec = {
    scenario: sc.id, client, round, ok,
    failure: ok ? null : `client ok=${out.ok}${out.timeout ? ' (timeout)' : ''}${out.thrown ? ` thrown: ${out.thrown}` : ''}; ${stored.size} files stored, ${wrong} missing or different${out.errors?.length ? `: ${out.errors.join('; ')}` : ''}`,
    ms: Math.round(out.ms), msPerFile: Math.round((out.ms / sc.files) * 100) / 100, addMs: Math.round(prep.addMs),
    requests, retries: out.retries, wasmMemory, jsHeapUsed: heap.used, pageErrors: pg.pageErrors.splice(0),
  };
  log(`round ${round} ${sc.id} ${client.padEnd(14)} ${ok ? 'ok ' : 'FAIL'} ${rec.ms} ms (${rec.msPerFile} ms/file) addFiles ${rec.addMs} ms  O/G/P ${requests.OPTIONS}/${requests.GET}/${requests.POST}` +
    `${wasmMemory ? `  wasm ${(wasmMemory / MiB).toFixed(1)} MiB` : ''}${rec.retries ? ` retries=${rec.retries}` : ''}${ok ? '' : `  ${rec.failure}`}`);
  return rec;
}

async function runManyFiles(browser, fx, results) {
  results.manyFiles = [];
  await fx.config({ delay_ms: 0 });
  for (const sc of MANY_FILES_SCENARIOS) {
    const t0 = Date.now();
    const pg = await openPage(browser, fx);
    const expected = await pg.page.evaluate(([n, size]) => window.__B.makeMany(n, size, 5000), [sc.files, sc.size]);
    const runs = [];
    for (let round = 1; round <= ROUNDS_MANY; round++) {
      for (const c of MANY_CLIENTS) runs.push(await oneManyRun(fx, pg, sc, c, expected, round));
    }
    await pg.close();
    const byClient = {};
    for (const c of MANY_CLIENTS) {
      const good = runs.filter((r) => r.client === c && r.ok);
      byClient[c] = {
        runs: runs.filter((r) => r.client === c).length, ok: good.length,
        failures: runs.filter((r) => r.client === c && !r.ok).map((r) => `round ${r.round}: ${r.failure}`),
        msMedian: median(good.map((r) => r.ms)), msPerFileMedian: median(good.map((r) => r.msPerFile)), addMsMedian: median(good.map((r) => r.addMs)),
        requests: uniq(runs.filter((r) => r.client === c).map((r) => r.requests)),
        wasmMemoryMax: c === 'resumable-wasm' && good.length ? Math.max(...good.map((r) => r.wasmMemory)) : null,
      };
    }
    results.manyFiles.push({ ...sc, rounds: ROUNDS_MANY, seconds: Math.round((Date.now() - t0) / 1000), byClient, runs });
    writeFileSync(OUT_JSON, JSON.stringify(results, null, 1) + '\n');
  }
}

function renderManyFiles(res) {
  if (!res.manyFiles?.length) return [];
  const L = ['## Many files', ''];
  L.push(`Small in-memory files in one queue, 1 MiB chunks (one chunk per file), 3 simultaneous uploads, 0 ms delay; ${res.manyFiles[0].rounds} round(s) per client (median shown). Time from \`upload()\` to completion; addFiles timed apart (for Resumable.js until its \`filesAdded\` event). Every run is checked file by file against the fixture (name and SHA-256).`, '');
  L.push('| files | client | ok | time s | ms per file | time ÷ Flow.js | addFiles ms | OPTIONS / GET / POST | wasm memory |', '|---|---|---|---|---|---|---|---|---|');
  for (const s of res.manyFiles) {
    const flow = s.byClient.flowjs?.msMedian;
    for (const c of MANY_CLIENTS) {
      const b = s.byClient[c];
      const reqs = b.requests.map((q) => `${q.OPTIONS} / ${q.GET} / ${q.POST}`).join(', ');
      L.push(`| ${s.files} × ${s.size / 1024} KiB | ${LABEL[c]} | ${b.ok}/${b.runs} | ${fmtS(b.msMedian)} | ${b.msPerFileMedian ?? '–'} | ${b.msMedian != null && flow ? fmtR(b.msMedian / flow) : '–'} | ${b.addMsMedian ?? '–'} | ${reqs} | ${b.wasmMemoryMax != null ? fmtMiB(b.wasmMemoryMax) : '–'} |`);
    }
  }
  L.push('');
  return L;
}

// ---------------------------------------------------------------------------------------------
// targets (issue 8) and the report

function evaluateTargets(res) {
  const S = (id) => res.scenarios.find((s) => s.id === id);
  const t = [];
  const W = 'resumable-wasm';
  const fresh = res.scenarios.filter((s) => !s.auth && !s.resume);
  // 1. preflights
  {
    const rows = fresh.map((s) => ({ id: s.id, options: s.byClient[W].requests.map((r) => r.OPTIONS) }));
    const met = rows.length > 0 && rows.every((r) => r.options.every((o) => o === 0));
    t.push({ id: 'preflights-default', target: 'Default options: 0 preflights', measured: rows.map((r) => `${r.id}: ${r.options.join('/')}`).join('; '), met });
    const a = S('64M-1M-d25-auth');
    if (a) {
      const o = a.byClient[W].requests.map((r) => r.OPTIONS);
      const p = a.byClient[W].preflights;
      t.push({ id: 'preflights-auth', target: 'With an Authorization header: 1 preflight for the chunk POSTs', measured: `${a.id}: OPTIONS ${o.join('/')} in total; for the POST URL ${p.map((x) => x.bareUrl).join('/')}, for per-chunk (probe GET) URLs ${p.map((x) => x.perChunkUrl).join('/')}`, met: p.every((x) => x.bareUrl === 1) });
    }
  }
  // 2. requests = chunks + 1
  {
    const rows = fresh.map((s) => ({ id: s.id, chunks: s.chunks, totals: s.byClient[W].requests.map((r) => r.OPTIONS + r.GET + r.POST) }));
    const met = rows.length > 0 && rows.every((r) => r.totals.every((x) => x === r.chunks + 1));
    t.push({ id: 'requests-fresh', target: 'Fresh upload requests: chunks + 1, not 2 × chunks', measured: rows.map((r) => `${r.id}: ${r.totals.join('/')} for ${r.chunks} chunks`).join('; '), met });
  }
  // 3. 25 ms, 64 MiB, 1 MiB: <= 0.5 x Flow.js wall time
  {
    const s = S('64M-1M-d25');
    if (s) {
      const r = s.ratios[`${W}/flowjs`];
      t.push({ id: 'delay25-vs-flow', target: 'At 25 ms delay, 64 MiB, 1 MiB chunks: wall time ≤ 0.5 × Flow.js', measured: `time ratio median ${fmtR(r.timeRatioMedian)} (${fmtR(r.timeRatioRange[0])}–${fmtR(r.timeRatioRange[1])}, n=${r.n})`, met: r.timeRatioMedian != null && r.timeRatioMedian <= 0.5 });
    }
  }
  // 4. 0 ms: >= 1.5 x Flow.js throughput at 1 MiB; >= 0.8 x limit at 5 MiB
  for (const [id, peer, factor, what] of [['64M-1M-d0', 'flowjs', 1.5, 'Flow.js throughput, 1 MiB chunks'], ['512M-1M-d0', 'flowjs', 1.5, 'Flow.js throughput, 1 MiB chunks'],
    ['64M-5M-d0', 'limit', 0.8, 'single-POST limit throughput, 5 MiB chunks'], ['512M-5M-d0', 'limit', 0.8, 'single-POST limit throughput, 5 MiB chunks']]) {
    const s = S(id);
    if (!s) continue;
    const r = s.ratios[`${peer}/${W}`]; // time(peer)/time(wasm) = throughput(wasm)/throughput(peer)
    t.push({ id: `d0-${id}-vs-${peer}`, target: `At 0 ms delay (${id}): throughput ≥ ${factor} × ${what}`, measured: `throughput ratio median ${fmtR(r.timeRatioMedian)} (${fmtR(r.timeRatioRange[0])}–${fmtR(r.timeRatioRange[1])}, n=${r.n})`, met: r.timeRatioMedian != null && r.timeRatioMedian >= factor });
  }
  // 5. memory: 512 MiB vs 64 MiB
  for (const c of [1, 5]) {
    const small = S(`64M-${c}M-d0`), big = S(`512M-${c}M-d0`);
    if (!small || !big) continue;
    const a = small.byClient[W].peakPageMax, b = big.byClient[W].peakPageMax;
    if (a == null || b == null) continue;
    const d = (b - a) / MiB;
    t.push({ id: `memory-${c}M`, target: `Peak page memory, ${c} MiB chunks: 512 MiB file ≤ 64 MiB file + a few MiB (≤ 4 MiB)`, measured: `${fmtMiB(a)} → ${fmtMiB(b)} (Δ ${d.toFixed(1)} MiB)`, met: d <= 4 });
  }
  return t;
}

const fmtR = (x) => (x == null ? '–' : x.toFixed(2));
const fmtMiB = (b) => (b == null ? '–' : `${(b / MiB).toFixed(1)} MiB`);
const fmtS = (ms) => (ms == null ? '–' : (ms / 1000).toFixed(2));
const fmtKiB = (b) => `${(b / 1024).toFixed(1)} KiB`;

function renderMarkdown(res) {
  const m = res.machine;
  const L = [];
  L.push('# Benchmarks', '');
  const json = relative(dirname(OUT_MD), OUT_JSON);
  L.push(`Generated by \`make bench\` (\`bench/run.mjs\`); raw runs in [\`${json}\`](${json}). Do not edit by hand: rerun.`, '');
  L.push(`- **Date:** ${res.date}`);
  L.push(`- **Machine:** ${m.nproc} CPUs (\`nproc\`), ${m.memTotalGiB} GiB RAM, ${m.cpu}; ${m.os}; Node ${m.node}; commit ${m.commit}`);
  L.push(`- **Browser:** headless Chromium ${m.chromium} (\`/usr/bin/chromium\` via playwright-core)`);
  L.push(`- **Server:** \`server-fixture\` (release build), CORS \`strict\`, \`Access-Control-Max-Age: ${res.settings.accessControlMaxAge}\`; page ${res.settings.page} → API ${res.settings.api} (cross-origin, loopback); the delay is applied to every API request, OPTIONS included`);
  L.push(`- **Common settings:** \`withCredentials: true\`, 3 simultaneous uploads, chunk size 1 MiB or 5 MiB, retries allowed (resumable-wasm default 8, Resumable.js default 100, Flow.js \`maxChunkRetries: 3\` — its default is 0). Everything else is each library's default (Resumable.js and Flow.js test every chunk with a GET; resumable-wasm \`testChunks: 'auto'\`).`);
  L.push('- **Limit:** one plain `fetch` POST of the whole file as multipart (a single-chunk upload, `resumableChunkSize` = file size), `credentials: \'include\'`.');
  L.push(`- **Rounds:** ${res.settings.rounds} per client for 64 MiB, ${res.settings.roundsBig} for 512 MiB, interleaved (A B C D, A B C D, …), after one untimed warm-up upload (8 MiB) per client per scenario. Every scenario runs in a fresh page; each run uses a unique target URL (\`?run=…\`) so it starts with a cold preflight cache, like a fresh page load.`);
  L.push(`- **Timing:** ${res.settings.timing}. Throughput = file size / wall time (for the resume variant too, although only half the bytes travel).`);
  L.push(`- **Memory:** ${res.settings.memoryMethod}. "Peak page" = peak JS heap + (resumable-wasm only) wasm linear memory.`);
  L.push('- **Verification:** every run is checked against the fixture: exactly one assembled file whose SHA-256 equals the one computed in the page. A failed run is listed and excluded from times.');
  L.push(`- **Total duration:** ${res.totalSeconds} s${res.aborted ? ` — **ABORTED**: ${res.aborted.split('\n')[0]}` : ''}`);
  L.push('');
  L.push('## Targets (issue 8)', '');
  L.push('| target | measured | met |', '|---|---|---|');
  for (const t of res.targets) L.push(`| ${t.target} | ${t.measured} | ${t.met ? '✅ met' : '❌ missed'} |`);
  L.push('');
  L.push('## Results', '');
  L.push('Wall time in seconds (median, min–max), throughput in MiB/s (median), requests per run as OPTIONS / GET / POST counted by the fixture (all rounds identical unless several values are listed), peak page memory (max over rounds).', '');
  for (const s of res.scenarios) {
    const title = `${s.size / MiB} MiB file, ${s.chunk / MiB} MiB chunks (${s.chunks} chunks), ${s.delay} ms delay${s.auth ? ', `Authorization` header' : ''}${s.resume ? `, resume (${Math.floor(s.chunks / 2)} of ${s.chunks} chunks already on the server)` : ''}`;
    L.push(`### \`${s.id}\`: ${title}`, '');
    L.push('| client | ok | time s (median) | min–max | MiB/s | time ÷ resumable-wasm (per round, median, min–max) | OPTIONS / GET / POST | retries | peak page memory |');
    L.push('|---|---|---|---|---|---|---|---|---|');
    for (const c of s.clients) {
      const b = s.byClient[c];
      const r = c === 'resumable-wasm' ? null : s.ratios[`${c}/resumable-wasm`];
      const reqs = b.requests.map((q) => `${q.OPTIONS ?? '?'} / ${q.GET ?? '?'} / ${q.POST ?? '?'}`).join(', ');
      L.push(`| ${LABEL[c]} | ${b.ok}/${b.runs} | ${fmtS(b.msMedian)} | ${fmtS(b.msRange[0])}–${fmtS(b.msRange[1])} | ${b.mibPerSMedian ?? '–'} | ${r ? `${fmtR(r.timeRatioMedian)} (${fmtR(r.timeRatioRange[0])}–${fmtR(r.timeRatioRange[1])})` : '1'} | ${reqs} | ${b.retries} | ${fmtMiB(b.peakPageMax)}${c === 'resumable-wasm' && b.wasmMemoryMax != null ? ` (wasm ${fmtMiB(b.wasmMemoryMax)})` : ''} |`);
    }
    const fails = s.clients.flatMap((c) => s.byClient[c].failures.map((f) => `${LABEL[c]} ${f}`));
    if (fails.length) L.push('', `**Failed runs:** ${fails.join('; ')}`);
    L.push('');
  }
  const memRows = [];
  for (const c of [1, 5]) {
    const a = res.scenarios.find((x) => x.id === `64M-${c}M-d0`), b = res.scenarios.find((x) => x.id === `512M-${c}M-d0`);
    if (!a || !b) continue;
    for (const cl of CLIENTS) {
      const x = a.byClient[cl]?.peakPageMax, y = b.byClient[cl]?.peakPageMax;
      memRows.push(`| ${LABEL[cl]} | ${c} MiB | ${fmtMiB(x)} | ${fmtMiB(y)} | ${x != null && y != null ? `${((y - x) / MiB).toFixed(2)} MiB` : '–'} |`);
    }
  }
  if (memRows.length) {
    L.push('## Does page memory grow with file size?', '');
    L.push('Peak page memory (max over rounds), 0 ms delay. The file itself lives in the browser\'s blob storage, outside the page heap, for every client.', '');
    L.push('| client | chunks | 64 MiB file | 512 MiB file | growth |', '|---|---|---|---|---|', ...memRows, '');
  }
  L.push(...renderManyFiles(res));
  L.push('## Shipped code (gzip -9)', '');
  L.push('| client | files | raw | gzip |', '|---|---|---|---|');
  for (const c of CLIENTS) {
    const z = res.sizes[c];
    L.push(`| ${LABEL[c]} | ${z.files.map((f) => `\`${f}\``).join(' + ') || '–'} (${z.note}) | ${fmtKiB(z.raw)} | ${fmtKiB(z.gzip)} |`);
  }
  L.push('');
  const notes = join(ROOT, 'bench/NOTES.md');
  if (existsSync(notes)) L.push(readFileSync(notes, 'utf8').trim(), '');
  return L.join('\n') + '\n';
}

for (const out of [OUT_JSON, OUT_MD]) mkdirSync(dirname(out), { recursive: true });
if (process.argv.includes('--render')) {
  writeFileSync(OUT_MD, renderMarkdown(JSON.parse(readFileSync(OUT_JSON, 'utf8'))));
  rmSync(FILES_DIR, { recursive: true, force: true });
} else {
  main().catch((e) => { console.error(e); process.exit(1); });
}
