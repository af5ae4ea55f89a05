import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initSoftHsmToken, SOFTHSM2_MODULE, Token, type TokenConfig, TokenError } from '../../../src/hsm/token.js';

// One SoftHSM2 configuration per process (vitest forks one per file): one directory for the file.
let dir: string;
let cfg: TokenConfig;
const PIN = 'kmsuser-pin-1';

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-token-'));
  cfg = initSoftHsmToken({ dir, label: 'tok-a', soPin: 'so-pin-1', userPin: PIN });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(TokenError);
    return (e as TokenError).code;
  }
  throw new Error('expected a TokenError');
}

/** pkcs11-tool (OpenSC): an implementation of PKCS#11 that is not ours, on the same token. */
function pkcs11Tool(...args: string[]) {
  const r = spawnSync('pkcs11-tool', ['--module', SOFTHSM2_MODULE, '--token-label', 'tok-a', ...args], {
    env: { ...process.env, SOFTHSM2_CONF: cfg.softhsmConf },
    encoding: 'utf8',
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('PKCS#11 token over SoftHSM2', () => {
  it('initializes a token under the directory and finds it again (idempotent)', () => {
    expect(fs.readFileSync(path.join(dir, 'softhsm2.conf'), 'utf8')).toContain(path.join(dir, 'tokens'));
    expect(initSoftHsmToken({ dir, label: 'tok-a', soPin: 'xxxxxx', userPin: 'yyyyyy' })).toEqual(cfg);
    expect(pkcs11Tool('--list-token-slots').out).toContain('tok-a');
  });

  it('a wrong user PIN is INVALID_CREDENTIALS, also when another session of the process is logged in', () => {
    const t = Token.open(cfg);
    try {
      expect(code(() => t.login('wrong-pin'))).toBe('INVALID_CREDENTIALS');
      t.login(PIN);
      const u = Token.open(cfg);
      try {
        expect(code(() => u.login('wrong-pin'))).toBe('INVALID_CREDENTIALS');
        u.login(PIN);
      } finally {
        u.close();
      }
    } finally {
      t.close();
    }
  });

  it('an unknown token label is TOKEN_NOT_FOUND', () => {
    expect(code(() => Token.open({ ...cfg, tokenLabel: 'no-such-token' }))).toBe('TOKEN_NOT_FOUND');
  });

  it('generates a non-extractable sensitive AES-256 key that pkcs11-tool lists and cannot read', () => {
    const t = Token.open(cfg);
    try {
      t.login(PIN);
      const k = t.generateKey('key-1');
      expect(k.id.length).toBe(16);
      expect(t.findKey('key-1')?.id).toEqual(k.id);
      expect(t.ensureKey('key-1').id).toEqual(k.id);
      expect(t.findKey('key-absent')).toBeUndefined();
    } finally {
      t.close();
    }
    const list = pkcs11Tool('--login', '--pin', PIN, '--list-objects', '--type', 'secrkey');
    expect(list.status).toBe(0);
    const entry = list.out.split(/\n(?=Secret Key Object)/).find((b) => b.includes('label:      key-1'));
    expect(entry, list.out).toBeDefined();
    expect(entry).toMatch(/AES length 32/);
    expect(entry).toMatch(/Access:\s+.*sensitive/);
    expect(entry).toMatch(/never extractable/);
    expect(entry).not.toMatch(/Access:[^\n]*(?<!never )extractable/);
    const read = pkcs11Tool('--login', '--pin', PIN, '--read-object', '--type', 'secrkey', '--label', 'key-1');
    expect(read.status).not.toBe(0);
  });

  it('encrypts and decrypts with AES-GCM and AAD inside the token; any change is DECRYPT_FAILED', () => {
    const t = Token.open(cfg);
    try {
      t.login(PIN);
      const k = t.ensureKey('key-gcm');
      const aad = Buffer.from('context');
      const pt = Buffer.from('a data key of 32 bytes, padding!');
      const sealed = t.encrypt(k, pt, aad);
      expect(sealed.iv.length).toBe(12);
      expect(sealed.tag.length).toBe(16);
      expect(sealed.ciphertext.length).toBe(pt.length);
      expect(sealed.ciphertext.equals(pt)).toBe(false);
      expect(t.decrypt(k, sealed, aad)).toEqual(pt);
      expect(code(() => t.decrypt(k, sealed, Buffer.from('other')))).toBe('DECRYPT_FAILED');
      expect(code(() => t.decrypt(k, sealed))).toBe('DECRYPT_FAILED');
      const flipped = Buffer.from(sealed.ciphertext);
      flipped[0]! ^= 1;
      expect(code(() => t.decrypt(k, { ...sealed, ciphertext: flipped }, aad))).toBe('DECRYPT_FAILED');
      const other = t.ensureKey('key-gcm-2');
      expect(code(() => t.decrypt(other, sealed, aad))).toBe('DECRYPT_FAILED');
      // without AAD too
      const s2 = t.encrypt(k, pt);
      expect(t.decrypt(k, s2)).toEqual(pt);
    } finally {
      t.close();
    }
  });

  it('after close and without login, the key cannot be used', () => {
    const t = Token.open(cfg);
    t.login(PIN);
    const k = t.ensureKey('key-gcm');
    t.close();
    expect(code(() => t.encrypt(k, Buffer.from('x')))).toBe('NOT_LOGGED_IN');
    const u = Token.open(cfg);
    try {
      // logged out by the last close: a private key object is invisible before login
      expect(u.findKey('key-gcm')).toBeUndefined();
    } finally {
      u.close();
    }
  });

  it('a token another process made is found (SoftHSM2 reloaded); sessions open before report closed', () => {
    const t = Token.open(cfg);
    t.login(PIN);
    const r = spawnSync('softhsm2-util', ['--init-token', '--free', '--label', 'tok-b', '--so-pin', 'so-pin-2', '--pin', 'user-pin-2'], {
      env: { ...process.env, SOFTHSM2_CONF: cfg.softhsmConf },
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    const b = Token.open({ ...cfg, tokenLabel: 'tok-b' });
    try {
      b.login('user-pin-2');
      expect(t.isOpen).toBe(false);
      expect(code(() => t.ensureKey('k'))).toBe('NOT_LOGGED_IN');
    } finally {
      b.close();
      t.close();
    }
  });
});
