import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';

/**
 * Adversarial review (breaker2). scripts/link-bin.sh refuses to link a
 * checkout whose bin/kmsvol.js, or a directory on its way, others may write.
 * But bin/kmsvol.js is a five-line loader: what root's `kmsvol` runs is
 * dist/cli/kmsvol.cjs with its V8 code cache dist/cli/kmsvol.cjs.cache
 * (bin/bundle.cjs; V8 checks a cache's source length and flags, not its
 * content), or dist/cli/main.js, plus node_modules/ and native/build/. None
 * of them is checked: a checkout whose dist/ (or the cache file) another user
 * may write is linked, and that user's bytecode then runs as root.
 */
function linkFrom(alter: (checkout: string) => void): { linked: boolean; stderr: string; status: number | null } {
  const checkout = tempHome('kmsvol-checkout-');
  fs.mkdirSync(path.join(checkout, 'scripts'));
  fs.copyFileSync(path.join(ROOT, 'scripts/link-bin.sh'), path.join(checkout, 'scripts/link-bin.sh'));
  fs.mkdirSync(path.join(checkout, 'bin'));
  fs.writeFileSync(path.join(checkout, 'bin/kmsvol.js'), '#!/usr/bin/env node\n', { mode: 0o755 });
  fs.writeFileSync(path.join(checkout, 'bin/bundle.cjs'), '', { mode: 0o644 });
  fs.mkdirSync(path.join(checkout, 'dist/cli'), { recursive: true, mode: 0o755 });
  fs.writeFileSync(path.join(checkout, 'dist/cli/kmsvol.cjs'), '', { mode: 0o644 });
  fs.writeFileSync(path.join(checkout, 'dist/cli/kmsvol.cjs.cache'), '', { mode: 0o644 });
  alter(checkout);
  const dir = path.join(tempHome('kmsvol-bin-'), 'bin');
  const r = spawnSync('bash', [path.join(checkout, 'scripts/link-bin.sh')], { env: { ...process.env, KMSVOL_BIN_DIR: dir }, encoding: 'utf8' });
  return { linked: fs.existsSync(path.join(dir, 'kmsvol')), stderr: r.stderr, status: r.status };
}

describe('link-bin.sh checks what bin/kmsvol.js loads, not only the file itself', () => {
  it('a world-writable dist/cli/ (the bundle and its code cache) is not linked onto the PATH', () => {
    const r = linkFrom((c) => fs.chmodSync(path.join(c, 'dist/cli'), 0o777));
    expect(r.status).toBe(0);
    expect(r.linked).toBe(false);
    expect(r.stderr).toMatch(/writable by group or others/);
  });

  it('a group-writable code cache is not linked onto the PATH', () => {
    const r = linkFrom((c) => fs.chmodSync(path.join(c, 'dist/cli/kmsvol.cjs.cache'), 0o664));
    expect(r.linked).toBe(false);
    expect(r.stderr).toMatch(/kmsvol\.cjs\.cache is writable by group or others/);
  });

  it('the control: the same checkout, only its owner may write, is linked', () => {
    expect(linkFrom(() => {}).linked).toBe(true);
  });
});
