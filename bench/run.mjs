// `make bench`: resumable-wasm against Resumable.js 1.1.0, Flow.js 2.14.1 and the single-POST
// limit, side by side in one headless Chromium, against one server-fixture (release build).
// Writes bench/results.json (every run, raw) and BENCHMARKS.md (the tables); `make bench` points
// both into target/bench/ (ignored) and `make bench-publish` copies a run to the committed files.
//
// Environment knobs (defaults = the committed matrix):
//   BENCH_ROUNDS=5        rounds per client per 64 MiB scenario
//   BENCH_ROUNDS_BIG=3    rounds per client per 512 MiB scenario
//   node bench/run.mjs --render   only re-renders BENCHMARKS.md from the JSON (e.g. after editing bench/NOTES.md)
//   node bench/run.mjs --estimate prints the modelled duration of each link row of the full matrix
//   BENCH_ONLY=a,b        run only these scenario ids (many-files ids too)
//   BENCH_ROUNDS_MANY=1   rounds per client per many-files scenario
//   BENCH_MANY_CLIENTS=a,b   the many-files clients (default resumable-wasm,resumablejs,flowjs)
//   BENCH_PROFILE=dir     many-files runs also write a CPU profile of the page (CDP) into dir
//   BENCH_OUT=path        JSON output (default bench/results.json); BENCH_MD=path (default BENCHMARKS.md)
//   BENCH_QUICK=1         the `make bench QUICK=1` subset (< 5 min): rows marked `quick`, 2 rounds
//   Emulated links (see linkScenarios): BENCH_ROUNDS_LINK=3, BENCH_LINK_RTTS=20,100,200,
//   BENCH_LINK_UPS=50,1000 (Mbit/s), BENCH_LINK_PROTOS=h1,h2, BENCH_LINK_CHUNKS=1,5 (MiB);
//   BENCH_LINK=0 leaves the link rows out.
//   BENCH_CHECKSUM=0      leaves out the checksum rows (issue 24: hashing MB/s, the cost of `checksum`)
//   BENCH_S3=0            leaves out the direct-to-S3 rows (issues 25 and 26, bench/s3.mjs; need moto);
//   BENCH_ONLY=s3 runs only them and merges them into the existing results (BENCH_ROUNDS_S3=3 at
//   64 MiB, BENCH_ROUNDS_S3_BIG=2 at 512 MiB; BENCH_S3_BIG_LOOPBACK=0 drops the 512 MiB loopback row;
//   BENCH_S3_ROWS=id,id runs only these S3 rows)
//   BENCH_CHROMIUM_ARGS="--a --b"   extra Chromium flags (e.g. --disable-http2: the h2 rows must then stop the bench)
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, readFileSync, readdirSync, writeFileSync, existsSync, statfsSync, openSync, writeSync, closeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir, cpus, totalmem, platform, release } from 'node:os';
import { join, dirname, resolve, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { gzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { fetchTrusting } from '../tests/e2e/harness.mjs';
import { runS3Group, renderS3Section } from './s3.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURE_BIN = process.env.SERVER_FIXTURE_BIN || join(ROOT, 'target/release/server-fixture');
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
  '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic',
  ...(process.env.BENCH_CHROMIUM_ARGS ? process.env.BENCH_CHROMIUM_ARGS.split(' ') : [])];
const MiB = 1024 * 1024;
const MAX_AGE = 600;
const QUICK = process.env.BENCH_QUICK === '1';
const ROUNDS = Number(process.env.BENCH_ROUNDS || (QUICK ? 2 : 5));
const ROUNDS_BIG = Number(process.env.BENCH_ROUNDS_BIG || 3); // 512 MiB rounds are ~30 s each: 3 keep `make bench` < 15 min on 2 cores
const OUT_JSON = resolve(ROOT, process.env.BENCH_OUT || 'bench/results.json');
const OUT_MD = resolve(ROOT, process.env.BENCH_MD || 'BENCHMARKS.md');
const CLIENTS = ['resumable-wasm', 'resumablejs', 'flowjs', 'limit'];
const LABEL = { 'resumable-wasm': 'resumable-wasm', 'resumable-wasm-no-tao': 'resumable-wasm, no Timing-Allow-Origin', 'resumable-wasm-auto-chunk': "resumable-wasm, chunkSize 'auto'", 'resumable-wasm-3': 'resumable-wasm, 3 slots', 'resumable-wasm-checksum-crc32c': "resumable-wasm, checksum 'crc32c'", 'resumable-wasm-checksum-sha256': "resumable-wasm, checksum 'sha256'", resumablejs: 'Resumable.js 1.1.0', flowjs: 'Flow.js 2.14.1', limit: 'limit (1 POST)' };
const AUTH = { Authorization: 'Bearer bench-token' };

// ---------------------------------------------------------------------------------------------
// emulated links (issue 13): RTT × uplink × protocol × chunk size through server-fixture's
// `--link` (every byte of every API connection pays the round trip and shares the rate cap);
// h1 = plain HTTP/1.1, h2 = the fixture's `--tls` with HTTP/2, which the harness asserts per run.

/**
 * The link rows' clients (issue 28): resumable-wasm on its defaults; over h2 again with the API's
 * answers sending no Timing-Allow-Origin (the page cannot read the protocol; over HTTP/1.1 that
 * run would equal the defaults); with the opt-in `chunkSize: 'auto'` (bounded by AUTO_MAX_CHUNK);
 * then the peers and the limit. `resumable-wasm-3` (3 fixed slots, the comparison from before
 * 'auto') left the link rows to pay for the two new clients' time: `BENCH_LINK_EXTRA=resumable-wasm-3`
 * puts it back (after the defaults).
 */
const NO_TAO = 'resumable-wasm-no-tao';
const AUTO_CHUNK = 'resumable-wasm-auto-chunk';
const AUTO_MAX_CHUNK = 16 * MiB; // maxChunkSize of AUTO_CHUNK; the fixture's per-chunk cap is raised to 1 GiB at start
/** Every client a link row may hold, in column order. */
const LINK_CLIENTS = ['resumable-wasm', NO_TAO, AUTO_CHUNK, 'resumable-wasm-3', 'resumablejs', 'flowjs', 'limit'];
function linkClients(proto, env = process.env) {
  const extra = (env.BENCH_LINK_EXTRA || '').split(',').map((x) => x.trim()).filter(Boolean);
  for (const c of extra) if (!LINK_CLIENTS.includes(c)) throw new Error(`BENCH_LINK_EXTRA: ${c} is not a link client (${LINK_CLIENTS.join(', ')})`);
  const want = new Set(['resumable-wasm', AUTO_CHUNK, 'resumablejs', 'flowjs', 'limit', ...(proto === 'h2' ? [NO_TAO] : []), ...extra]);
  return LINK_CLIENTS.filter((c) => want.has(c));
}
const ROUNDS_LINK = Number(process.env.BENCH_ROUNDS_LINK || (QUICK ? 2 : 3));
/**
 * Resumable.js and Flow.js run fewer rounds (BENCH_ROUNDS_LINK_PEERS=2) on the rows that carry
 * no target of theirs worth a third round and cost the most per round: 50 Mbit/s (every client
 * spends the wire time there, ~11 s a run) and 5 MiB chunks. Everyone else, and every client on
 * the 1 Gbit/s 1 MiB rows, runs ROUNDS_LINK. Keeps the full matrix within 95 min on 2 cores.
 */
const PEERS = ['resumablejs', 'flowjs'];
const ROUNDS_LINK_PEERS = Number(process.env.BENCH_ROUNDS_LINK_PEERS || 2);
const LINK_CLIENTS_TEXT = "resumable-wasm on its defaults; on the h2 rows again with the API's answers sending no `Timing-Allow-Origin` (\"no Timing-Allow-Origin\": the page cannot read the protocol and probes; over HTTP/1.1 it would equal the defaults, so it runs on h2 only); with `chunkSize: 'auto', maxChunkSize: 16 MiB` (the chunk size chosen per file from the measured round trip; the row's chunk size does not apply to it); then Resumable.js, Flow.js and the limit. The former \"3 slots\" column (3 fixed in flight, the comparison from before 'auto') left the link rows to pay for the two new columns' time (`BENCH_LINK_EXTRA=resumable-wasm-3` puts it back)";
const BUDGET_TEXT = `the full matrix is sized for 95 min on 2 cores: Resumable.js and Flow.js run at most ${ROUNDS_LINK_PEERS} rounds (the others ${ROUNDS_LINK}) on the 50 Mbit/s rows (every client spends the ~11 s wire time there; they carry no target of the issue) and on the 5 MiB rows; every client runs ${ROUNDS_LINK} rounds on the 1 Gbit/s rows with 1 MiB chunks, the issue's rows`;
const PROTOCOL = { h1: 'http/1.1', h2: 'h2' };
/**
 * The link rows: the QUICK pair (RTT 100 ms, 1 Gbit/s, 64 MiB, 1 MiB chunks), else the matrix as
 * the BENCH_LINK_* variables of `env` pick it (`env: {}` = the default matrix).
 */
function linkScenarios({ quick = QUICK, rounds = ROUNDS_LINK, env = process.env } = {}) {
  if (env.BENCH_LINK === '0') return [];
  const envList = (name, dflt) => (env[name] || dflt).split(',').map((x) => x.trim()).filter(Boolean);
  const row = (rtt, up, chunkMiB, proto, size, extra = {}) => ({
    id: `${size / MiB}M-${chunkMiB}M-rtt${rtt}-${up >= 1000 ? `${up / 1000}G` : `${up}M`}-${proto}`,
    size, chunk: chunkMiB * MiB, delay: 0, proto, link: { rtt_ms: rtt, up_mbit: up, down_mbit: up },
    clients: linkClients(proto, env), rounds,
    ...(chunkMiB > 1 || up < 1000 ? { peerRounds: Math.min(rounds, Number(env.BENCH_ROUNDS_LINK_PEERS || ROUNDS_LINK_PEERS)) } : {}), ...extra,
  });
  if (quick) return ['h1', 'h2'].map((proto) => row(100, 1000, 1, proto, 64 * MiB, { quick: true }));
  const rows = [];
  for (const rtt of envList('BENCH_LINK_RTTS', '20,100,200').map(Number)) {
    for (const up of envList('BENCH_LINK_UPS', '50,1000').map(Number)) {
      for (const chunkMiB of envList('BENCH_LINK_CHUNKS', '1,5').map(Number)) {
        for (const proto of envList('BENCH_LINK_PROTOS', 'h1,h2')) {
          if (!PROTOCOL[proto]) throw new Error(`BENCH_LINK_PROTOS: ${proto} is neither h1 nor h2`);
          rows.push(row(rtt, up, chunkMiB, proto, up >= 1000 ? 256 * MiB : 64 * MiB));
        }
      }
    }
  }
  return rows;
}

/**
 * The cost of `checksum` (issue 24): resumable-wasm on its defaults, then with `checksum:
 * 'crc32c'` and `'sha256'`, on the loopback 64 MiB / 1 MiB row and one emulated link (RTT 100 ms,
 * 1 Gbit/s, HTTP/1.1); the file on the server must be identical in every run (as in every row).
 * The loopback row also measures the hashing throughput of each algorithm in the page.
 */
const CHECKSUM_CLIENTS = ['resumable-wasm', 'resumable-wasm-checksum-crc32c', 'resumable-wasm-checksum-sha256'];
/** Clients on resumable-wasm's default number in flight ('auto'); the rest run 3. */
const onDefaultWindow = (client) => client.startsWith('resumable-wasm') && client !== 'resumable-wasm-3';
/** resumable-wasm in any of its variants (their OPTIONS must be 0 on every link row). */
const isResumableWasm = (client) => client.startsWith('resumable-wasm');
function checksumScenarios({ env = process.env } = {}) {
  if (env.BENCH_CHECKSUM === '0') return [];
  return [
    { id: '64M-1M-d0-checksum', size: 64 * MiB, chunk: MiB, delay: 0, clients: CHECKSUM_CLIENTS, checksumRow: true, hashThroughput: true, quick: true },
    { id: '64M-1M-rtt100-1G-h1-checksum', size: 64 * MiB, chunk: MiB, delay: 0, proto: 'h1', link: { rtt_ms: 100, up_mbit: 1000, down_mbit: 1000 }, clients: CHECKSUM_CLIENTS, rounds: ROUNDS_LINK, checksumRow: true },
  ];
}

/** Bytes the link holds in flight: rate × round trip. */
const bdpBytes = (link) => (link.up_mbit * 1e6 / 8) * (link.rtt_ms / 1000);
/** The link's time to carry `bytes` at its uplink rate, in ms. */
const linkTransferMs = (link, bytes) => (bytes * 8) / (link.up_mbit * 1e6) * 1000;
/** A run's time-out through a link: liveness only, generous on both the transfer and the round trips. */
const linkTimeoutMs = (sc) => 90000 + 10 * linkTransferMs(sc.link, sc.size) + Math.ceil(sc.size / sc.chunk) * 5 * sc.link.rtt_ms;
const linkLabel = (l) => `RTT ${l.rtt_ms} ms, ${l.up_mbit >= 1000 ? `${l.up_mbit / 1000} Gbit/s` : `${l.up_mbit} Mbit/s`}`;

/** Which fixture serves a scenario: the `--tls` one for h2 rows, the plain one otherwise. */
const FIXTURES = {};
const fixtureFor = (sc) => (sc.proto === 'h2' ? FIXTURES.h2 : FIXTURES.h1);

/** A run's protocol check: every /upload response in the expected protocol, else the reason. */
function protocolError(sc, seen) {
  const want = PROTOCOL[sc.proto ?? 'h1'];
  const got = Object.keys(seen);
  if (got.length === 1 && got[0] === want) return null;
  return `expected every /upload response over ${want}, Chromium saw ${JSON.stringify(seen)}`;
}

/** A row labelled h2 that ran over HTTP/1.1 (or the reverse) is no result: the bench stops. */
function stopOnWrongProtocol(sc, rec) {
  if (rec.wrongProtocol) throw new Error(`${sc.id} ${rec.client} ${rec.warmup ? 'warm-up' : `round ${rec.round}`}: ${rec.wrongProtocol}`);
}

/**
 * The matrix. Every scenario: a fresh page, one file, `rounds` interleaved rounds of `clients`.
 * `quick: true` rows are the `make bench QUICK=1` subset.
 */
const SCENARIOS = [
  { id: '64M-1M-d0', size: 64 * MiB, chunk: 1 * MiB, delay: 0, quick: true },
  { id: '64M-5M-d0', size: 64 * MiB, chunk: 5 * MiB, delay: 0 },
  { id: '64M-1M-d25', size: 64 * MiB, chunk: 1 * MiB, delay: 25 },
  { id: '64M-5M-d25', size: 64 * MiB, chunk: 5 * MiB, delay: 25 },
  { id: '64M-1M-d25-auth', size: 64 * MiB, chunk: 1 * MiB, delay: 25, auth: true },
  { id: '64M-1M-d25-resume', size: 64 * MiB, chunk: 1 * MiB, delay: 25, resume: true, clients: CLIENTS.filter((c) => c !== 'limit') },
  { id: '512M-1M-d0', size: 512 * MiB, chunk: 1 * MiB, delay: 0, big: true },
  { id: '512M-5M-d0', size: 512 * MiB, chunk: 5 * MiB, delay: 0, big: true },
  ...linkScenarios(),
  ...checksumScenarios(),
].filter((s) => (!QUICK || s.quick) && (!process.env.BENCH_ONLY || process.env.BENCH_ONLY.split(',').includes(s.id)));

const log = (...a) => console.error(`[bench ${((Date.now() - T0) / 1000).toFixed(0).padStart(4)} s]`, ...a);
const T0 = Date.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// CPU time (issue 28): per run, the CPU seconds of the browser (its whole process tree: the
// network service, the renderer, the GPU process) and of the fixture, from /proc, so a row shows
// whether it measures the link or this machine's 2 cores.

const CLK_TCK = 100; // Linux's USER_HZ
/** Every process (Linux): pid → { ppid, ticks (utime + stime), comm }; null elsewhere. */
function processTable() {
  if (platform() !== 'linux') return null;
  const procs = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Fields after the command (which may hold spaces) start past its closing parenthesis.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      procs.set(Number(name), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) });
    } catch { /* gone meanwhile */ }
  }
  return procs;
}
/** CPU seconds of the processes `roots` and everything below them. */
function cpuSecondsOfTrees(procs, roots) {
  let ticks = 0;
  const todo = [...roots];
  while (todo.length) {
    const p = todo.pop();
    ticks += procs.get(p)?.ticks ?? 0;
    for (const [child, v] of procs) if (v.ppid === p) todo.push(child);
  }
  return ticks / CLK_TCK;
}
/**
 * The browser's and the fixture's CPU seconds now; `cpuSpent(before)` the difference. The
 * browser is every Chromium process this bench started (its children named chromium; playwright
 * gives no pid of a launched browser), the fixture the one `fx` started.
 */
const cpuNow = (fx) => {
  const procs = processTable();
  if (!procs) return { browser: null, fixture: null };
  const browsers = [...procs].filter(([, v]) => v.ppid === process.pid && /chrom/i.test(v.comm)).map(([pid]) => pid);
  return { browser: browsers.length ? cpuSecondsOfTrees(procs, browsers) : null, fixture: procs.has(fx.pid) ? cpuSecondsOfTrees(procs, [fx.pid]) : null };
};
const cpuSpent = (fx, before) => {
  const now = cpuNow(fx);
  const d = (k) => (now[k] == null || before[k] == null ? null : Math.round((now[k] - before[k]) * 100) / 100);
  return { browserS: d('browser'), fixtureS: d('fixture') };
};

// ---------------------------------------------------------------------------------------------
// server-fixture

async function startFixture({ tls = false, extraArgs = [] } = {}) {
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
    '--max-lifetime', String(QUICK ? 1800 : 6 * 3600),
    ...(tls ? ['--tls'] : []),
    ...extraArgs,
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
  // With --tls, node's control calls trust exactly the fixture's certificate.
  const ca = info.tls ? readFileSync(info.tls.cert_pem) : null;
  // Control calls carry the fixture's token (printed in its start line); POSTs are JSON.
  const json = async (path, init = {}) => {
    const headers = { 'x-fixture-token': info.control_token, ...(init.method === 'POST' ? { 'content-type': 'application/json' } : {}) };
    const r = await (ca ? fetchTrusting(ca, info.page + path, { ...init, headers }) : fetch(info.page + path, { ...init, headers }));
    const text = await r.text();
    if (!r.ok) throw new Error(`${init?.method ?? 'GET'} ${path} → ${r.status}: ${text}`);
    return text ? JSON.parse(text) : null;
  };
  return {
    info, args, dataDir, dataOnTmpfs: base === shm, pid: proc.pid, get stderr() { return stderr; }, json,
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
  // The protocol of every /upload response as Chromium saw it ('h2', 'http/1.1'); no request
  // bodies are copied into the DevTools buffer.
  const protocols = [];
  await cdp.send('Network.enable', { maxPostDataSize: 0 });
  cdp.on('Network.responseReceived', (e) => { if (new URL(e.response.url).pathname === '/upload') protocols.push(e.response.protocol); });
  const resp = await page.goto(`${fx.info.page}/index.html`, { waitUntil: 'load' });
  if (resp?.status() !== 200) throw new Error(`GET /index.html → ${resp?.status()}`);
  await page.waitForFunction(() => window.__B && (window.__B.ready || window.__B.loadError), null, { timeout: 15000 });
  const loadError = await page.evaluate(() => window.__B.loadError);
  if (loadError) throw new Error(`page could not load resumable-wasm: ${loadError}`);
  await cdp.send('HeapProfiler.enable');
  return { context, page, cdp, pageErrors, protocols, close: () => context.close() };
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
    // AUTO_CHUNK picks its chunk size per file from the measured round trip, at most AUTO_MAX_CHUNK.
    chunkSize: client === AUTO_CHUNK ? 'auto' : sc.chunk,
    maxChunkSize: client === AUTO_CHUNK ? AUTO_MAX_CHUNK : undefined,
    // 'resumable-wasm' and its variants run with the library's default ('auto'), so the
    // checksum and link rows compare like with like; everyone else with 3 in flight.
    simultaneousUploads: onDefaultWindow(client) ? undefined : 3,
    headers: sc.auth ? AUTH : undefined,
    resume: !!sc.resume,
    timeoutMs: sc.link ? linkTimeoutMs(sc) : sc.big ? 180000 : 90000,
  };
  await fx.reset(true);
  // NO_TAO: the API's answers carry no Timing-Allow-Origin for this run only (restored below,
  // whatever happens; the fixture's default sends it).
  const noTao = client === NO_TAO;
  if (noTao) await fx.config({ timing_allow_origin: false });
  try {
    return await measuredRun(fx, pg, sc, client, fileInfo, { round, warmup, runId, target, cfg });
  } finally {
    if (noTao) await fx.config({ timing_allow_origin: true });
  }
}

async function measuredRun(fx, pg, sc, client, fileInfo, { round, warmup, runId, target, cfg }) {
  const prep = await pg.page.evaluate(([c, g]) => window.__B.prepare(c, g), [client, cfg]);
  await fx.reset(false); // the pre-seed (resume) is not counted
  pg.protocols.length = 0;
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
  const cpuBefore = cpuNow(fx);
  let cpu;
  try {
    out = await pg.page.evaluate(() => window.__B.run());
  } finally {
    cpu = cpuSpent(fx, cpuBefore);
    sampling = false;
    await sampler;
  }
  const end = await heapSample(pg.cdp);
  peak.used = Math.max(peak.used, end.used);
  if (end.backing != null) peak.backing = Math.max(peak.backing ?? 0, end.backing);
  const wasmAfter = await pg.page.evaluate(() => window.__B.wasmMemoryBytes());

  // Let straggling requests land before reading the counters (none expected after completion).
  await sleep((sc.delay ?? 0) * 2 + (sc.link?.rtt_ms ?? 0) * 2 + 20);
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
  const protocols = {};
  for (const p of pg.protocols.splice(0)) protocols[p] = (protocols[p] ?? 0) + 1;
  const wrongProtocol = protocolError(sc, protocols);
  // What the page itself could read (Resource Timing's nextHopProtocol; '' without
  // Timing-Allow-Origin): NO_TAO's run is no result if the page saw a protocol.
  const pageProtocols = await pg.page.evaluate((t) => window.__B.uploadProtocolsSeen(t), target);
  const taoLeak = client === NO_TAO && Object.keys(pageProtocols).some((p) => p !== '')
    ? `the page read the protocol of its /upload requests (${JSON.stringify(pageProtocols)}): Timing-Allow-Origin was sent` : null;
  const ok = !!out.ok && verified && !wrongProtocol && !taoLeak;
  const failure = ok ? null : [
    wrongProtocol,
    taoLeak,
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
    protocols,
    pageProtocols,
    wrongProtocol,
    statsRequests: stats.requests,
    bytesReceived: stats.bytes_received,
    non2xx: non2xx.slice(0, 20),
    non2xxCount: non2xx.length,
    retries: out.retries,
    cpu,
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
      peakPage: peak.used + (client.startsWith('resumable-wasm') ? wasmAfter : 0),
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
/** Distinct values (by JSON); a failed run that kept none (a harness error) adds none. */
const uniq = (xs) => [...new Set(xs.filter((x) => x !== undefined).map((x) => JSON.stringify(x)))].map((x) => JSON.parse(x));

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
      protocols: [...new Set(rs.flatMap((r) => Object.keys(r.protocols ?? {})))].sort(),
      retries: rs.reduce((a, r) => a + (r.retries || 0), 0),
      // CPU seconds per run (median), browser tree and fixture; null for runs made before it was kept.
      cpuBrowserMedian: median(good.map((r) => r.cpu?.browserS).filter((x) => x != null)),
      cpuFixtureMedian: median(good.map((r) => r.cpu?.fixtureS).filter((x) => x != null)),
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

/** `BENCH_ONLY=s3`: the S3 group alone, merged into the results already in OUT_JSON. */
const S3_ONLY = process.env.BENCH_ONLY === 's3';

async function s3Group(browser) {
  const group = await runS3Group({ root: ROOT, browser, startFixture, benchFile, log, summarize });
  return { date: new Date().toISOString(), commit: machine(browser.version()).commit, ...group };
}

async function mainS3Only() {
  // The run to merge into: OUT_JSON's (make bench's target/bench) or else the committed one.
  const committed = join(ROOT, 'bench/results.json');
  const results = JSON.parse(readFileSync(existsSync(OUT_JSON) ? OUT_JSON : committed, 'utf8'));
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    results.s3 = await s3Group(browser);
  } finally {
    await browser.close().catch(() => {});
    rmSync(FILES_DIR, { recursive: true, force: true });
  }
  writeFileSync(OUT_JSON, JSON.stringify(results, null, 1) + '\n');
  writeFileSync(OUT_MD, renderMarkdown(results));
  log(`merged the S3 rows into ${OUT_JSON} and ${OUT_MD}`);
  if (results.s3.runs?.some((r) => !r.ok)) process.exitCode = 1;
}

/**
 * The link rows of the results committed before this run (`git show HEAD:bench/results.json`;
 * BENCH_PREVIOUS=path reads another file), read at start, before this run overwrites anything:
 * per row and client the median time, for the per-chunk round trips "before and after".
 */
function previousLinkResults() {
  let text = null;
  let source = process.env.BENCH_PREVIOUS;
  try {
    text = source ? readFileSync(resolve(ROOT, source), 'utf8') : execFileSync('git', ['-C', ROOT, 'show', 'HEAD:bench/results.json'], { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] });
    source ??= 'HEAD:bench/results.json';
  } catch (e) {
    log(`no previous results (${source ?? 'HEAD:bench/results.json'}): ${e.message.split('\n')[0]}`);
    return null;
  }
  const prev = JSON.parse(text);
  const rows = {};
  for (const s of prev.scenarios ?? []) {
    if (!s.link || s.checksumRow) continue;
    rows[s.id] = { size: s.size, chunk: s.chunk, link: s.link, proto: s.proto, clients: Object.fromEntries(Object.entries(s.byClient).map(([c, b]) => [c, { msMedian: b.msMedian, ok: b.ok, runs: b.runs }])) };
  }
  return { source, commit: prev.machine?.commit ?? null, date: prev.date ?? null, rows };
}

async function main() {
  if (S3_ONLY) return mainS3Only();
  const previous = previousLinkResults();
  log(`fixture ${FIXTURE_BIN}`);
  const fx = (FIXTURES.h1 = await startFixture());
  process.on('exit', () => fx.kill());
  // h2 rows: a second fixture with --tls; Chromium trusts its certificate by the key's hash.
  const tlsFx = SCENARIOS.some((s) => s.proto === 'h2') ? (FIXTURES.h2 = await startFixture({ tls: true })) : null;
  if (tlsFx) process.on('exit', () => tlsFx.kill());
  // The limit sends the whole file as one body: raise the fixture's per-chunk cap (64 MiB default).
  for (const f of [fx, tlsFx].filter(Boolean)) {
    await f.config({ max_chunk_bytes: 1024 * MiB });
    log(`page ${f.info.page}  api ${f.info.api}`);
  }
  const trust = tlsFx ? [`--ignore-certificate-errors-spki-list=${tlsFx.info.tls.spki_sha256}`] : [];
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, ...trust] });
  const results = {
    date: new Date().toISOString(),
    machine: machine(browser.version()),
    settings: {
      page: fx.info.page, api: fx.info.api, tlsApi: tlsFx?.info.api ?? null, cors: 'strict', accessControlMaxAge: MAX_AGE, withCredentials: true,
      dataDir: fx.dataOnTmpfs ? 'tmpfs (/dev/shm)' : 'disk (tmpdir)', simultaneousUploads: "resumable-wasm and its variants their default ('auto'), 'resumable-wasm, 3 slots' 3; the peers 3", linkClients: LINK_CLIENTS_TEXT, budget: BUDGET_TEXT, rounds: ROUNDS, roundsBig: ROUNDS_BIG, roundsLink: ROUNDS_LINK, quick: QUICK, fixtureArgs: fx.args.filter((a) => !a.includes('/')),
      memoryMethod: 'CDP Runtime.getHeapUsage sampled every 100 ms during the run after HeapProfiler.collectGarbage (usedSize = JS heap; backingStorageSize = ArrayBuffer backing stores), plus WebAssembly.Memory.buffer.byteLength of resumable-wasm read after the run (linear memory never shrinks, so that is its peak)',
      timing: 'performance.now() in the page around upload() (client created and file added beforehand, untimed) until its completion (promise / complete event / fetch response)',
    },
    sizes: shippedSizes(),
    previous,
    scenarios: [],
    runs: [],
  };
  let failed = false;
  try {
    for (const base of SCENARIOS) {
      const sc = { ...base, rounds: base.rounds ?? (base.big ? ROUNDS_BIG : ROUNDS) };
      const clients = sc.clients ?? CLIENTS;
      const fx = fixtureFor(sc);
      await fx.config({ delay_ms: sc.delay, link: sc.link ?? null });
      const t0 = Date.now();
      let pg = await openPage(browser, fx);
      // Warm-up (untimed, verified): each client once on a small file, so JIT and lazy
      // initialisation are not billed to round 1.
      const small = await pg.page.evaluate(() => window.__B.makeFile('warmup.bin', 8 * 1048576 + 7, 99));
      for (const c of clients) {
        let rec;
        try {
          rec = await oneRun(fx, pg, { ...sc, size: small.size }, c, small, { warmup: true });
        } catch (e) {
          // A client the page cannot even set up (e.g. an option this build refuses) fails its
          // warm-up and its rounds; the row goes on with the others.
          rec = { scenario: sc.id, client: c, round: null, warmup: true, ok: false, failure: `harness error: ${e.message}`, requests: {}, non2xxCount: 0, memory: {} };
          log(`warm-up ${sc.id} ${c} HARNESS ERROR ${e.message.split('\n')[0]}`);
        }
        results.runs.push(rec);
        stopOnWrongProtocol(sc, rec);
      }
      const fileInfo = await pickFile(pg, await benchFile(sc.size));
      log(`scenario ${sc.id}: file ${fileInfo.name} ${sc.size} B sha256 ${fileInfo.sha256.slice(0, 16)}… built in ${fileInfo.ms} ms`);
      let hashing = null;
      if (sc.hashThroughput) {
        hashing = await pg.page.evaluate((piece) => window.__B.hashThroughput(piece), sc.chunk);
        log(`scenario ${sc.id}: hashing in the page, ${sc.chunk / MiB} MiB pieces: CRC-32C (wasm) ${hashing.crc32c} MB/s, SHA-256 (WebCrypto) ${hashing.sha256} MB/s`);
      }
      const runs = [];
      for (let round = 1; round <= sc.rounds; round++) {
        for (const c of clients) {
          if (sc.peerRounds != null && round > sc.peerRounds && PEERS.includes(c)) continue;
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
          stopOnWrongProtocol(sc, rec);
        }
      }
      await pg.close();
      const chunks = Math.max(1, Math.floor(sc.size / sc.chunk));
      results.scenarios.push({ ...sc, chunks, clients, sha256: fileInfo.sha256, seconds: Math.round((Date.now() - t0) / 1000), hashing, ...summarize(sc, runs) });
      writeFileSync(OUT_JSON, JSON.stringify(results, null, 1) + '\n');
    }
    await runManyFiles(browser, fx, results);
    if (process.env.BENCH_S3 !== '0' && (!process.env.BENCH_ONLY || process.env.BENCH_ONLY.split(',').includes('s3'))) results.s3 = await s3Group(browser);
  } catch (e) {
    failed = true;
    log(`ABORTED: ${e.stack}\nfixture stderr tail:\n${fx.stderr.slice(-3000)}`);
    results.aborted = String(e.stack ?? e);
  } finally {
    await browser.close().catch(() => {});
    await fx.stop();
    await tlsFx?.stop();
    rmSync(FILES_DIR, { recursive: true, force: true });
  }
  results.totalSeconds = Math.round((Date.now() - T0) / 1000);
  results.targets = evaluateTargets(results);
  results.linkTargets = evaluateLinkTargets(results);
  results.fullLinkEstimateMinutes = Math.round(estimateFullLinkMinutes() * 10) / 10;
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
  const cfg = { target: `${fx.info.api}/upload?run=${encodeURIComponent(runId)}`, chunkSize: MiB, simultaneousUploads: onDefaultWindow(client) ? undefined : 3, timeoutMs: 600000 };
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
  await fx.config({ delay_ms: 0, link: null }); // the link rows before leave their link on the fixture
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
  L.push(`Small in-memory files in one queue, 1 MiB chunks (one chunk per file), resumable-wasm with its default ('auto', at most 6 over this HTTP/1.1 origin), the peers with 3 simultaneous uploads, 0 ms delay; ${res.manyFiles[0].rounds} round(s) per client (median shown). Time from \`upload()\` to completion; addFiles timed apart (for Resumable.js until its \`filesAdded\` event). Every run is checked file by file against the fixture (name and SHA-256).`, '');
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
  if (!res.scenarios.some((s) => !s.link && !s.checksumRow)) return []; // a run of link rows only
  const S = (id) => res.scenarios.find((s) => s.id === id);
  const t = [];
  const W = 'resumable-wasm';
  const fresh = res.scenarios.filter((s) => !s.auth && !s.resume && !s.link && !s.checksumRow);
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

// ---------------------------------------------------------------------------------------------
// emulated links (issue 13): targets per row, the duration model and the report section

const fmtMiBps = (bytesPerS) => `${(bytesPerS / MiB).toFixed(1)} MiB/s`;
const fmtMargin = (x) => (x == null ? '–' : `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(2)}`);

/**
 * The issue's targets, row by row: with defaults over h2 ≥ 0.9 × the limit's throughput; over
 * HTTP/1.1 the same wherever 6 × chunk (the browsers' 6 connections per host) covers the
 * bandwidth-delay product; ≤ 0.5 × Flow.js's time at RTT ≥ 100 ms; 0 preflights with defaults.
 * Ratios are per round (time(limit) / time(resumable-wasm) = throughput ratio), then the median.
 * `met` is null where the row has no such target; `why` is computed from the link for misses.
 */
/**
 * What a link row measures, from the single POST's CPU: the browser's and the fixture's CPU
 * seconds over its wall time, in cores of this machine. Near all cores, the limit (and every
 * client with it) is held back by the machine, not by the link.
 */
function rowBoundBy(s) {
  const l = s.byClient.limit;
  if (!l || l.msMedian == null || l.cpuBrowserMedian == null || l.cpuFixtureMedian == null) return null;
  const cores = (l.cpuBrowserMedian + l.cpuFixtureMedian) / (l.msMedian / 1000);
  const nproc = cpus().length;
  const machine = cores >= 0.75 * nproc;
  return { cores, nproc, machine, text: `${machine ? 'the machine' : 'the link'} (the single POST kept ${cores.toFixed(1)} of ${nproc} cores busy)` };
}

function evaluateLinkTargets(res) {
  const W = 'resumable-wasm';
  const out = [];
  for (const s of res.scenarios.filter((x) => x.link && !x.checksumRow)) {
    const l = s.link;
    const bdp = bdpBytes(l);
    const rate = (l.up_mbit * 1e6) / 8;
    const row = (target, measured, value, goal, higherIsBetter, why, met = value == null ? false : higherIsBetter ? value >= goal : value <= goal) =>
      out.push({ scenario: s.id, target, measured, margin: value == null || met === null ? null : higherIsBetter ? value - goal : goal - value, met, why: met === false ? why : '', boundBy: rowBoundBy(s)?.text ?? '–' });
    const limitMiBps = s.byClient.limit?.mibPerSMedian;
    // Throughput of `client` against the limit (per round, median), and why a miss is a miss.
    const vsLimit = (client) => {
      const tp = s.ratios[`limit/${client}`];
      const measured = tp ? `${fmtR(tp.timeRatioMedian)} × (${fmtR(tp.timeRatioRange[0])}–${fmtR(tp.timeRatioRange[1])}, n=${tp.n})` : '–';
      // The defaults' window ('auto'): at most 6 toward HTTP/1.1, up to 64 (maxSimultaneousUploads) over h2.
      const most = s.proto === 'h2' ? 64 : 6;
      const why = [
        client === AUTO_CHUNK
          ? `filling the link takes ${fmtMiB(bdp)} in flight (BDP); over HTTP/1.1 that is 6 chunks of ${fmtMiB(bdp / 6)}, ${AUTO_MAX_CHUNK / MiB} MiB at most (maxChunkSize); the POSTs sent: ${s.byClient[client]?.requests.map((q) => q.POST).join('/') ?? '–'}`
          : `filling the link takes ${(bdp / s.chunk).toFixed(1)} chunks in flight (BDP ${fmtMiB(bdp)}); 'auto' keeps at most ${most} in flight, ${fmtMiBps((most * s.chunk) / (l.rtt_ms / 1000))} at most of its ${fmtMiBps(rate)}, and grows there over the first round trips`,
        client === NO_TAO && 'without Timing-Allow-Origin the page cannot read the protocol: 6 in flight until the probe of 12 shows the origin multiplexes',
        s.proto === 'h1' && 'HTTP/1.1 allows 6 connections per host',
        client !== AUTO_CHUNK && bdp <= most * s.chunk && 'the window can cover the BDP, so the rest is per-request cost (multipart body, the fixture hashing and storing each chunk) on 2 shared cores',
        limitMiBps != null && limitMiBps * MiB < 0.7 * rate && `the limit itself reaches only ${limitMiBps.toFixed(1)} MiB/s here (CPU-bound on 2 shared cores)`,
      ].filter(Boolean).join('; ');
      return { value: tp?.timeRatioMedian ?? null, measured, why };
    };
    const has = (c) => s.clients.includes(c) && s.byClient[c];
    const d = vsLimit(W);
    if (s.proto === 'h2') {
      row('defaults over h2: throughput ≥ 0.9 × limit', d.measured, d.value, 0.9, true, d.why);
      if (has(NO_TAO)) { const n = vsLimit(NO_TAO); row('defaults over h2, no Timing-Allow-Origin: throughput ≥ 0.9 × limit', n.measured, n.value, 0.9, true, n.why); }
    } else if (6 * s.chunk >= bdp) {
      row('defaults over HTTP/1.1 (6 × chunk ≥ BDP): throughput ≥ 0.9 × limit', d.measured, d.value, 0.9, true, d.why);
    } else {
      row('defaults over HTTP/1.1: throughput vs limit', `${d.measured}; no target: 6 × ${fmtMiB(s.chunk)} < BDP ${fmtMiB(bdp)}`, d.value, 0.9, true, '', null);
    }
    if (has(AUTO_CHUNK)) {
      const a = vsLimit(AUTO_CHUNK);
      if (s.proto === 'h1' && 6 * s.chunk < bdp) row("chunkSize 'auto' over HTTP/1.1: throughput ≥ 0.9 × limit", a.measured, a.value, 0.9, true, a.why);
      else row("chunkSize 'auto': throughput vs limit", `${a.measured}; information (the target is on HTTP/1.1 rows where 6 × chunk < BDP)`, a.value, 0.9, true, '', null);
    }
    if (l.rtt_ms >= 100 && s.ratios[`${W}/flowjs`]) {
      const r = s.ratios[`${W}/flowjs`];
      // Time per chunk and slot, in round trips: 0.5 needs 1 (the POST) against Flow.js's 2 (probe + POST).
      const rtts = (c) => fmtR(perChunkRtts(s.byClient[c].msMedian, s.size, s.chunk, l.rtt_ms));
      const flowWhy = `per chunk and slot (counting 3) resumable-wasm took ${rtts(W)} RTT and Flow.js ${rtts('flowjs')} RTT; the transfer alone takes ${(linkTransferMs(l, s.size) / 1000).toFixed(1)} s at the link's rate, the same for both`;
      row('RTT ≥ 100 ms: time ≤ 0.5 × Flow.js', `${fmtR(r.timeRatioMedian)} (${fmtR(r.timeRatioRange[0])}–${fmtR(r.timeRatioRange[1])}, n=${r.n})`, r.timeRatioMedian, 0.5, false, flowWhy);
    }
    for (const c of s.clients.filter((x) => isResumableWasm(x) && s.byClient[x])) {
      const options = s.byClient[c].requests.map((q) => q.OPTIONS).filter((x) => x != null);
      row(`${c === W ? 'defaults' : LABEL[c]}: 0 preflights`, `OPTIONS ${options.join('/') || '– (no run counted)'}`, options.length ? Math.max(...options) : null, 0, false, 'see the request counts in the row\'s table');
    }
  }
  return out;
}

/**
 * Seconds one link row should take (all clients, warm-up included), from a simple model: each
 * chunked client needs max(transfer, chunks / window × (its round trips per chunk × RTT + one
 * chunk's transfer)) — round trips per chunk fitted to the rows measured at RTT 100 and 200 ms
 * (commit 0ac0150): resumable-wasm 1.5 (1 in theory), Flow.js 2.5 (probe + POST), Resumable.js
 * 3.75 (two preflights too); window 3 for the peers and 'resumable-wasm, 3 slots', and for
 * resumable-wasm on its defaults (every variant) 6 over HTTP/1.1 and over h2 the BDP in chunks + 1
 * (at most 64), reached after log2(window / 6) round trips of growth. `chunkSize: 'auto'` is
 * modelled with the row's chunk size (its bigger chunks over HTTP/1.1 only make it faster: an
 * upper bound). The limit: transfer + 2 RTT. Transfers at the link's rate but at most ~60 MiB/s
 * (what one POST reaches through Chromium and the fixture on this 2-core machine), plus ~0.8 s
 * of bookkeeping per run.
 */
function estimateLinkRowSeconds(sc) {
  const l = sc.link;
  const rate = Math.min((l.up_mbit * 1e6) / 8, 60 * MiB);
  const bdp = bdpBytes(l);
  const run = (size, chunk, client) => {
    const T = size / rate, R = l.rtt_ms / 1000, c = chunk / rate;
    if (client === 'limit') return T + 2 * R + 0.8;
    const fixed = { 'resumable-wasm-3': 3, flowjs: 3, resumablejs: 3 }[client];
    const trips = { flowjs: 2.5, resumablejs: 3.75 }[client] ?? 1.5;
    const window = fixed ?? (sc.proto === 'h2' ? Math.min(64, Math.max(6, Math.ceil(bdp / chunk) + 1)) : 6);
    const growth = fixed ? 0 : Math.log2(window / 6) * R;
    return Math.max(T, (Math.ceil(size / chunk) / window) * (trips * R + c)) + growth + 0.8;
  };
  const clients = sc.clients ?? LINK_CLIENTS;
  const warm = 8 * MiB + 7;
  const rounds = (c) => (sc.peerRounds != null && PEERS.includes(c) ? sc.peerRounds : sc.rounds ?? ROUNDS_LINK);
  return 5 + clients.reduce((a, c) => a + run(warm, Math.min(sc.chunk, warm), c) + rounds(c) * run(sc.size, sc.chunk, c), 0);
}

/**
 * The rest of a full `make bench` in minutes, from the committed runs on this machine: the
 * loopback rows (64 MiB × 5 rounds, 512 MiB × 3: about 5 min), the checksum rows (about 1 min)
 * and the many-files rows (about 6 min, 10,000 files through Resumable.js the most of it).
 */
const REST_MINUTES = 12;

/** The link rows of a full `make bench`, in minutes by that model: the default matrix, or with `env` its BENCH_LINK_* pick. */
function estimateFullLinkMinutes(env = {}) {
  const rows = linkScenarios({ quick: false, rounds: Number(env.BENCH_ROUNDS_LINK || 3), env });
  return rows.reduce((a, s) => a + estimateLinkRowSeconds(s), 0) / 60;
}

/** The cost of `checksum` (issue 24): hashing MB/s, and time with each algorithm vs without. */
function renderChecksumSection(res) {
  const rows = res.scenarios.filter((s) => s.checksumRow);
  if (!rows.length) return [];
  const W = 'resumable-wasm';
  const L = ['## The cost of `checksum` (issue 24)', ''];
  for (const s of rows.filter((x) => x.hashing)) {
    L.push(`Hashing in the page (${s.size / MiB} MiB file read in ${s.chunk / MiB} MiB pieces, the reads not timed): CRC-32C in resumable-wasm's wasm **${s.hashing.crc32c} MB/s**, SHA-256 by WebCrypto **${s.hashing.sha256} MB/s**.`, '');
  }
  L.push('Median wall time in seconds (min–max) and the time relative to resumable-wasm without `checksum` (per round, median; target ≤ 1.05); every run\'s file verified on the server.', '');
  L.push(`| row | ${s0(rows).map((c) => LABEL[c]).join(' | ')} |`, `|---|${s0(rows).map(() => '---').join('|')}|`);
  for (const s of rows) {
    const cells = s0(rows).map((c) => {
      const b = s.byClient[c];
      if (!b) return '–';
      const r = c === W ? null : s.ratios[`${c}/${W}`];
      return `${fmtS(b.msMedian)} (${fmtS(b.msRange[0])}–${fmtS(b.msRange[1])})${r ? ` ×${fmtR(r.timeRatioMedian)}` : ''}${b.ok < b.runs ? ` ${b.ok}/${b.runs} ok` : ''}`;
    });
    L.push(`| \`${s.id}\`${s.link ? ` (${linkLabel(s.link)})` : ' (loopback)'} | ${cells.join(' | ')} |`);
  }
  L.push('');
  return L;
}
const s0 = (rows) => [...new Set(rows.flatMap((s) => s.clients))];

function renderLinkSection(res) {
  const rows = res.scenarios.filter((s) => s.link && !s.checksumRow);
  if (!rows.length) return [];
  const W = 'resumable-wasm';
  const L = ['## Emulated links (issue 13)', ''];
  L.push('server-fixture\'s `--link` in front of the API listener: every byte of every connection (TLS handshake, preflight, probe, chunk POST) waits half the RTT each way, and all connections share one rate cap per direction (down = up here; the answers are small). **h1** = plain HTTP/1.1; **h2** = the fixture\'s `--tls` (a certificate made at start, trusted by Chromium through `--ignore-certificate-errors-spki-list`) with HTTP/2 by ALPN. The protocol column is what Chromium reported (CDP `Network.responseReceived`) for every `/upload` response of every run; a run over another protocol than its row\'s stops the bench. 64 MiB at 50 Mbit/s, 256 MiB at 1 Gbit/s (the `QUICK=1` rows: 64 MiB at 1 Gbit/s).', '');
  L.push('Median wall time in seconds, and in brackets the throughput relative to the limit (time(limit) ÷ time(client), per round, median: 1.00 = as fast as one whole-file POST). Requests per upload with defaults as OPTIONS / GET / POST. "row" = wall time of the whole row, warm-ups included.', '');
  const cols = LINK_CLIENTS.filter((c) => rows.some((s) => s.clients.includes(c)));
  L.push(`| link | protocol | file, chunk | ${cols.map((c) => LABEL[c]).join(' | ')} | requests (defaults) | row |`);
  L.push(`|---|---|---|${cols.map(() => '---|').join('')}---|---|`);
  for (const s of rows) {
    const cell = (c) => {
      const b = s.byClient[c];
      if (!b || b.msMedian == null) return '–';
      const r = c === 'limit' ? null : s.ratios[`limit/${c}`];
      return `${fmtS(b.msMedian)}${r ? ` (${fmtR(r.timeRatioMedian)})` : ''}`;
    };
    const req = s.byClient[W].requests.map((q) => `${q.OPTIONS} / ${q.GET} / ${q.POST}`).join(', ');
    const protos = [...new Set(s.clients.flatMap((c) => s.byClient[c].protocols ?? []))].join(', ');
    L.push(`| ${linkLabel(s.link)} | ${protos} | ${s.size / MiB} MiB, ${s.chunk / MiB} MiB | ${cols.map(cell).join(' | ')} | ${req} | ${s.seconds} s |`);
  }
  L.push('');
  L.push('### Targets per row', '');
  L.push('Margin = how far past (+) or short of (−) the target the median is.', '');
  L.push('"Measures" says whether the row measures the link or this machine: the CPU the single POST used (browser and fixture, over its wall time), in cores; at three quarters of the cores or more the machine holds it back ("–": the run kept no CPU times).', '');
  L.push('| row | target | measured | margin | met | measures | why (computed from the link) |', '|---|---|---|---|---|---|---|');
  for (const t of evaluateLinkTargets(res)) { // from the runs, so that --render picks up a changed rule
    L.push(`| \`${t.scenario}\` | ${t.target} | ${t.measured} | ${fmtMargin(t.margin)} | ${t.met === null ? '–' : t.met ? '✅ met' : '❌ missed'} | ${t.boundBy} | ${t.why} |`);
  }
  L.push('');
  L.push(...renderPerChunkRtts(res, rows));
  L.push('### Link rows in detail', '');
  for (const s of rows) {
    L.push(`#### \`${s.id}\`: ${linkLabel(s.link)}, ${s.proto === 'h2' ? 'HTTPS, HTTP/2' : 'HTTP/1.1'}, ${s.size / MiB} MiB file, ${s.chunk / MiB} MiB chunks (${s.chunks} chunks), BDP ${fmtMiB(bdpBytes(s.link))}`, '');
    L.push('| client | ok | time s (median) | min–max | MiB/s | × limit throughput (per round, median, min–max) | OPTIONS / GET / POST | protocol | retries | CPU s, browser / fixture (median) |');
    L.push('|---|---|---|---|---|---|---|---|---|---|');
    for (const c of s.clients) {
      const b = s.byClient[c];
      const r = c === 'limit' ? null : s.ratios[`limit/${c}`];
      const reqs = b.requests.map((q) => `${q.OPTIONS ?? '?'} / ${q.GET ?? '?'} / ${q.POST ?? '?'}`).join(', ');
      L.push(`| ${LABEL[c]} | ${b.ok}/${b.runs} | ${fmtS(b.msMedian)} | ${fmtS(b.msRange[0])}–${fmtS(b.msRange[1])} | ${b.mibPerSMedian?.toFixed(1) ?? '–'} | ${r ? `${fmtR(r.timeRatioMedian)} (${fmtR(r.timeRatioRange[0])}–${fmtR(r.timeRatioRange[1])})` : '1'} | ${reqs} | ${(b.protocols ?? []).join(', ')} | ${b.retries} | ${b.cpuBrowserMedian == null ? '–' : `${b.cpuBrowserMedian.toFixed(1)} / ${b.cpuFixtureMedian?.toFixed(1) ?? '–'}`} |`);
    }
    const fails = s.clients.flatMap((c) => s.byClient[c].failures.map((f) => `${LABEL[c]} ${f}`));
    if (fails.length) L.push('', `**Failed runs:** ${fails.join('; ')}`);
    L.push('');
  }
  return L;
}

/**
 * Round trips per chunk and slot counting 3 slots: wall time ÷ (chunks ÷ 3) ÷ RTT. With 3 fixed
 * slots (Flow.js, 'resumable-wasm, 3 slots') it is the time each chunk takes in its slot; on the
 * defaults, with more in flight, it falls below 1 as the window grows.
 */
const perChunkRtts = (ms, size, chunk, rttMs) => (ms == null ? null : ms / (Math.ceil(size / chunk) / 3) / rttMs);

/** Issue 28's "before and after": per link row, the round trips per chunk of this run next to the run committed before it. */
function renderPerChunkRtts(res, rows) {
  const prev = res.previous;
  const clients = ['resumable-wasm', 'resumable-wasm-3', 'flowjs'].filter((c) => rows.some((s) => s.byClient[c]) || rows.some((s) => prev?.rows?.[s.id]?.clients?.[c]));
  if (!clients.length) return [];
  const L = ['### Round trips per chunk, before and after', ''];
  L.push(`Wall time ÷ (chunks ÷ 3) ÷ RTT, from the median time: round trips per chunk and slot counting 3 slots. With 3 fixed in flight (Flow.js, and "3 slots" where a run had it) it is the time one chunk takes in its slot, 1 in theory for resumable-wasm (the POST) and 2 for Flow.js (probe + POST); on resumable-wasm's defaults it falls below 1 as the window grows past 3. "Before" = the link rows of the run committed before this one (${prev ? `\`${prev.source}\`, commit ${prev.commit ?? '?'}, ${prev.date ?? '?'}` : 'none read'}), "after" = this run (commit ${res.machine.commit}); Flow.js, the same code in both, shows how much the machine differed. "–" = not in that run (the 5 MiB rows were not in the run before; "3 slots" left the link rows in this one).`, '');
  L.push(`| row | ${clients.map((c) => `${LABEL[c]} before | after`).join(' | ')} |`, `|---|${clients.map(() => '---|---').join('|')}|`);
  for (const s of rows) {
    const p = prev?.rows?.[s.id];
    const cells = clients.map((c) => {
      const before = p?.clients?.[c] ? perChunkRtts(p.clients[c].msMedian, p.size, p.chunk, p.link.rtt_ms) : null;
      const after = s.byClient[c] ? perChunkRtts(s.byClient[c].msMedian, s.size, s.chunk, s.link.rtt_ms) : null;
      return `${fmtR(before)} | ${fmtR(after)}`;
    });
    L.push(`| \`${s.id}\` | ${cells.join(' | ')} |`);
  }
  L.push('');
  return L;
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
  L.push(`- **Common settings:** \`withCredentials: true\`, resumable-wasm with its default \`simultaneousUploads\`${res.settings.linkClients ? '' : ' (and, on the link rows, a second column with 3 fixed)'}, the peers with 3, chunk size 1 MiB or 5 MiB, retries allowed (resumable-wasm default 8, Resumable.js default 100, Flow.js \`maxChunkRetries: 3\` — its default is 0). Everything else is each library's default (Resumable.js and Flow.js test every chunk with a GET; resumable-wasm \`testChunks: 'auto'\`).`);
  L.push('- **Limit:** one plain `fetch` POST of the whole file as multipart (a single-chunk upload, `resumableChunkSize` = file size), `credentials: \'include\'`.');
  L.push(`- **Rounds:** ${res.settings.rounds} per client for 64 MiB, ${res.settings.roundsBig} for 512 MiB, interleaved (A B C D, A B C D, …), after one untimed warm-up upload (8 MiB) per client per scenario. Every scenario runs in a fresh page; each run uses a unique target URL (\`?run=…\`) so it starts with a cold preflight cache, like a fresh page load.`);
  L.push(`- **Timing:** ${res.settings.timing}. Throughput = file size / wall time (for the resume variant too, although only half the bytes travel).`);
  L.push(`- **Memory:** ${res.settings.memoryMethod}. "Peak page" = peak JS heap + (resumable-wasm only) wasm linear memory.`);
  L.push('- **Verification:** every run is checked against the fixture: exactly one assembled file whose SHA-256 equals the one computed in the page. A failed run is listed and excluded from times.');
  const linkRows = res.scenarios.filter((s) => s.link);
  if (linkRows.length) {
    const counts = [...new Set(linkRows.filter((s) => !s.checksumRow).map((s) => s.clients.length))].sort().join(' or ');
    L.push(`- **Links:** ${res.settings.roundsLink} rounds per client per link row, ${counts} clients interleaved; API over HTTP/1.1 at ${res.settings.api} and over HTTPS/HTTP/2 at ${res.settings.tlsApi ?? '–'}, behind \`--link\` (see [Emulated links](#emulated-links-issue-13)).`);
    if (res.settings.linkClients) L.push(`- **Link clients:** ${res.settings.linkClients}.`);
    if (res.settings.budget) L.push(`- **Rounds on the link rows:** ${res.settings.budget}.`);
  }
  const est = res.fullLinkEstimateMinutes;
  if (est != null) {
    const model = linkRows.map((s) => `\`${s.id}\` ${s.seconds} s measured, ${Math.round(estimateLinkRowSeconds(s))} s modelled`).join('; ');
    L.push(`- **Duration of a full \`make bench\`:** the default link matrix alone about ${Math.round(est)} min by the model in \`bench/run.mjs\` (\`estimateLinkRowSeconds\`)${model ? ` (this run: ${model})` : ''}, plus the loopback, checksum and many-files rows (about ${REST_MINUTES} min); \`make bench QUICK=1\` (loopback 64 MiB/1 MiB + RTT 100 ms at 1 Gbit/s over h1 and h2, 2 rounds) stays under 5 min.`);
  }
  L.push(`- **Total duration:** ${res.totalSeconds} s${res.settings.quick ? ' (`QUICK=1`)' : ''}${res.aborted ? ` — **ABORTED**: ${res.aborted.split('\n')[0]}` : ''}`);
  L.push('');
  if (res.targets.length) {
    L.push('## Targets (issue 8)', '');
    L.push('| target | measured | met |', '|---|---|---|');
    for (const t of res.targets) L.push(`| ${t.target} | ${t.measured} | ${t.met ? '✅ met' : '❌ missed'} |`);
    L.push('');
  }
  L.push(...renderLinkSection(res));
  L.push(...renderChecksumSection(res));
  L.push(...renderS3Section(res, { fmtS, fmtR }));
  L.push(res.scenarios.some((s) => s.link) ? '## Loopback results' : '## Results', '');
  L.push('Wall time in seconds (median, min–max), throughput in MiB/s (median), requests per run as OPTIONS / GET / POST counted by the fixture (all rounds identical unless several values are listed), peak page memory (max over rounds).', '');
  for (const s of res.scenarios.filter((x) => !x.link && !x.checksumRow)) {
    const title = `${s.size / MiB} MiB file, ${s.chunk / MiB} MiB chunks (${s.chunks} chunks), ${s.delay} ms delay${s.auth ? ', `Authorization` header' : ''}${s.resume ? `, resume (${Math.floor(s.chunks / 2)} of ${s.chunks} chunks already on the server)` : ''}`;
    L.push(`### \`${s.id}\`: ${title}`, '');
    L.push('| client | ok | time s (median) | min–max | MiB/s | time ÷ resumable-wasm (per round, median, min–max) | OPTIONS / GET / POST | retries | peak page memory |');
    L.push('|---|---|---|---|---|---|---|---|---|');
    for (const c of s.clients) {
      const b = s.byClient[c];
      const r = c === 'resumable-wasm' ? null : s.ratios[`${c}/resumable-wasm`];
      const reqs = b.requests.map((q) => `${q.OPTIONS ?? '?'} / ${q.GET ?? '?'} / ${q.POST ?? '?'}`).join(', ');
      L.push(`| ${LABEL[c]} | ${b.ok}/${b.runs} | ${fmtS(b.msMedian)} | ${fmtS(b.msRange[0])}–${fmtS(b.msRange[1])} | ${b.mibPerSMedian?.toFixed(1) ?? '–'} | ${r ? `${fmtR(r.timeRatioMedian)} (${fmtR(r.timeRatioRange[0])}–${fmtR(r.timeRatioRange[1])})` : '1'} | ${reqs} | ${b.retries} | ${fmtMiB(b.peakPageMax)}${c === 'resumable-wasm' && b.wasmMemoryMax != null ? ` (wasm ${fmtMiB(b.wasmMemoryMax)})` : ''} |`);
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

// Anything but the two flags above is refused: a mistyped flag (or --help) must not start the
// 80-90 minute matrix and overwrite the results.
const unknown = process.argv.slice(2).filter((a) => a !== '--estimate' && a !== '--render');
if (unknown.length) {
  console.error(`bench/run.mjs: unknown argument ${unknown.join(' ')}; it takes --render or --estimate, or nothing (then BENCH_* variables pick the rows): see the comment at the top of bench/run.mjs`);
  process.exit(2);
}
for (const out of [OUT_JSON, OUT_MD]) mkdirSync(dirname(out), { recursive: true });
if (process.argv.includes('--estimate')) {
  for (const s of linkScenarios({ quick: false, rounds: Number(process.env.BENCH_ROUNDS_LINK || 3) })) console.log(`${s.id.padEnd(24)} ${Math.round(estimateLinkRowSeconds(s))} s`);
  const link = estimateFullLinkMinutes(process.env);
  console.log(`link rows of a full make bench with these BENCH_* settings: about ${Math.round(link)} min by the model; with the loopback, checksum and many-files rows (about ${REST_MINUTES} min) about ${Math.round(link + REST_MINUTES)} min`);
  rmSync(FILES_DIR, { recursive: true, force: true });
} else if (process.argv.includes('--render')) {
  writeFileSync(OUT_MD, renderMarkdown(JSON.parse(readFileSync(OUT_JSON, 'utf8'))));
  rmSync(FILES_DIR, { recursive: true, force: true });
} else {
  main().catch((e) => { console.error(e); process.exit(1); });
}
