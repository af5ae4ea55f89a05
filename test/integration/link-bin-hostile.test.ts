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
/** A checkout with this repository's link-bin.sh and a bin/kmsvol.js; `alter` makes it hostile; what the script did. */
function linkFrom(alter: (checkout: string) => void): { linked: boolean; stderr: string; status: number | null } {
  const checkout = tempHome('kmsvol-checkout-');
  fs.mkdirSync(path.join(checkout, 'scripts'));
  fs.copyFileSync(path.join(ROOT, 'scripts/link-bin.sh'), path.join(checkout, 'scripts/link-bin.sh'));
  fs.mkdirSync(path.join(checkout, 'bin'));
  fs.writeFileSync(path.join(checkout, 'bin/kmsvol.js'), '#!/usr/bin/env node\n', { mode: 0o755 });
  alter(checkout);
  const dir = path.join(tempHome('kmsvol-bin-'), 'bin');
  const r = spawnSync('bash', [path.join(checkout, 'scripts/link-bin.sh')], { env: { ...process.env, KMSVOL_BIN_DIR: dir }, encoding: 'utf8' });
  return { linked: fs.existsSync(path.join(dir, 'kmsvol')), stderr: r.stderr, status: r.status };
}

describe('link-bin.sh and a checkout others may write', () => {
  it('a world-writable bin/ is not linked onto the PATH', () => {
    const r = linkFrom((c) => fs.chmodSync(path.join(c, 'bin'), 0o777));
    expect(r.status).toBe(0); // never fails the start
    expect(r.linked).toBe(false);
    expect(r.stderr).toMatch(/bin is writable by group or others \(mode 777\).*chmod go-w/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('a group-writable kmsvol.js, or a checkout directory owned by another user, is not linked either', () => {
    const file = linkFrom((c) => fs.chmodSync(path.join(c, 'bin/kmsvol.js'), 0o775));
    expect(file.linked).toBe(false);
    expect(file.stderr).toMatch(/kmsvol\.js is writable by group or others/);
    const foreign = linkFrom((c) => fs.chownSync(c, 65534, 65534));
    expect(foreign.linked).toBe(false);
    expect(foreign.stderr).toMatch(/is owned by uid 65534, neither root nor you/);
  });

  it('a checkout only its owner may write is linked (a sticky directory such as /tmp on the way is fine)', () => {
    const r = linkFrom(() => {});
    expect(r.stderr).toMatch(/kmsvol is on the PATH/);
    expect(r.linked).toBe(true);
  });
});
