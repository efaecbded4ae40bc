// Exits 0 when node_modules/ already holds what package-lock.json pins, 1 (naming the first
// difference) when `npm ci` has to run. Compares installed versions, not a stamp of the
// lockfile's bytes: a lockfile that changes only in entries for other platforms (optional
// packages never installed here) needs no reinstall, and a node_modules/ shared by several
// checkouts of the same lockfile is left alone.
//
//   node scripts/node-modules-match-lock.mjs
import { readFileSync } from 'node:fs';

const lock = JSON.parse(readFileSync('package-lock.json', 'utf8'));
const manifest = JSON.parse(readFileSync('package.json', 'utf8'));

function differ(why) {
  console.error(`node-modules-match-lock: ${why}`);
  process.exit(1);
}

// package.json edited without `npm install` (which would update the lock): `npm ci` must run,
// and will then refuse the stale lockfile with npm's own explanation.
const root = lock.packages?.[''] ?? {};
for (const field of ['dependencies', 'devDependencies', 'optionalDependencies']) {
  if (JSON.stringify(root[field] ?? {}) !== JSON.stringify(manifest[field] ?? {})) {
    differ(`package.json ${field} differ from package-lock.json`);
  }
}

for (const [path, entry] of Object.entries(lock.packages ?? {})) {
  if (path === '' || entry.link) continue;
  let installed = null;
  try {
    installed = JSON.parse(readFileSync(`${path}/package.json`, 'utf8')).version;
  } catch {
    // Optional packages for other platforms are never installed.
    if (entry.optional) continue;
  }
  if (installed !== entry.version) differ(`${path} is ${installed ?? 'missing'}, the lockfile pins ${entry.version}`);
}
