// Loads the CLI bundle (dist/cli/kmsvol.cjs, made by scripts/bundle-cli.mjs)
// with the V8 code cache made next to it at build time, so a CLI call reads
// and compiles one file instead of resolving ~100 modules (issue 26: one call
// <= 150 ms). Returns null when the bundle is absent or older than the tsc
// output in dist/ (someone ran tsc alone): bin/kmsvol.js then runs dist/
// itself, which is slower but never stale.
// The cache is trusted as dist/ is: both are written by the build, with the
// builder's umask; one older than the bundle is not used (V8 checks only the
// source's length, not its content).
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { createRequire, wrap } = require('node:module');

const DIST_CLI = path.resolve(__dirname, '../dist/cli');
const BUNDLE = path.join(DIST_CLI, 'kmsvol.cjs');
const CACHE = `${BUNDLE}.cache`;

const mtime = (file) => {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
};

/** The bundle's exports ({ main }) and its compiled script, or null when dist/cli/main.js is newer than the bundle (or either is absent). */
function loadBundle() {
  const bundled = mtime(BUNDLE);
  const compiled = mtime(path.join(DIST_CLI, 'main.js'));
  if (bundled === undefined || compiled === undefined || compiled > bundled) return null;
  const cached = mtime(CACHE);
  let cachedData;
  try {
    if (cached !== undefined && cached >= bundled) cachedData = fs.readFileSync(CACHE);
  } catch {
    // unreadable (another user's build): compile without it
  }
  const script = new vm.Script(wrap(fs.readFileSync(BUNDLE, 'utf8')), {
    filename: BUNDLE,
    cachedData,
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(BUNDLE), module, BUNDLE, DIST_CLI);
  return { main: module.exports.main, script, cacheRejected: script.cachedDataRejected === true };
}

module.exports = { loadBundle, BUNDLE, CACHE };
