import { execFileSync, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GuardedKey, xtsEncrypt } from '../../../src/native/index.js';
import { ROOT } from '../../helpers/cli.js';
import { onCleanup, tempHome } from '../../helpers/home.js';
import { fileContains } from '../../helpers/scan.js';

const CHILD = path.join(ROOT, 'test/helpers/guarded-child.mjs');

function keyFile(): { file: string; key: Buffer } {
  const dir = tempHome('kmsvol-guard-');
  const key = crypto.randomBytes(64);
  const file = path.join(dir, 'key.bin');
  fs.writeFileSync(file, key, { mode: 0o600 });
  return { file, key };
}

/** Start a child holding a loaded key; resolves with its key info once ready. */
async function holder(file: string, use: boolean) {
  const p = spawn(process.execPath, [CHILD, 'hold', file, ...(use ? ['use'] : [])], { stdio: ['pipe', 'pipe', 'inherit'] });
  onCleanup(() => p.kill('SIGKILL'));
  const line: string = await new Promise((resolve, reject) => {
    p.stdout.once('data', (d) => resolve(String(d)));
    p.once('exit', (code) => reject(new Error(`holder exited ${code}`)));
  });
  return { proc: p, info: JSON.parse(line) as { pid: number; address: number; backend: string } };
}

function smapsEntry(pid: number, address: number): string {
  const smaps = fs.readFileSync(`/proc/${pid}/smaps`, 'utf8');
  const start = address.toString(16).padStart(12, '0');
  const at = smaps.search(new RegExp(`^0*${start}-`, 'm'));
  expect(at, 'key mapping present in smaps').toBeGreaterThanOrEqual(0);
  return smaps.slice(at, smaps.indexOf('VmFlags', at) + 80);
}

describe('guarded key memory', () => {
  it('a child that touches the no-access key dies by SIGSEGV', () => {
    const { file } = keyFile();
    const r = spawnSync(process.execPath, [CHILD, 'touch', file], { encoding: 'utf8' });
    expect(r.signal).toBe('SIGSEGV');
    expect(r.stdout).not.toContain('value');
  });

  it('the key pages are locked, excluded from core dumps and wiped on fork', async () => {
    const { file } = keyFile();
    const { proc, info } = await holder(file, false);
    const entry = smapsEntry(info.pid, info.address);
    expect(entry).toMatch(/^Locked:\s+4 kB/m);
    const flags = /VmFlags:(.*)/.exec(entry)![1]!.trim().split(/\s+/);
    expect(flags).toEqual(expect.arrayContaining(['lo', 'dd', 'wf']));
    // PROT_NONE while not being keyed: no r/w/x in the permissions column.
    expect(entry.split('\n')[0]).toMatch(/ ---p /);
    proc.stdin.end();
  });

  for (const use of [false, true]) {
    it(`a gcore image of a process holding a loaded key${use ? ' in use by the cipher' : ''} does not contain the key`, async () => {
      const { file, key } = keyFile();
      const { proc, info } = await holder(file, use);
      const dir = tempHome('kmsvol-core-');
      execFileSync('gcore', ['-o', path.join(dir, 'core'), String(info.pid)], { stdio: 'ignore', timeout: 120_000 });
      const core = path.join(dir, `core.${info.pid}`);
      // Positive control: the scan finds what is in the image (the child's own argv).
      expect(fileContains(core, Buffer.from(CHILD))).toBe(true);
      for (const part of [key, key.subarray(0, 32), key.subarray(32), key.subarray(0, 16), key.subarray(16, 32), key.subarray(32, 48), key.subarray(48)]) {
        expect(fileContains(core, part), `key bytes found in the core (backend ${info.backend})`).toBe(false);
      }
      proc.stdin.end();
    });
  }

  it('after zeroize(), use throws KeyZeroized and the JS view is detached', () => {
    const key = GuardedKey.fromBuffer(crypto.randomBytes(64));
    const view = key.unsafeView();
    expect(view.byteLength).toBe(64);
    key.zeroize();
    expect(key.isZeroized).toBe(true);
    expect(view.byteLength).toBe(0);
    const b = Buffer.alloc(4096);
    expect(() => xtsEncrypt(key, b, b, 0, 4096)).toThrow(expect.objectContaining({ name: 'KeyZeroized' }));
    expect(() => key.load(crypto.randomBytes(64))).toThrow(expect.objectContaining({ name: 'KeyZeroized' }));
    key.zeroize(); // idempotent
  });

  it('writeInPlace loads a key straight into the guarded pages', () => {
    const raw = crypto.randomBytes(64);
    const key = new GuardedKey(64);
    key.writeInPlace((v) => v.set(raw));
    const a = Buffer.alloc(4096, 3);
    const b = Buffer.alloc(4096);
    xtsEncrypt(key, a, b, 7, 4096);
    const ref = GuardedKey.fromBuffer(Buffer.from(raw));
    const c = Buffer.alloc(4096);
    xtsEncrypt(ref, a, c, 7, 4096);
    expect(b.equals(c)).toBe(true);
    key.zeroize();
    ref.zeroize();
  });

  it('every backend (vaes, aesni, openssl) gives the same ciphertext', () => {
    const script = `import('${path.join(ROOT, 'dist/native/index.js')}').then((m) => {
      const k = m.GuardedKey.fromBuffer(Buffer.alloc(64, 0).map((_, i) => i + 1));
      const b = Buffer.alloc(8192, 0).map((_, i) => i & 255);
      m.xtsEncrypt(k, b, b, 2 ** 33, 4096);
      process.stdout.write(k.info().backend + ' ' + require('crypto').createHash('sha256').update(b).digest('hex'));
    })`;
    const run = (b: string) => spawnSync(process.execPath, ['-e', script], { env: { ...process.env, KMSVOL_XTS_BACKEND: b }, encoding: 'utf8' });
    // Each backend the CPU has is the one used when asked for; one it lacks falls back to the best it has.
    const flags = new Set(/^flags\s*:(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))![1]!.trim().split(/\s+/));
    const best = flags.has('aes') && flags.has('vaes') && flags.has('avx2') ? 'vaes' : flags.has('aes') ? 'aesni' : 'openssl';
    const has = { vaes: best === 'vaes', aesni: best !== 'openssl', openssl: true };
    const out = (['vaes', 'aesni', 'openssl'] as const).map((b) => {
      const [name, digest] = run(b).stdout.split(' ');
      expect(name, `KMSVOL_XTS_BACKEND=${b}`).toBe(has[b] ? b : best);
      return digest;
    });
    expect(out[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(new Set(out).size).toBe(1);
    // A name that is not a backend is refused with the list, not silently replaced.
    const bad = run('aes-ni');
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('KMSVOL_XTS_BACKEND=aes-ni is not a backend; use one of vaes, aesni, openssl');
  });
});
