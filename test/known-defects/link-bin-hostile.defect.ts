import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';

/**
 * breaker2: scripts/link-bin.sh puts root's `kmsvol` on the PATH as a link
 * to a checkout's bin/kmsvol.js. When another user may write that file or a
 * directory on its way (a checkout in a shared directory, a group-writable
 * clone), every later `kmsvol` root types runs what that user wrote. npm
 * link has the same hole; kmsvol's rule for root's paths (docs/threat-model.md,
 * "the path rule") refuses such paths elsewhere. Here a copy of the script in
 * a checkout whose bin/ is writable by all (0777, not sticky): it should
 * leave the PATH alone and say why; today it links it.
 */
describe('link-bin.sh and a checkout others may write', () => {
  it('a world-writable bin/ is not linked onto the PATH', () => {
    const checkout = tempHome('kmsvol-checkout-');
    fs.mkdirSync(path.join(checkout, 'scripts'));
    fs.copyFileSync(path.join(ROOT, 'scripts/link-bin.sh'), path.join(checkout, 'scripts/link-bin.sh'));
    fs.mkdirSync(path.join(checkout, 'bin'));
    fs.writeFileSync(path.join(checkout, 'bin/kmsvol.js'), '#!/usr/bin/env node\n', { mode: 0o755 });
    fs.chmodSync(path.join(checkout, 'bin'), 0o777);
    const dir = path.join(tempHome('kmsvol-bin-'), 'bin');
    const r = spawnSync('bash', [path.join(checkout, 'scripts/link-bin.sh')], { env: { ...process.env, KMSVOL_BIN_DIR: dir }, encoding: 'utf8' });
    expect(r.status).toBe(0); // never fails the start
    expect(fs.existsSync(path.join(dir, 'kmsvol'))).toBe(false);
    expect(r.stderr).toMatch(/writ/);
  });
});
