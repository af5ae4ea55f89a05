import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { errorName, testKms } from '../../helpers/home.js';

/**
 * The key-material members of botocore's current KMS model: KeyMaterialId in
 * the responses that use a symmetric key's material, KeyMaterialState and
 * IncludeKeyMaterial in ListKeyRotations, DryRunModifiers IGNORE_CIPHERTEXT,
 * and KeyMaterialId in ImportKeyMaterial and DeleteImportedKeyMaterial.
 */
const HEX64 = /^[0-9a-f]{64}$/;
const SESSION = 'arn:aws:sts::000000000000:assumed-role/r/s';

function rotatedKey() {
  const t = testKms();
  const id = t.kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
  const first = t.kms.invoke('DescribeKey', { KeyId: id }).KeyMetadata.CurrentKeyMaterialId!;
  const old = t.kms.invoke('Encrypt', { KeyId: id, Plaintext: Buffer.from('before') }).CiphertextBlob;
  t.clock.advance(1000);
  t.kms.invoke('RotateKeyOnDemand', { KeyId: id });
  const second = t.kms.invoke('DescribeKey', { KeyId: id }).KeyMetadata.CurrentKeyMaterialId!;
  return { ...t, id, first, second, old };
}

describe('KeyMaterialId in responses', () => {
  it('names the material that sealed or opened the data: Decrypt, ReEncrypt, GenerateDataKey*, GenerateDataKeyPair*', () => {
    const { kms, id, first, second, old } = rotatedKey();
    expect(first).toMatch(HEX64);
    expect(second).toMatch(HEX64);
    expect(second).not.toBe(first);
    expect(kms.invoke('Decrypt', { CiphertextBlob: old }).KeyMaterialId).toBe(first);
    const re = kms.invoke('ReEncrypt', { CiphertextBlob: old, DestinationKeyId: id });
    expect(re.SourceKeyMaterialId).toBe(first);
    expect(re.DestinationKeyMaterialId).toBe(second);
    expect(kms.invoke('Decrypt', { CiphertextBlob: re.CiphertextBlob }).KeyMaterialId).toBe(second);
    expect(kms.invoke('GenerateDataKey', { KeyId: id, KeySpec: 'AES_256' }).KeyMaterialId).toBe(second);
    expect(kms.invoke('GenerateDataKeyWithoutPlaintext', { KeyId: id, NumberOfBytes: 16 }).KeyMaterialId).toBe(second);
    expect(kms.invoke('GenerateDataKeyPair', { KeyId: id, KeyPairSpec: 'ECC_NIST_P256' }).KeyMaterialId).toBe(second);
    expect(kms.invoke('GenerateDataKeyPairWithoutPlaintext', { KeyId: id, KeyPairSpec: 'ECC_NIST_P256' }).KeyMaterialId).toBe(second);
  });

  it('is absent where the key is asymmetric, as AWS gives it for symmetric keys only', () => {
    const { kms } = testKms();
    const rsa = kms.invoke('CreateKey', { KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' }).KeyMetadata.KeyId;
    const sym = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    const ct = kms.invoke('Encrypt', { KeyId: rsa, Plaintext: Buffer.from('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }).CiphertextBlob;
    expect(kms.invoke('Decrypt', { KeyId: rsa, CiphertextBlob: ct, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' })).not.toHaveProperty('KeyMaterialId');
    const re = kms.invoke('ReEncrypt', { CiphertextBlob: ct, SourceKeyId: rsa, SourceEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', DestinationKeyId: sym });
    expect(re).not.toHaveProperty('SourceKeyMaterialId');
    expect(re.DestinationKeyMaterialId).toMatch(HEX64);
  });
});

describe('ListKeyRotations', () => {
  it('marks the current material CURRENT, the others NON_CURRENT; ALL_KEY_MATERIAL adds the original material without a rotation date', () => {
    const { kms, id, first, second } = rotatedKey();
    const rotations = kms.invoke('ListKeyRotations', { KeyId: id }).Rotations!;
    expect(rotations.map((r) => [r.KeyMaterialId, r.KeyMaterialState, r.RotationType])).toEqual([[second, 'CURRENT', 'ON_DEMAND']]);
    const all = kms.invoke('ListKeyRotations', { KeyId: id, IncludeKeyMaterial: 'ALL_KEY_MATERIAL' }).Rotations!;
    expect(all.map((r) => [r.KeyMaterialId, r.KeyMaterialState, r.RotationType])).toEqual([
      [first, 'NON_CURRENT', undefined],
      [second, 'CURRENT', 'ON_DEMAND'],
    ]);
    expect(all[0]).not.toHaveProperty('RotationDate');
    expect(kms.invoke('ListKeyRotations', { KeyId: id, IncludeKeyMaterial: 'ROTATIONS_ONLY' }).Rotations).toEqual(rotations);
    expect(errorName(() => kms.invoke('ListKeyRotations', { KeyId: id, IncludeKeyMaterial: 'SOME' }))).toBe('ValidationException');
  });
});

describe('DryRunModifiers IGNORE_CIPHERTEXT', () => {
  it("a DryRun of Decrypt checks the named key's permission and state, not the ciphertext", () => {
    const { kms } = testKms();
    const id = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    const junk = crypto.randomBytes(64);
    const ignore = { CiphertextBlob: junk, KeyId: id, DryRun: true, DryRunModifiers: ['IGNORE_CIPHERTEXT'] };
    expect(errorName(() => kms.invoke('Decrypt', ignore))).toBe('DryRunOperationException');
    // Without the modifier, the dry run reads the ciphertext.
    expect(errorName(() => kms.invoke('Decrypt', { CiphertextBlob: junk, KeyId: id, DryRun: true }))).toBe('InvalidCiphertextException');
    // The permission is still checked: a role session the key policy does not cover is refused.
    expect(errorName(() => kms.invokeAs(SESSION, 'Decrypt', ignore))).toBe('AccessDeniedException');
    expect(errorName(() => kms.invoke('Decrypt', { ...ignore, KeyId: undefined }))).toBe('ValidationException');
    expect(errorName(() => kms.invoke('Decrypt', { ...ignore, DryRunModifiers: ['OTHER'] }))).toBe('ValidationException');
    kms.invoke('DisableKey', { KeyId: id });
    expect(errorName(() => kms.invoke('Decrypt', ignore))).toBe('DisabledException');
  });

  it('a DryRun of ReEncrypt checks the source key named by SourceKeyId', () => {
    const { kms } = testKms();
    const src = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    const dest = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    const req = { CiphertextBlob: crypto.randomBytes(64), DestinationKeyId: dest, DryRun: true, DryRunModifiers: ['IGNORE_CIPHERTEXT'] };
    expect(errorName(() => kms.invoke('ReEncrypt', { ...req, SourceKeyId: src }))).toBe('DryRunOperationException');
    expect(errorName(() => kms.invoke('ReEncrypt', req))).toBe('ValidationException');
    kms.invoke('DisableKey', { KeyId: src });
    expect(errorName(() => kms.invoke('ReEncrypt', { ...req, SourceKeyId: src }))).toBe('DisabledException');
  });
});
