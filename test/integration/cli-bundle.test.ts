import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, ROOT } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';

// Issue 26 (one CLI call <= 150 ms) and issue 30 (the cycle): bin/kmsvol.js and
// bin/card/main.js run the bundles that `npm ci` makes (scripts/bundle.mjs),
// never a stale one. Node's own module log (NODE_DEBUG=module,esm) shows which
// files a call loads: the bundle requires the SQLite addon as its parent, and
// the unbundled CLI loads dist/cli/main.js as an ES module.
const run = (bin: string, home: string) =>
  spawnSync(process.execPath, [bin, 'kms', 'list-keys'], { env: { ...process.env, KMSVOL_HOME: home, NODE_DEBUG: 'module,esm' }, encoding: 'utf8' });

const copies: string[] = [];
afterAll(() => {
  for (const c of copies) fs.rmSync(c, { recursive: true, force: true });
});

describe('the bundled CLI and card', () => {
  it('bin/kmsvol.js runs dist/cli/kmsvol.cjs, not the modules of dist/', () => {
    const r = run(BIN, tempHome());
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ Keys: [] });
    expect(r.stderr).toContain(`parent: ${path.join(ROOT, 'dist/cli/kmsvol.cjs')}`);
    expect(r.stderr).not.toMatch(/ESM \d+: .*dist\//);
  });

  it('the card bundle exports what bin/card/main.js runs, with its code cache accepted', () => {
    const { loadBundle } = createRequire(import.meta.url)(path.join(ROOT, 'bin/bundle.cjs'));
    const card = loadBundle('card');
    expect(typeof card?.exports.cardProcess).toBe('function');
    expect(card.script.cachedDataRejected).toBe(false);
  });

  it('a bundle older than dist/ (tsc run alone) is not run: the CLI runs dist/ itself', () => {
    // A copy of the package, so that the build the other tests use is left as it is.
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-bundle-stale-'));
    copies.push(copy);
    for (const d of ['bin', 'dist']) fs.cpSync(path.join(ROOT, d), path.join(copy, d), { recursive: true, preserveTimestamps: true });
    for (const f of ['package.json', 'native', 'node_modules']) fs.symlinkSync(path.join(ROOT, f), path.join(copy, f));
    const later = new Date(fs.statSync(path.join(copy, 'dist/cli/kmsvol.cjs')).mtimeMs + 5000);
    fs.utimesSync(path.join(copy, 'dist/cli/main.js'), later, later);
    const r = run(path.join(copy, 'bin/kmsvol.js'), tempHome());
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ Keys: [] });
    expect(r.stderr).toMatch(/ESM \d+: .*dist\/cli\/main\.js/);
    expect(r.stderr).not.toContain('kmsvol.cjs');
  });
});
