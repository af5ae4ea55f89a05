// Bundles the compiled CLI (dist/cli/main.js) and card (dist/card/process.js)
// into one CommonJS file each, dist/cli/kmsvol.cjs and dist/card/card.cjs, and
// makes each one's V8 code cache (<bundle>.cache). bin/kmsvol.js and
// bin/card/main.js run them (bin/bundle.cjs). Run by `npm ci` (prepare) and
// `npm test` (pretest), after tsc.
// Outside the bundles, loaded from node_modules when used: the native addons
// (better-sqlite3's and pkcs11js) and the AWS SDK (remote KMS only). The compiled
// modules find the files they need through the package root (src/root.ts).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const loader = path.join(root, 'bin/bundle.cjs');
const { BUNDLES, DIST, cacheOf, stampLine, ID_BYTES } = (await import(loader)).default;

// The card logs from its first step: its bundle carries pino (log.ts loads it lazily otherwise).
const entries = {
  cli: (from) => ({ entryPoints: [from] }),
  card: (from) => ({
    stdin: {
      contents: `import pino from 'pino'; import { usePino } from './dist/log.js'; usePino(pino); export * from ${JSON.stringify(`./${path.relative(root, from)}`)};`,
      resolveDir: root,
      sourcefile: 'card-bundle-entry.js',
    },
  }),
};
for (const [name, { file, from }] of Object.entries(BUNDLES)) {
  fs.rmSync(cacheOf(file), { force: true });
  const { outputFiles, metafile } = await build({
    ...entries[name](from),
    outfile: file,
    write: false,
    metafile: true,
    absWorkingDir: root, // the metafile's input paths are relative to it
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // better-sqlite3's JavaScript is bundled; its addon is opened by path (src/sqlite.ts).
    external: ['bindings', 'pkcs11js', '@aws-sdk/*', '@smithy/*'],
    // No import() is left in a bundle: V8 loses a script's dynamic-import callback when it runs from a code
    // cache ("A dynamic import callback was not specified"), so import() of what stays outside becomes require().
    supported: { 'dynamic-import': false },
    // Each module's import.meta.url is the bundle's.
    define: { 'import.meta.url': '__kmsvolBundleUrl' },
    banner: { js: "const __kmsvolBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
    logLevel: 'warning',
  });
  // Its last line: a build id (its code cache names it) and the modules of dist/ it holds (bin/bundle.cjs runs dist/ when one is newer).
  const inputs = Object.keys(metafile.inputs)
    .map((f) => path.relative(DIST, path.resolve(root, f)))
    .filter((f) => !f.startsWith('..') && !path.isAbsolute(f))
    .sort();
  const text = outputFiles.find((o) => o.path === file).text;
  fs.writeFileSync(file, text + stampLine(randomBytes(ID_BYTES).toString('hex'), inputs));
}

// The code caches. V8 keeps the functions a run compiled: for the CLI, one
// `kms list-keys` in a temporary home (the start every command shares); for
// the card, its modules' loading (a card needs root and FUSE to go further).
const makeCache = (name, run) => `
  const fs = require('node:fs');
  const { loadBundle, BUNDLES, cacheOf, cacheFile } = require(${JSON.stringify(loader)});
  const b = loadBundle(${JSON.stringify(name)});
  if (!b) process.exit(3);
  const write = () => {
    const file = BUNDLES[${JSON.stringify(name)}].file;
    fs.writeFileSync(cacheOf(file), cacheFile(b.id, b.script.createCachedData()));
    fs.chmodSync(cacheOf(file), fs.statSync(file).mode & 0o777); // the CLI sets umask 077; the cache is as readable as its bundle
  };
  ${run}`;
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-bundle-'));
try {
  for (const [name, run] of [
    ['cli', "b.exports.main(['node', 'kmsvol', 'kms', 'list-keys']).then((rc) => { if (rc === 0) write(); process.exitCode = rc; });"],
    ['card', 'write();'],
  ]) {
    // The builder's own KMSVOL_* settings (a remote endpoint, a clock) stay out of it: the run is embedded, in its own home.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KMSVOL_')));
    const r = spawnSync(process.execPath, ['-e', makeCache(name, run)], { env: { ...env, KMSVOL_HOME: home }, encoding: 'utf8' });
    if (r.status !== 0) console.error(`kmsvol: no code cache for the ${name} bundle (it runs without one): ${r.stderr.trim()}`);
  }
} finally {
  fs.rmSync(home, { recursive: true, force: true });
}
