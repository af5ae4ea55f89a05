import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';

/**
 * A user who is not root gets one line that says what needs root, or what
 * to do instead: the demo (npm start) refuses before making anything, and a
 * home that cannot be created says to set KMSVOL_HOME. The KMS itself works
 * for them with a home of their own.
 */
const NOBODY = 65534;
function asNobody(args: string[], env: Record<string, string>) {
  const r = spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, BIN, ...args], {
    cwd: '/',
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stderr: r.stderr, lines: r.stderr.split('\n').filter((l) => l.trim() !== '') };
}

describe('not root', () => {
  it('the demo says in one line that it needs root, and makes nothing', () => {
    const tmp = tempHome('kmsvol-nobody-');
    fs.chmodSync(tmp, 0o777);
    const r = asNobody(['demo'], { HOME: '/nonexistent', TMPDIR: tmp });
    expect(r.code).toBe(255);
    expect(r.lines).toEqual(['kmsvol demo needs root: it attaches a volume through FUSE and a loop device. Run it as root (sudo npm start).']);
    expect(fs.readdirSync(tmp)).toEqual([]);
  });

  it('a home it may not create: one line naming the path, KMSVOL_HOME, and what needs root; with a home of its own the KMS works', () => {
    const r = asNobody(['kms', 'list-keys'], { HOME: '/nonexistent' });
    expect(r.code).toBe(255);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(
      /^kmsvol: EACCES: permission denied, mkdir '\/nonexistent\/\.kmsvol'\. .*set KMSVOL_HOME to a directory you own.*attaching a volume needs root/,
    );
    const own = tempHome('kmsvol-nobody-');
    fs.chownSync(own, NOBODY, NOBODY);
    const ok = asNobody(['kms', 'create-key', '--query', 'KeyMetadata.KeyState', '--output', 'text'], { KMSVOL_HOME: path.join(own, 'home') });
    expect(ok.code, ok.stderr).toBe(0);
  });
});
