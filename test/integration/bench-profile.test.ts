// bench/profile.sh runs as root and removes its work directory at start and
// at exit. A work directory that already exists is not its own: another user
// may have made it (the default was a fixed name in world-writable /var/tmp)
// to have root write through it, or it is a directory of the user's. The
// script must refuse it before touching it. A stub `node` first on PATH makes
// the script fail at its first CLI call, so a broken build shows the damage
// (the planted directory gone) without attaching anything.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { onCleanup } from '../helpers/home.js';

function scratch(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-profile-test-'));
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  const stubs = path.join(dir, 'bin');
  fs.mkdirSync(stubs);
  fs.writeFileSync(path.join(stubs, 'node'), '#!/bin/sh\necho "stub node: $*" >&2\nexit 1\n', { mode: 0o755 });
  return dir;
}

const profile = (dir: string, work: string | undefined) =>
  spawnSync('bash', [path.join(ROOT, 'bench/profile.sh'), 'randread', '1', ...(work === undefined ? [] : [work])], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${path.join(dir, 'bin')}:${process.env.PATH}` },
    timeout: 60_000,
  });

describe('bench/profile.sh work directory', () => {
  it('refuses a WORKDIR that already exists, leaving it and what it holds alone', () => {
    const dir = scratch();
    const planted = path.join(dir, 'planted');
    fs.mkdirSync(planted);
    fs.writeFileSync(path.join(planted, 'keep'), 'not the script’s');
    const r = profile(dir, planted);
    expect(r.status, r.stderr).not.toBe(0);
    expect(r.stderr).toMatch(/exists/);
    expect(fs.readFileSync(path.join(planted, 'keep'), 'utf8')).toBe('not the script’s');
    expect(fs.readdirSync(planted)).toEqual(['keep']);
  });

  it('refuses a WORKDIR that is a symbolic link, and does not follow it', () => {
    const dir = scratch();
    const target = path.join(dir, 'target');
    fs.mkdirSync(target, { mode: 0o755 });
    const link = path.join(dir, 'link');
    fs.symlinkSync(target, link);
    const r = profile(dir, link);
    expect(r.status, r.stderr).not.toBe(0);
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.statSync(target).mode & 0o777).toBe(0o755);
    expect(fs.readdirSync(target)).toEqual([]);
  });

  it('without WORKDIR makes a fresh private directory of its own and removes it at exit', () => {
    const dir = scratch();
    const before = new Set(fs.readdirSync('/var/tmp'));
    const r = profile(dir, undefined);
    expect(r.status).not.toBe(0); // the stub node fails the first CLI call
    expect(r.stderr).toMatch(/stub node/);
    expect(fs.readdirSync('/var/tmp').filter((n) => n.startsWith('kmsvol-profile') && !before.has(n))).toEqual([]);
  });

  it('a second Ctrl-C while it cleans up does not cut the cleanup short: the work directory is still removed', async () => {
    const dir = scratch();
    const work = path.join(dir, 'work');
    const inDetach = path.join(dir, 'in-detach');
    // A CLI that makes a key and a volume, fails to attach, and takes a moment to detach (announcing it).
    fs.writeFileSync(
      path.join(dir, 'bin', 'node'),
      `#!/bin/sh
case "$*" in
  *create-key*) echo key-1 ;;
  *create-volume*) echo vol-1 ;;
  *detach-volume*) : >"${inDetach}"; sleep 1 ;;
  *) exit 1 ;;
esac
`,
      { mode: 0o755 },
    );
    const child = spawn('bash', [path.join(ROOT, 'bench/profile.sh'), 'randread', '1', work], {
      env: { ...process.env, PATH: `${path.join(dir, 'bin')}:${process.env.PATH}` },
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const deadline = Date.now() + 30_000;
    while (!fs.existsSync(inDetach) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(fs.existsSync(inDetach)).toBe(true);
    child.kill('SIGINT'); // the second Ctrl-C, while the cleanup waits for detach-volume
    await exited;
    expect(fs.existsSync(work)).toBe(false);
  });

  it('refuses, before attaching anything, a WORKDIR on a file system without disk counters (tmpfs), and removes the directory it made', () => {
    const dir = scratch();
    const fsdir = path.join(dir, 'tmpfs');
    fs.mkdirSync(fsdir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', fsdir]);
    onCleanup(() => spawnSync('umount', [fsdir]));
    const work = path.join(fsdir, 'work');
    const r = profile(dir, work);
    expect(r.status).not.toBe(0);
    expect(r.stderr).not.toMatch(/stub node/); // no CLI call was made
    expect(r.stderr).toMatch(/disk/);
    expect(fs.existsSync(work)).toBe(false);
  });
});
