import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { onCleanup, tempHome } from '../helpers/home.js';

/**
 * Adversarial review (breaker2). bin/bundle.cjs promises "never stale": a
 * bundle older than the tsc output it was made from is not run. But it
 * compares the bundle with ONE file, dist/cli/main.js. When only another
 * module is re-emitted -- `tsc --watch` (it writes only the files whose
 * output changed), an editor's compile-on-save, a hand-patched dist/ file --
 * main.js keeps its old mtime and the stale bundle runs: a fix made to
 * src/kms/*.ts and compiled is silently not what `kmsvol` executes.
 * Here: a copy of the package whose dist/kms/kms.js is newer than the
 * bundle; the CLI must run dist/ (as it does when dist/cli/main.js is newer).
 */
describe('the bundle is stale when any module it was made from is newer', () => {
  it('a dist/kms/kms.js newer than dist/cli/kmsvol.cjs makes the CLI run dist/ itself', () => {
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-bundle-stale2-'));
    onCleanup(() => fs.rmSync(copy, { recursive: true, force: true }));
    for (const d of ['bin', 'dist']) fs.cpSync(path.join(ROOT, d), path.join(copy, d), { recursive: true, preserveTimestamps: true });
    for (const f of ['package.json', 'native', 'node_modules']) fs.symlinkSync(path.join(ROOT, f), path.join(copy, f));
    const later = new Date(fs.statSync(path.join(copy, 'dist/cli/kmsvol.cjs')).mtimeMs + 5000);
    fs.utimesSync(path.join(copy, 'dist/kms/kms.js'), later, later);
    const r = spawnSync(process.execPath, [path.join(copy, 'bin/kmsvol.js'), 'kms', 'list-keys'], {
      env: { ...process.env, KMSVOL_HOME: tempHome(), NODE_DEBUG: 'module,esm' },
      encoding: 'utf8',
    });
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    expect(r.stderr).not.toContain('kmsvol.cjs');
  });
});
