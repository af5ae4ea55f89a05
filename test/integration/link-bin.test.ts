import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';

/**
 * `npm start` puts `kmsvol` on the PATH (scripts/link-bin.sh, its prestart),
 * as `npm link` does, so the README's commands work in any new shell. Here
 * the link goes into a directory of the test's (KMSVOL_BIN_DIR), never the
 * machine's /usr/local/bin.
 */
const SCRIPT = path.join(ROOT, 'scripts/link-bin.sh');
const link = (dir: string) => spawnSync('bash', [SCRIPT], { env: { ...process.env, KMSVOL_BIN_DIR: dir }, encoding: 'utf8' });

describe('kmsvol on the PATH', () => {
  it('npm start runs the link script', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.scripts.prestart).toContain('bash scripts/link-bin.sh');
  });

  it('links bin/kmsvol.js; a new shell with that PATH runs `kmsvol --version` from anywhere; a second run changes nothing', () => {
    const dir = path.join(tempHome('kmsvol-bin-'), 'bin');
    const first = link(dir);
    expect(first.status, first.stderr).toBe(0);
    expect(fs.readlinkSync(path.join(dir, 'kmsvol'))).toBe(path.join(ROOT, 'bin/kmsvol.js'));
    const before = fs.lstatSync(path.join(dir, 'kmsvol')).ino;
    const again = link(dir);
    expect(again).toMatchObject({ status: 0, stderr: '' });
    expect(fs.lstatSync(path.join(dir, 'kmsvol')).ino).toBe(before);
    const v = spawnSync(
      'env',
      ['-i', `PATH=${dir}:${path.dirname(process.execPath)}:/usr/bin:/bin`, 'bash', '--noprofile', '--norc', '-c', 'cd / && kmsvol --version'],
      {
        encoding: 'utf8',
      },
    );
    expect(v.status, v.stderr).toBe(0);
    expect(v.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('a link to another checkout is moved here; a file that is not a link is left alone, with a message', () => {
    const dir = tempHome('kmsvol-bin-');
    fs.symlinkSync('/nonexistent/kmsvol.js', path.join(dir, 'kmsvol'));
    expect(link(dir).status).toBe(0);
    expect(fs.readlinkSync(path.join(dir, 'kmsvol'))).toBe(path.join(ROOT, 'bin/kmsvol.js'));
    fs.rmSync(path.join(dir, 'kmsvol'));
    fs.writeFileSync(path.join(dir, 'kmsvol'), '#!/bin/sh\n');
    const r = link(dir);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('exists and is not a link; left as it is');
    expect(fs.readFileSync(path.join(dir, 'kmsvol'), 'utf8')).toBe('#!/bin/sh\n');
  });
});
