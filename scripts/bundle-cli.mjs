// Bundles the compiled CLI (dist/cli/main.js) into one CommonJS file,
// dist/cli/kmsvol.cjs, and makes its V8 code cache, dist/cli/kmsvol.cjs.cache,
// by running `kmsvol kms list-keys` once in a temporary home. bin/kmsvol.js
// runs the bundle (bin/bundle.cjs). Run by `npm ci` (prepare) and `npm test`
// (pretest), after tsc.
// Outside the bundle, loaded from node_modules when used: the native addons
// (better-sqlite3, pkcs11js) and the AWS SDK (remote KMS only). The compiled
// modules find the files they need through the package root (src/root.ts).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const out = path.join(root, 'dist/cli/kmsvol.cjs');
const cache = `${out}.cache`;
fs.rmSync(cache, { force: true });
await build({
  entryPoints: [path.join(root, 'dist/cli/main.js')],
  outfile: out,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['better-sqlite3', 'pkcs11js', '@aws-sdk/*', '@smithy/*'],
  // Each module's import.meta.url is the bundle's.
  define: { 'import.meta.url': '__kmsvolBundleUrl' },
  banner: { js: "const __kmsvolBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
});

// The code cache: V8 keeps the functions a call compiled; one `kms list-keys` compiles the start every command shares.
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-bundle-'));
try {
  const code = `
    const { loadBundle, CACHE } = require(${JSON.stringify(path.join(root, 'bin/bundle.cjs'))});
    const b = loadBundle();
    if (!b) process.exit(3);
    b.main(['node', 'kmsvol', 'kms', 'list-keys']).then((rc) => {
      const fs = require('node:fs');
      // the CLI sets umask 077; the cache is as readable as the bundle
      if (rc === 0) {
        fs.writeFileSync(CACHE, b.script.createCachedData());
        fs.chmodSync(CACHE, fs.statSync(${JSON.stringify(out)}).mode & 0o777);
      }
      process.exitCode = rc;
    });`;
  const r = spawnSync(process.execPath, ['-e', code], { env: { ...process.env, KMSVOL_HOME: home }, encoding: 'utf8' });
  if (r.status !== 0) console.error(`kmsvol: no code cache for the CLI bundle (it runs without one): ${r.stderr.trim()}`);
} finally {
  fs.rmSync(home, { recursive: true, force: true });
}
