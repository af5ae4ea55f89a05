// Loads a bundle made by scripts/bundle-cli.mjs (the CLI, dist/cli/kmsvol.cjs;
// the card, dist/card/card.cjs) with the V8 code cache made next to it at
// build time, so a process reads and compiles one file instead of resolving
// ~100 modules (issue 26: one CLI call <= 150 ms; issue 30: the cycle).
// Returns null when the bundle is absent or older than the tsc output it was
// made from (someone ran tsc alone): the caller then runs dist/ itself,
// slower but never stale.
// The cache is trusted as dist/ is: both are written by the build, with the
// builder's umask; one older than its bundle is not used (V8 checks only the
// source's length, not its content).
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { createRequire, wrap } = require('node:module');

const DIST = path.resolve(__dirname, '../dist');
/** Each bundle, and the compiled module it is made from. */
const BUNDLES = {
  cli: { file: path.join(DIST, 'cli/kmsvol.cjs'), from: path.join(DIST, 'cli/main.js') },
  card: { file: path.join(DIST, 'card/card.cjs'), from: path.join(DIST, 'card/process.js') },
};
const cacheOf = (file) => `${file}.cache`;

const mtime = (file) => {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
};

/** Bundle `name`'s exports and its compiled script, or null when its source module in dist/ is newer than it (or either is absent). */
function loadBundle(name) {
  const { file, from } = BUNDLES[name];
  const bundled = mtime(file);
  const compiled = mtime(from);
  if (bundled === undefined || compiled === undefined || compiled > bundled) return null;
  const cached = mtime(cacheOf(file));
  let cachedData;
  try {
    if (cached !== undefined && cached >= bundled) cachedData = fs.readFileSync(cacheOf(file));
  } catch {
    // unreadable (another user's build): compile without it
  }
  // No importModuleDynamically: a bundle holds no import() (scripts/bundle.mjs), as V8 loses the callback with a code cache.
  const script = new vm.Script(wrap(fs.readFileSync(file, 'utf8')), { filename: file, cachedData });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(file), module, file, path.dirname(file));
  return { exports: module.exports, script };
}

module.exports = { loadBundle, BUNDLES, cacheOf };
