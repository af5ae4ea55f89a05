import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';

/**
 * Adversarial review (breaker2). scripts/link-bin.sh checks the owners and
 * modes of the PHYSICAL path of bin/kmsvol.js (realpath -e), but the link it
 * makes points to the LOGICAL path ($root from `cd …/.. && pwd`, which keeps
 * symbolic links). Run through a path that crosses a symlink in a directory
 * another user owns (here: /…/nobody-owned/kmsvol -> the root-owned
 * checkout), the check passes and /usr/local/bin/kmsvol then points through
 * that user's symlink: the user retargets it, and root's next `kmsvol` runs
 * their code. The link must name the path that was checked (or refuse).
 */
describe('link-bin.sh through a symlinked checkout path', () => {
  it('links the checked (physical) path, never a path through another user’s symlink', () => {
    const checkout = tempHome('kmsvol-checkout-');
    fs.mkdirSync(path.join(checkout, 'scripts'));
    fs.copyFileSync(path.join(ROOT, 'scripts/link-bin.sh'), path.join(checkout, 'scripts/link-bin.sh'));
    fs.mkdirSync(path.join(checkout, 'bin'));
    fs.writeFileSync(path.join(checkout, 'bin/kmsvol.js'), '#!/usr/bin/env node\n', { mode: 0o755 });
    // Another user's directory (nobody, 65534), holding a link to the checkout.
    const theirs = path.join(tempHome('kmsvol-theirs-'), 'nobody-owned');
    fs.mkdirSync(theirs, { mode: 0o755 });
    fs.symlinkSync(checkout, path.join(theirs, 'kmsvol'));
    fs.chownSync(theirs, 65534, 65534);
    fs.lchownSync(path.join(theirs, 'kmsvol'), 65534, 65534);
    const dir = path.join(tempHome('kmsvol-bin-'), 'bin');
    const r = spawnSync('bash', [path.join(theirs, 'kmsvol/scripts/link-bin.sh')], {
      env: { ...process.env, KMSVOL_BIN_DIR: dir },
      encoding: 'utf8',
      cwd: '/',
    });
    expect(r.status).toBe(0);
    const link = path.join(dir, 'kmsvol');
    if (fs.existsSync(link)) expect(fs.readlinkSync(link)).toBe(path.join(fs.realpathSync(checkout), 'bin/kmsvol.js'));
  });
});
