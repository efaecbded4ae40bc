// The direct-to-S3 group of `make bench` (issues 25 and 26): resumable-wasm's two object-storage
// modes (`protocol: 's3'`, multipart part PUTs; `protocol: 's3-post'`, form POSTs composed by the
// server) against `@uppy/aws-s3` 6.x with `@uppy/core`, all uploading the same file in 5 MiB
// parts into the same store (moto's S3 server) signed by the same server (server-fixture's S3
// role), on loopback and behind an emulated link in front of the store. `BENCH_ONLY=s3` runs this
// group alone and merges it into bench/results.json (see bench/run.mjs); `BENCH_S3_ROWS=id,id`
// runs only these rows of it (the merge then holds only them).
//
// Clients are named in S3_CLIENTS and implemented in bench/pages/s3.html (one entry each): a
// further mode is one name here, one label, one entry there.
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { build } from 'esbuild';
import { startStore } from '../tests/e2e/harness.mjs';

const MiB = 1024 * 1024;
export const S3_CLIENTS = ['resumable-wasm', 'resumable-wasm-s3-post', 'uppy-aws-s3'];
export const S3_LABEL = {
  'resumable-wasm': "resumable-wasm, protocol 's3'",
  'resumable-wasm-s3-post': "resumable-wasm, protocol 's3-post'",
  'uppy-aws-s3': '@uppy/aws-s3 6.3.1 + @uppy/core 6.3.1',
};
const BUCKET = 'bench-bucket';
const PART = 5 * MiB;

/**
 * The rows: 64 MiB on loopback and with the store RTT 100 ms away (an untimed warm-up, then
 * BENCH_ROUNDS_S3 rounds), 512 MiB at RTT 100 ms (BENCH_ROUNDS_S3_BIG rounds, no warm-up: the
 * wasm's compile and the first connections are lost in a 512 MiB upload's time), and on loopback
 * too (BENCH_S3_BIG_LOOPBACK=0 leaves that row out).
 */
export function s3Scenarios(env = process.env) {
  const rounds = Number(env.BENCH_ROUNDS_S3 || 3);
  const big = Number(env.BENCH_ROUNDS_S3_BIG || 2);
  const rows = [
    { id: 's3-64M-5M-loopback', size: 64 * MiB, part: PART, rttMs: 0, rounds, warmup: true },
    { id: 's3-64M-5M-rtt100', size: 64 * MiB, part: PART, rttMs: 100, rounds, warmup: true },
    ...(env.BENCH_S3_BIG_LOOPBACK !== '0' ? [{ id: 's3-512M-5M-loopback', size: 512 * MiB, part: PART, rttMs: 0, rounds: big, warmup: false }] : []),
    { id: 's3-512M-5M-rtt100', size: 512 * MiB, part: PART, rttMs: 100, rounds: big, warmup: false },
  ];
  const only = env.BENCH_S3_ROWS ? env.BENCH_S3_ROWS.split(',') : null;
  return only ? rows.filter((r) => only.includes(r.id)) : rows;
}

/**
 * A TCP relay to `port` that holds every piece of data `rttMs / 2` in each direction: the
 * round trip of a store far away, with no rate cap, no loss and an undelayed TCP connect (as
 * server-fixture's `--link`, which only sits in front of the fixture's own API).
 */
function delayedStore(port, rttMs) {
  const half = rttMs / 2;
  const sockets = new Set();
  const server = createServer((down) => {
    const up = connect(port, '127.0.0.1');
    for (const s of [down, up]) { sockets.add(s); s.on('close', () => sockets.delete(s)); s.on('error', () => { down.destroy(); up.destroy(); }); }
    const relay = (from, to) => {
      from.on('data', (d) => setTimeout(() => to.write(d), half));
      from.on('end', () => setTimeout(() => to.end(), half));
    };
    relay(down, up);
    relay(up, down);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => { for (const s of sockets) s.destroy(); server.close(); },
  })));
}

/** Bundles Uppy for the page (as an app would ship it): bench/pages/uppy-s3.js. */
async function bundleUppy(root) {
  await build({ entryPoints: [join(root, 'bench/uppy-s3-entry.mjs')], bundle: true, minify: true, format: 'iife', outfile: join(root, 'bench/pages/uppy-s3.js'), logLevel: 'warning' });
}

/** Runs the group: `{ scenarios, runs, store }` for results.json. */
export async function runS3Group({ root, browser, startFixture, benchFile, log, summarize }) {
  if (!existsSync(join(root, '.tools/moto-venv/bin/moto_server'))) {
    log('S3 rows skipped: moto is not installed (scripts/ensure-tools.sh)');
    return { skipped: 'moto is not installed (scripts/ensure-tools.sh)' };
  }
  await bundleUppy(root);
  const store = await startStore();
  const out = { scenarios: [], runs: [], store: 'moto_server through scripts/moto-server.py (MOTO_DISABLE_GLOBAL_CORS=true; the bucket\'s CORS rule applied to form POSTs too, as S3 does), bucket CORS rule: PUT and POST from the page, any header, ETag exposed' };
  try {
    for (const sc of s3Scenarios()) {
      const link = sc.rttMs ? await delayedStore(Number(new URL(store.url).port), sc.rttMs) : null;
      // The user is far from the store and from the app server, which sit side by side (one
      // region): the page's requests to both pay the round trip (the relay; the fixture's
      // `--link`), the role's own store calls do not (`--s3-public-endpoint` is what pages get).
      const fx = await startFixture({ extraArgs: ['--s3-endpoint', store.url, '--s3-bucket', BUCKET, ...(link ? ['--s3-public-endpoint', link.url, '--link', `rtt=${sc.rttMs}`] : [])] });
      const t0 = Date.now();
      try {
        // One rule for all three clients: PUT (part uploads, ETag exposed) and POST (form uploads).
        await fx.json('/__fixture/s3/bucket', { method: 'POST', body: JSON.stringify({ cors: 'all' }) });
        const context = await browser.newContext();
        const page = await context.newPage();
        const resp = await page.goto(`${fx.info.page}/s3.html`, { waitUntil: 'load' });
        if (resp?.status() !== 200) throw new Error(`GET /s3.html → ${resp?.status()}`);
        await page.waitForFunction(() => window.__S3 && (window.__S3.ready || window.__S3.loadError), null, { timeout: 15000 });
        const loadError = await page.evaluate(() => window.__S3.loadError);
        if (loadError) throw new Error(`s3.html: ${loadError}`);
        const file = await benchFile(sc.size);
        await page.setInputFiles('#pick', file.path);
        const runs = [];
        // Round 0 is an untimed warm-up of each client (rows with `warmup`).
        for (let round = sc.warmup ? 0 : 1; round <= sc.rounds; round++) {
          for (const client of S3_CLIENTS) {
            store.clearLog();
            await fx.reset(false);
            const r = await page.evaluate(([c, api, part]) => window.__S3.run(c, api, part), [client, fx.info.api, sc.part]);
            await new Promise((res) => setTimeout(res, 50 + 2 * sc.rttMs)); // stragglers
            // Everything the store logged for the bucket, from the page and from the fixture's
            // own calls alike (form POSTs go to the bucket's URL itself, DeleteObjects and
            // ListObjectsV2 too).
            const reqs = store.requests(BUCKET);
            const count = (m) => reqs.filter((e) => e.method === m).length;
            const stats = await fx.stats();
            // Calls to the signer: the page's requests to the role's `/s3/*` routes but the relay
            // (Uppy's CreateMultipartUpload/Complete passed on to the store), preflights apart.
            const apiLog = (stats.log ?? []).filter((e) => e.listener === 'api');
            const signer = apiLog.filter((e) => e.method !== 'OPTIONS' && e.path.startsWith('/s3/') && e.path !== '/s3/relay').length;
            const relayed = apiLog.filter((e) => e.method !== 'OPTIONS' && e.path === '/s3/relay').length;
            const fixtureOPTIONS = apiLog.filter((e) => e.method === 'OPTIONS').length;
            let verified = false;
            let failure = r.ok ? null : r.error;
            if (r.ok) {
              // Path style (<store>/<bucket>/<key>, the fixture's) or virtual-hosted style
              // (<bucket>.s3.amazonaws.com/<key>, moto's Location that Uppy passes on).
              let key = null;
              try {
                const u = new URL(r.location);
                if (u.pathname.startsWith(`/${BUCKET}/`)) key = decodeURIComponent(u.pathname.slice(BUCKET.length + 2));
                else if (u.hostname.startsWith(`${BUCKET}.`)) key = decodeURIComponent(u.pathname.slice(1));
              } catch { /* no URL: no key */ }
              const object = key ? await fx.json(`/__fixture/s3/object?key=${encodeURIComponent(key)}`).catch((e) => ({ error: String(e) })) : { error: `no key in ${r.location}` };
              verified = object.sha256 === file.sha256;
              if (!verified) failure = `object check failed: ${JSON.stringify(object).slice(0, 200)}`;
              // moto keeps objects in memory: drop this one (unsigned; moto checks no signature).
              if (key) await fetch(`${store.url}/${BUCKET}/${key.split('/').map(encodeURIComponent).join('/')}`, { method: 'DELETE' }).catch(() => {});
            }
            // What the upload left in the bucket besides its object (s3-post's chunk objects
            // once composed, say): should be nothing.
            const left = await fx.json('/__fixture/s3/objects?prefix=').catch(() => null);
            const leftover = Array.isArray(left) ? left.length : null;
            const rec = {
              scenario: sc.id, client, round: round || null, warmup: round === 0, ok: r.ok && verified, failure,
              ms: Math.round(r.ms * 10) / 10, mibPerS: r.ok && verified ? Math.round((sc.size / MiB / (r.ms / 1000)) * 10) / 10 : null,
              requests: { storePUT: count('PUT'), storeOPTIONS: count('OPTIONS'), storePOST: count('POST'), storeGET: count('GET'), storeDELETE: count('DELETE'), signer, relayed, fixtureOPTIONS },
              preflights: {}, retries: 0,
              non2xxCount: reqs.filter((e) => e.method !== 'OPTIONS' && !(e.status >= 200 && e.status < 300)).length,
              leftover,
              memory: {},
            };
            log(`${rec.warmup ? 'warm-up' : `round ${round}`} ${sc.id} ${client.padEnd(22)} ${rec.ok ? 'ok ' : 'FAIL'} ${r.ms.toFixed(0).padStart(6)} ms  store PUT/OPTIONS/POST/GET/DELETE ${rec.requests.storePUT}/${rec.requests.storeOPTIONS}/${rec.requests.storePOST}/${rec.requests.storeGET}/${rec.requests.storeDELETE}  signer ${signer} relayed ${relayed} fixture OPTIONS ${fixtureOPTIONS} left ${leftover}${failure ? `  ${failure}` : ''}`);
            out.runs.push(rec);
            runs.push(rec);
          }
        }
        await context.close();
        const s = { ...sc, clients: S3_CLIENTS, seconds: Math.round((Date.now() - t0) / 1000) };
        out.scenarios.push({ ...s, ...summarize(s, runs) });
      } finally {
        await fx.stop();
        link?.close();
      }
    }
  } finally {
    await store.stop();
  }
  return out;
}

/** OPTIONS per upload: at the store / at the signer's origin (Uppy's relayed requests). */
const optionsOf = (q) => `${q.storeOPTIONS ?? '–'} / ${q.fixtureOPTIONS ?? '–'}`;
const storeOf = (q) => `${q.storePUT} / ${q.storePOST} / ${q.storeGET} / ${q.storeDELETE ?? 0}`;
const distinct = (b, f) => [...new Set(b.requests.map(f))].join(', ');

/** The BENCHMARKS.md section of the S3 rows. */
export function renderS3Section(res, { fmtS, fmtR }) {
  const g = res.s3;
  if (!g?.scenarios?.length) return [];
  const L = ['## Direct to S3 (issues 25 and 26)', ''];
  const sizes = [...new Set(g.scenarios.map((s) => s.size / MiB))].map((m) => `${m} MiB`).join(' and ');
  const roundsOf = [...new Set(g.scenarios.map((s) => `${s.rounds} round${s.rounds === 1 ? '' : 's'} per client${s.warmup ? ' after one untimed warm-up' : ''} (${s.size / MiB} MiB)`))].join(', ');
  L.push(`${g.date ? `Run ${g.date} (commit ${g.commit}), alone (\`BENCH_ONLY=s3\`), merged into this report. ` : ''}One file of ${sizes} (disk-backed, picked through \`<input type=file>\`) into one bucket of ${g.store}, 5 MiB parts, the same signer for every client: server-fixture's S3 role. resumable-wasm \`protocol: 's3'\` (multipart: its five callbacks → \`/s3/create\`, \`/s3/sign-part\` per part, \`/s3/complete\`; part PUTs from the page), resumable-wasm \`protocol: 's3-post'\` (its callbacks → \`/s3/policy\` once per file, \`/s3/compose\`; every chunk a form POST from the page, no preflight; the role composes the chunk objects into the object inside the store: CreateMultipartUpload, UploadPartCopy per chunk, CompleteMultipartUpload, DeleteObjects), \`@uppy/aws-s3\` 6.3.1 + \`@uppy/core\` (its \`signRequest\` → \`/s3/sign-request\`). Uppy 6 sends CreateMultipartUpload and CompleteMultipartUpload from the browser itself; moto answers those without CORS headers, so they go through the fixture's \`/s3/relay\` (same origin as the signer, one extra hop; a real bucket's CORS rule would let them go straight). The "RTT 100 ms" rows put the user 100 ms away from both the store and the app server, which sit side by side as in one region: a TCP relay in front of the store holds every piece of data 50 ms each way for the page's requests (no rate cap, connect not delayed), and the fixture's \`--link rtt=100\` does the same for the page's calls to the signer (and Uppy's relayed requests); the role's own store calls (create, complete, the compose, what it relays) go to the store directly (\`--s3-public-endpoint\` names the relay in the URLs the page gets). Each client with its defaults (resumable-wasm \`simultaneousUploads: 'auto'\`; Uppy \`limit: 6\` files, one file's parts one after another). ${roundsOf}, the clients interleaved; every run's object is read back and its SHA-256 checked, then deleted, and the bucket listed: "left" is what the upload left in it besides its object (s3-post's chunk objects, were they not deleted).`, '');
  L.push('Counted per upload: **OPTIONS** at the store / at the signer\'s origin (the relay\'s preflights: every relay URL differs); **signing calls**, the page\'s calls to the role\'s `/s3/*` routes but the relay (`s3`: create + one `signPart` per part + complete; `s3-post`: `createUpload` + `complete`; Uppy: one `signRequest` per request it sends to the store); **relayed**, Uppy\'s requests passed on by `/s3/relay`; **store PUT / POST / GET / DELETE** as moto logs them, from the page and from the role alike (`s3`: part PUTs from the page, create and complete from the role; `s3-post`: the chunk POSTs from the page, then from the role create, one UploadPartCopy PUT per chunk, complete and DeleteObjects, all POSTs but the copies; Uppy: part PUTs, create and complete relayed).', '');
  // The comparison the reader came for: every client on every row, in one table.
  const s3Ratio = (s, c) => (c === 'resumable-wasm' ? '1' : fmtR(s.ratios?.[`${c}/resumable-wasm`]?.timeRatioMedian));
  L.push('| row | client | time s (median) | time ÷ `s3` (per round, median) | OPTIONS (store / signer) | signing calls | store requests (PUT / POST / GET / DELETE) |', '|---|---|---|---|---|---|---|');
  for (const s of g.scenarios) {
    for (const c of s.clients) {
      const b = s.byClient[c];
      L.push(`| ${s.size / MiB} MiB, ${s.rttMs ? `RTT ${s.rttMs} ms` : 'loopback'} | ${S3_LABEL[c] ?? c} | ${fmtS(b.msMedian)} | ${s3Ratio(s, c)} | ${distinct(b, optionsOf)} | ${distinct(b, (q) => q.signer)} | ${distinct(b, storeOf)} |`);
    }
  }
  L.push('');
  for (const s of g.scenarios) {
    L.push(`### \`${s.id}\`: ${s.size / MiB} MiB, ${s.part / MiB} MiB parts (${Math.ceil(s.size / s.part)}), ${s.rttMs ? `store RTT ${s.rttMs} ms` : 'loopback'}`, '');
    L.push('| client | ok | time s (median) | min–max | MiB/s | time ÷ `s3` (per round, median) | OPTIONS (store / signer) | signing calls | relayed | store PUT / POST / GET / DELETE | left |', '|---|---|---|---|---|---|---|---|---|---|---|');
    for (const c of s.clients) {
      const b = s.byClient[c];
      const r = c === 'resumable-wasm' ? null : s.ratios[`${c}/resumable-wasm`];
      const left = [...new Set(s.clients.length ? (g.runs ?? []).filter((x) => x.scenario === s.id && x.client === c && !x.warmup).map((x) => x.leftover ?? '–') : [])].join(', ');
      L.push(`| ${S3_LABEL[c] ?? c} | ${b.ok}/${b.runs} | ${fmtS(b.msMedian)} | ${fmtS(b.msRange[0])}–${fmtS(b.msRange[1])} | ${b.mibPerSMedian?.toFixed(1) ?? '–'} | ${r ? `${fmtR(r.timeRatioMedian)} (${r.perRound.map((x) => x.toFixed(2)).join(', ')})` : '1'} | ${distinct(b, optionsOf)} | ${distinct(b, (q) => q.signer)} | ${distinct(b, (q) => q.relayed)} | ${distinct(b, storeOf)} | ${left} |`);
    }
    const fails = s.clients.flatMap((c) => s.byClient[c].failures.map((f) => `${S3_LABEL[c] ?? c} ${f}`));
    if (fails.length) L.push('', `**Failed runs:** ${fails.join('; ')}`);
    L.push('');
  }
  return L;
}
