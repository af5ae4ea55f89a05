import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { onCleanup, tempHome } from '../helpers/home.js';
import { testUser } from '../helpers/users.js';

/** A directory another user can write in (like /tmp), and a target outside any home that must stay untouched. */
function sharedDir(): { dir: string; target: string } {
  const dir = tempHome('kmsvol-shared-');
  fs.chmodSync(dir, 0o1777);
  const outside = tempHome('kmsvol-outside-');
  return { dir, target: path.join(outside, 'probe-pwned') };
}

describe('kmsvol trusts no home another user prepared (finding 3 of issue 13)', () => {
  it('a home made by another user, with audit.log linked outside: refused, nothing written through the link', () => {
    const u = testUser();
    const { dir, target } = sharedDir();
    const home = path.join(dir, 'kv');
    expect(u.sh(`mkdir -m 0755 ${home} && ln -s ${target} ${home}/audit.log`).code).toBe(0);
    const r = kmsvol(home, ['kms', 'create-key']);
    expect(r.code).toBe(255);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`${home} is owned by uid ${u.uid}, not by you (uid 0)`);
    expect(r.stderr).toContain('export KMSVOL_HOME=$(mktemp -d)');
    expect(fs.existsSync(target)).toBe(false);
    expect(fs.readdirSync(home).sort()).toEqual(['audit.log']);
  });

  it('a root-owned home with audit.log linked outside: refused as a link, nothing written through it', () => {
    const { target } = sharedDir();
    const home = tempHome('kmsvol-linked-');
    fs.symlinkSync(target, path.join(home, 'audit.log'));
    // events and audit are written by create-key: the link must stop it before any key exists.
    const r = kmsvol(home, ['kms', 'create-key']);
    expect(r.code).toBe(255);
    expect(r.stderr).toContain(`${home}/audit.log is a symbolic link`);
    expect(fs.existsSync(target)).toBe(false);
  });

  it('root.key and kms.db planted by another user: refused, and the user cannot read what root would have made', () => {
    const u = testUser();
    const home = tempHome('kmsvol-planted-');
    // As if the home had once been group-writable, or restored from the user's backup.
    fs.writeFileSync(path.join(home, 'root.key'), Buffer.alloc(32, 7), { mode: 0o600 });
    fs.chownSync(path.join(home, 'root.key'), u.uid, u.gid);
    const r = kmsvol(home, ['kms', 'create-key']);
    expect(r.code).toBe(255);
    expect(r.stderr).toContain(`${home}/root.key is owned by uid ${u.uid}, not by you (uid 0)`);
    fs.rmSync(path.join(home, 'root.key'));

    fs.writeFileSync(path.join(home, 'kms.db'), '', { mode: 0o666 });
    fs.chownSync(path.join(home, 'kms.db'), u.uid, u.gid);
    const r2 = kmsvol(home, ['kms', 'create-key']);
    expect(r2.code).toBe(255);
    expect(r2.stderr).toContain(`${home}/kms.db is owned by uid ${u.uid}`);
    // Nothing was made with the planted files: no root key, the planted db still empty.
    expect(fs.existsSync(path.join(home, 'root.key'))).toBe(false);
    expect(fs.statSync(path.join(home, 'kms.db')).size).toBe(0);
  });

  it('a home writable by group or others is refused with the chmod to run', () => {
    const home = tempHome('kmsvol-open-');
    fs.chmodSync(home, 0o777);
    onCleanup(() => fs.chmodSync(home, 0o700));
    const r = kmsvol(home, ['kms', 'list-keys']);
    expect(r.code).toBe(255);
    expect(r.stderr).toContain(`${home} is writable by group or others (mode 777). Run: chmod go-w ${home}`);
  });

  it('a fresh home is created 0700 and every file in it 0600, owned by the caller', () => {
    const home = path.join(tempHome('kmsvol-fresh-'), 'kv');
    expect(kmsvol(home, ['kms', 'create-key']).code).toBe(0);
    expect(fs.statSync(home).mode & 0o777).toBe(0o700);
    for (const f of fs.readdirSync(home)) {
      const st = fs.lstatSync(path.join(home, f));
      expect(st.isSymbolicLink(), f).toBe(false);
      expect(st.mode & 0o777, f).toBe(st.isDirectory() ? 0o700 : 0o600);
    }
  });
});

describe('a refused root key leaves the home as it was (finding 8 of issue 24)', () => {
  /** Everything under `dir`, for before/after comparisons. */
  const listing = (dir: string): string[] => (fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }).map(String).sort() : ['(no home)']);

  it('KMSVOL_ROOT_KEY_FILE planted by another user or linked: refused (exit 255) before anything is made; a fresh home is not even created', () => {
    const u = testUser();
    const { dir } = sharedDir();
    const planted = path.join(dir, 'planted.key');
    expect(u.sh(`head -c 32 /dev/urandom > ${planted} && chmod 600 ${planted}`).code).toBe(0);
    const linked = path.join(tempHome('kmsvol-rk-'), 'linked.key');
    fs.symlinkSync(planted, linked);
    for (const [file, message] of [
      [planted, `${planted} is owned by uid ${u.uid}, not by you (uid 0)`],
      [linked, `${linked} is a symbolic link`],
    ] as const) {
      const home = path.join(tempHome('kmsvol-rkhome-'), 'kv');
      for (const cmd of [
        ['kms', 'create-key'],
        ['ec2', 'describe-volumes'],
      ]) {
        const r = kmsvol(home, cmd, { KMSVOL_ROOT_KEY_FILE: file });
        expect(r.code, r.stderr).toBe(255);
        expect(r.stderr).toContain(message);
        expect(listing(home), cmd.join(' ')).toEqual(['(no home)']);
      }
    }
  });

  it.each([
    ['holds 5 bytes', (f: string) => fs.writeFileSync(f, 'short', { mode: 0o600 }), 'holds 5 bytes; a root key is exactly 32 bytes'],
    [
      'is readable by others',
      (f: string) => {
        fs.writeFileSync(f, Buffer.alloc(32, 1));
        fs.chmodSync(f, 0o644);
      },
      'is readable by others (mode 644)',
    ],
  ])('Precondition: a root key file that %s is refused with no kms.db made; the existing home is left as it was', (_what, make, message) => {
    const home = tempHome('kmsvol-rkhome-');
    const file = path.join(tempHome('kmsvol-rk-'), 'root.key');
    make(file);
    // A home in use (its reserve made by an earlier command), without a KMS store yet.
    expect(kmsvol(home, ['ec2', 'describe-volumes']).code).toBe(0);
    fs.rmSync(path.join(home, 'kms.db'), { force: true });
    for (const f of ['kms.db-wal', 'kms.db-shm', 'root.key']) fs.rmSync(path.join(home, f), { force: true });
    const before = listing(home);
    for (const cmd of [
      ['kms', 'create-key'],
      ['kms', 'list-keys'],
      ['ec2', 'describe-volumes'],
    ]) {
      const r = kmsvol(home, cmd, { KMSVOL_ROOT_KEY_FILE: file });
      expect(r.code, r.stderr).toBe(254);
      expect(r.stderr).toContain(`(KMSInternalException) when calling the`);
      expect(r.stderr).toContain(`The root key file ${file} ${message}`);
      expect(listing(home), cmd.join(' ')).toEqual(before);
    }
    expect(before).not.toContain('kms.db');
  });
});
