// Loads a bundle made by scripts/bundle.mjs (the CLI, dist/cli/kmsvol.cjs;
// the card, dist/card/card.cjs) with the V8 code cache made next to it at
// build time, so a process reads and compiles one file instead of resolving
// ~100 modules (issue 26: one CLI call <= 150 ms; issue 30: the cycle). The
// cache saves ~20 ms of CPU a call (bench/cli-call-outside.sh).
// Returns null when the bundle is absent or older than any module of dist/
// it was made from (tsc run alone, `tsc --watch`, a patched file): the
// caller then runs dist/ itself, slower but never stale. The bundle's last
// line names its build (a random id) and those modules, relative to dist/.
// The cache is trusted as dist/ is (scripts/link-bin.sh checks both), but V8
// checks only a cache's source length, not its content: so the cache file
// starts with its bundle's build id and the SHA-256 of the V8 data that
// follows, and one of another build, or altered, is not used.
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { createHash } = require('node:crypto');
const { createRequire, wrap } = require('node:module');

const DIST = path.resolve(__dirname, '../dist');
/** Each bundle, and the compiled module it is made from. */
const BUNDLES = {
  cli: { file: path.join(DIST, 'cli/kmsvol.cjs'), from: path.join(DIST, 'cli/main.js') },
  card: { file: path.join(DIST, 'card/card.cjs'), from: path.join(DIST, 'card/process.js') },
};
const cacheOf = (file) => `${file}.cache`;
/** The bundle's last line: `//# kmsvol-build {"id":…,"inputs":[…]}`. */
const STAMP = '\n//# kmsvol-build ';
const stampLine = (id, inputs) => `${STAMP}${JSON.stringify({ id, inputs })}\n`;
const ID_BYTES = 16;
const SUM_BYTES = 32;
/** The cache file's bytes: build id, SHA-256 of the V8 data, the V8 data. */
const cacheFile = (id, data) => Buffer.concat([Buffer.from(id, 'hex'), createHash('sha256').update(data).digest(), data]);

/** The V8 data of `file`'s cache when it is of build `id` and intact, else undefined. */
function cachedData(file, id) {
  let bytes;
  try {
    bytes = fs.readFileSync(cacheOf(file));
  } catch {
    return undefined; // absent, or unreadable (another user's build): compile without it
  }
  if (bytes.length <= ID_BYTES + SUM_BYTES || bytes.subarray(0, ID_BYTES).toString('hex') !== id) return undefined;
  const data = bytes.subarray(ID_BYTES + SUM_BYTES);
  return createHash('sha256')
    .update(data)
    .digest()
    .equals(bytes.subarray(ID_BYTES, ID_BYTES + SUM_BYTES))
    ? data
    : undefined;
}

/** Bundle `name`'s exports, its compiled script and build id, or null when it is absent, unstamped, or older than a module of dist/ it was made from. */
function loadBundle(name) {
  const { file } = BUNDLES[name];
  let source;
  let bundled;
  try {
    source = fs.readFileSync(file, 'utf8');
    bundled = fs.statSync(file).mtimeMs;
  } catch {
    return null;
  }
  const at = source.lastIndexOf(STAMP);
  if (at < 0) return null;
  let stamp;
  try {
    stamp = JSON.parse(source.slice(at + STAMP.length));
  } catch {
    return null;
  }
  if (typeof stamp?.id !== 'string' || !Array.isArray(stamp.inputs)) return null;
  for (const input of stamp.inputs) {
    const m = fs.statSync(path.join(DIST, input), { throwIfNoEntry: false })?.mtimeMs;
    if (m === undefined || m > bundled) return null;
  }
  // No importModuleDynamically: a bundle holds no import() (scripts/bundle.mjs), as V8 loses the callback with a code cache.
  const script = new vm.Script(wrap(source), { filename: file, cachedData: cachedData(file, stamp.id) });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(file), module, file, path.dirname(file));
  return { exports: module.exports, script, id: stamp.id };
}

module.exports = { loadBundle, BUNDLES, DIST, cacheOf, cacheFile, stampLine, ID_BYTES };
