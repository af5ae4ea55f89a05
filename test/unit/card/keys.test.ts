import crypto from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { keyMatchesDigest, unwrapVerifiedKey } from '../../../src/card/keys.js';
import type { KmsClient } from '../../../src/kms/client/index.js';
import { GuardedKey } from '../../../src/native/index.js';
import type { KeyDigest, KmsvolToken } from '../../../src/volume/luks2.js';

/**
 * The LUKS2 key digest check at attach. The oracle is Node's own PBKDF2
 * (OpenSSL through another path), computed here as cryptsetup's
 * PBKDF2_digest_verify does: PBKDF2(hash, key, salt, iterations, digest length).
 */
const token: KmsvolToken = {
  volumeId: 'vol-0123456789abcdef0',
  keyArn: 'arn:aws:kms:us-east-1:000000000000:key/k',
  ciphertextBlob: 'AAAA',
  encryptionContext: { 'aws:ebs:id': 'vol-0123456789abcdef0' },
};

function digestOf(key: Buffer, length = 32, iterations = 1000): KeyDigest {
  const salt = crypto.randomBytes(32);
  return { hash: 'sha256', salt, digest: crypto.pbkdf2Sync(key, salt, iterations, length, 'sha256'), iterations };
}

/** A KMS whose Decrypt returns `plaintext` (a fresh copy each time, which the caller zeroes). */
function kmsReturning(plaintext: Buffer): KmsClient {
  return {
    region: 'us-east-1',
    send: async () => ({ Plaintext: Buffer.from(plaintext) }),
    as() {
      return this;
    },
    close() {},
  } as unknown as KmsClient;
}

afterEach(() => vi.restoreAllMocks());

describe('keyMatchesDigest: PBKDF2 of the guarded key against the header digest', () => {
  const raw = crypto.randomBytes(64);

  it.each([
    ['a 32-byte sha256 digest', 32, 1000],
    ['a 20-byte digest (LUKS1-compatible length)', 20, 1000],
    ['one iteration', 32, 1],
  ])('matches the key it was made from: %s', (_what, length, iterations) => {
    const key = GuardedKey.fromBuffer(Buffer.from(raw));
    try {
      expect(keyMatchesDigest(key, digestOf(raw, length, iterations))).toBe(true);
    } finally {
      key.zeroize();
    }
  });

  it('does not match another key, a changed digest byte, another salt or other iterations', () => {
    const key = GuardedKey.fromBuffer(Buffer.from(raw));
    try {
      const d = digestOf(raw);
      expect(keyMatchesDigest(key, digestOf(crypto.randomBytes(64)))).toBe(false);
      const flipped = Buffer.from(d.digest);
      flipped[31] ^= 1;
      expect(keyMatchesDigest(key, { ...d, digest: flipped })).toBe(false);
      expect(keyMatchesDigest(key, { ...d, salt: crypto.randomBytes(32) })).toBe(false);
      expect(keyMatchesDigest(key, { ...d, iterations: 999 })).toBe(false);
      expect(keyMatchesDigest(key, { ...d, hash: 'sha512' })).toBe(false);
    } finally {
      key.zeroize();
    }
  });
});

describe('unwrapVerifiedKey: the key is served only when it matches the header', () => {
  it('Precondition: the unwrapped key matches the header digest; it is returned, loaded and live', async () => {
    const raw = crypto.randomBytes(64);
    const key = await unwrapVerifiedKey(kmsReturning(raw), { token, digest: digestOf(raw) }, 'vol.img');
    expect(key.isZeroized).toBe(false);
    expect(key.info().loaded).toBe(true);
    key.zeroize();
  });

  it('a forged digest: InvalidVolume.Corrupt naming the volume and image, and the unwrapped key is zeroized', async () => {
    const raw = crypto.randomBytes(64);
    const zeroize = vi.spyOn(GuardedKey.prototype, 'zeroize');
    const forged = digestOf(crypto.randomBytes(64));
    const err = await unwrapVerifiedKey(kmsReturning(raw), { token, digest: forged }, 'vol.img').catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).name).toBe('InvalidVolume.Corrupt');
    expect((err as Error).message).toBe(
      'The data key KMS returned for vol-0123456789abcdef0 does not match the key digest of segment 0 in the LUKS2 header of vol.img: the header was altered or belongs to another volume. Restore the image from a backup or a snapshot.',
    );
    expect((err as Error).message).not.toContain(raw.toString('base64'));
    expect(zeroize).toHaveBeenCalledTimes(1);
    const zeroized = zeroize.mock.contexts[0] as GuardedKey;
    expect(zeroized.isZeroized).toBe(true);
  });
});
