import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ServiceError } from '../../src/errors.js';
import { Kms } from '../../src/kms/kms.js';
import { onCleanup, tempHome } from '../helpers/home.js';
import { runs, SEED } from './counts.js';

/** What Decrypt may answer to a blob it did not make: typed KMS errors, nothing else. */
const ALLOWED = new Set(['InvalidCiphertextException', 'IncorrectKeyException', 'NotFoundException', 'ValidationException']);

/** A mutation of a blob: flipped bytes, a cut, an insertion or an extension. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bits: fc.integer({ min: 1, max: 255 }), count: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('random' as const), bytes: fc.uint8Array({ minLength: 0, maxLength: 300 }) }),
);

function mutate(blob: Buffer, m: fc.Arbitrary<unknown> extends never ? never : any): Buffer {
  const b = Buffer.from(blob);
  switch (m.kind) {
    case 'flip':
      for (let i = 0; i < m.count; i++) b[(m.at + i * 7) % b.length] ^= m.bits;
      return b;
    case 'cut':
      return b.subarray(0, m.at % b.length);
    case 'insert': {
      const at = m.at % (b.length + 1);
      return Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)]);
    }
    default:
      return Buffer.from(m.bytes);
  }
}

describe('fuzz: mutated ciphertext blobs', () => {
  it(`Decrypt of ${runs(20_000, 100_000)} mutated blobs gives only typed KMS errors, never other plaintext (seed ${SEED})`, () => {
    const home = tempHome();
    const kms = Kms.open({ home, audit: false });
    onCleanup(() => kms.close());
    const key = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    const plaintext = Buffer.from('fuzz plaintext');
    const ctx = { 'aws:ebs:id': 'vol-0123456789abcdef0' };
    const blob = Buffer.from(kms.invoke('Encrypt', { KeyId: key, Plaintext: plaintext, EncryptionContext: ctx }).CiphertextBlob);
    fc.assert(
      fc.property(mutation, fc.boolean(), (m, withKeyId) => {
        const bad = mutate(blob, m);
        try {
          const r = kms.invoke('Decrypt', { CiphertextBlob: bad, EncryptionContext: ctx, ...(withKeyId ? { KeyId: key } : {}) });
          // Only the blob itself (a mutation that changed nothing) decrypts, and to the plaintext.
          return bad.equals(blob) && Buffer.from(r.Plaintext).equals(plaintext);
        } catch (e) {
          return e instanceof ServiceError && ALLOWED.has(e.name);
        }
      }),
      { numRuns: runs(20_000, 100_000), seed: SEED },
    );
    expect(kms.invoke('Decrypt', { CiphertextBlob: blob, EncryptionContext: ctx }).Plaintext.toString()).toBe('fuzz plaintext');
  }, 600_000);
});
