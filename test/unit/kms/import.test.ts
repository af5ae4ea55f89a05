import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DAY, errorName, testKms } from '../../helpers/home.js';

/** Wrap material as a user does for AWS (here with node:crypto; the CLI test uses openssl pkeyutl). */
function wrap(publicKeyDer: Uint8Array, material: Buffer, algorithm: string): Buffer {
  const key = crypto.createPublicKey({ key: Buffer.from(publicKeyDer), format: 'der', type: 'spki' });
  if (algorithm === 'RSA_AES_KEY_WRAP_SHA_256') {
    const aes = crypto.randomBytes(32);
    const c = crypto.createCipheriv('id-aes256-wrap-pad', aes, Buffer.from('a65959a6', 'hex'));
    const wrappedMaterial = Buffer.concat([c.update(material), c.final()]);
    return Buffer.concat([crypto.publicEncrypt({ key, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, aes), wrappedMaterial]);
  }
  return crypto.publicEncrypt(
    { key, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: algorithm === 'RSAES_OAEP_SHA_1' ? 'sha1' : 'sha256' },
    material,
  );
}

function externalKey() {
  const t = testKms();
  const md = t.kms.invoke('CreateKey', { Origin: 'EXTERNAL', Description: 'BYOK' }).KeyMetadata;
  expect(md).toMatchObject({ Origin: 'EXTERNAL', KeyState: 'PendingImport', Enabled: false });
  const params = (algorithm = 'RSAES_OAEP_SHA_256', spec = 'RSA_2048') =>
    t.kms.invoke('GetParametersForImport', { KeyId: md.KeyId, WrappingAlgorithm: algorithm, WrappingKeySpec: spec });
  const importMaterial = (material: Buffer, extra: Record<string, unknown> = {}, algorithm = 'RSAES_OAEP_SHA_256') => {
    const p = params(algorithm);
    return t.kms.invoke('ImportKeyMaterial', {
      KeyId: md.KeyId,
      ImportToken: p.ImportToken,
      EncryptedKeyMaterial: wrap(p.PublicKey, material, algorithm),
      ...extra,
    });
  };
  return { ...t, id: md.KeyId, params, importMaterial };
}

describe('imported key material', () => {
  it('GetParametersForImport gives an RSA public key of the asked size and a token valid for 24 hours', () => {
    const { kms, id, params, clock } = externalKey();
    for (const [spec, bits] of [
      ['RSA_2048', 2048],
      ['RSA_3072', 3072],
    ] as const) {
      const p = params('RSAES_OAEP_SHA_256', spec);
      expect(p.KeyId).toBe(`arn:aws:kms:us-east-1:000000000000:key/${id}`);
      expect(crypto.createPublicKey({ key: Buffer.from(p.PublicKey), format: 'der', type: 'spki' }).asymmetricKeyDetails?.modulusLength).toBe(bits);
      expect(p.ParametersValidTo.getTime()).toBe(clock.now().getTime() + DAY);
    }
    expect(errorName(() => params('RSAES_PKCS1_V1_5'))).toBe('UnsupportedOperationException');
    expect(errorName(() => params('RSAES_OAEP_SHA_256', 'RSA_1024'))).toBe('ValidationException');
    const own = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    expect(errorName(() => kms.invoke('GetParametersForImport', { KeyId: own, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' }))).toBe(
      'UnsupportedOperationException',
    );
  });

  it('imports with each wrapping algorithm; the key works and Describe shows the expiry', () => {
    for (const algorithm of ['RSAES_OAEP_SHA_256', 'RSAES_OAEP_SHA_1', 'RSA_AES_KEY_WRAP_SHA_256']) {
      const { kms, id, importMaterial, clock } = externalKey();
      const validTo = new Date(clock.now().getTime() + 30 * DAY);
      const r = importMaterial(crypto.randomBytes(32), { ValidTo: validTo, ExpirationModel: 'KEY_MATERIAL_EXPIRES' }, algorithm);
      expect(r.KeyMaterialId).toMatch(/^[0-9a-f]+$/);
      expect(kms.invoke('DescribeKey', { KeyId: id }).KeyMetadata).toMatchObject({
        KeyState: 'Enabled',
        ExpirationModel: 'KEY_MATERIAL_EXPIRES',
        ValidTo: validTo,
      });
      const blob = kms.invoke('Encrypt', { KeyId: id, Plaintext: Buffer.from(algorithm) }).CiphertextBlob;
      expect(kms.invoke('Decrypt', { CiphertextBlob: blob }).Plaintext.toString()).toBe(algorithm);
    }
  });

  it('expired material puts the key in PendingImport; only the same material comes back, and old ciphertexts decrypt again', () => {
    const { kms, id, importMaterial, clock } = externalKey();
    const material = crypto.randomBytes(32);
    importMaterial(material, { ValidTo: new Date(clock.now().getTime() + DAY) });
    const blob = kms.invoke('Encrypt', { KeyId: id, Plaintext: Buffer.from('kept') }).CiphertextBlob;
    clock.advance(2 * DAY);
    expect(kms.invoke('DescribeKey', { KeyId: id }).KeyMetadata).toMatchObject({ KeyState: 'PendingImport', Enabled: false });
    expect(kms.invoke('DescribeKey', { KeyId: id }).KeyMetadata.ValidTo).toBeUndefined();
    expect(errorName(() => kms.invoke('Decrypt', { CiphertextBlob: blob }))).toBe('KMSInvalidStateException');
    try {
      importMaterial(crypto.randomBytes(32), { ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' });
      expect.unreachable();
    } catch (e) {
      expect((e as Error).name).toBe('IncorrectKeyMaterialException');
    }
    importMaterial(material, { ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' });
    expect(kms.invoke('DescribeKey', { KeyId: id }).KeyMetadata).toMatchObject({ KeyState: 'Enabled', ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' });
    expect(kms.invoke('Decrypt', { CiphertextBlob: blob }).Plaintext.toString()).toBe('kept');
    clock.advance(400 * DAY);
    expect(kms.invoke('DescribeKey', { KeyId: id }).KeyMetadata.KeyState).toBe('Enabled');
  });

  it('DeleteImportedKeyMaterial makes the key PendingImport at once', () => {
    const { kms, id, importMaterial } = externalKey();
    const material = crypto.randomBytes(32);
    importMaterial(material, { ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' });
    const blob = kms.invoke('Encrypt', { KeyId: id, Plaintext: Buffer.from('x') }).CiphertextBlob;
    kms.invoke('DeleteImportedKeyMaterial', { KeyId: id });
    expect(kms.invoke('DescribeKey', { KeyId: id }).KeyMetadata.KeyState).toBe('PendingImport');
    expect(errorName(() => kms.invoke('Decrypt', { CiphertextBlob: blob }))).toBe('KMSInvalidStateException');
    importMaterial(material, { ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' });
    expect(kms.invoke('Decrypt', { CiphertextBlob: blob }).Plaintext.toString()).toBe('x');
    const own = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    expect(errorName(() => kms.invoke('DeleteImportedKeyMaterial', { KeyId: own }))).toBe('UnsupportedOperationException');
  });

  it('refuses bad tokens, expired tokens, wrong wrapping, wrong length, and bad expiry settings', () => {
    const { kms, id, params, clock } = externalKey();
    const material = crypto.randomBytes(32);
    const p = params();
    const req = (extra: Record<string, unknown>) => () =>
      kms.invoke('ImportKeyMaterial', {
        KeyId: id,
        ImportToken: p.ImportToken,
        EncryptedKeyMaterial: wrap(p.PublicKey, material, 'RSAES_OAEP_SHA_256'),
        ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
        ...extra,
      });
    expect(errorName(req({ ImportToken: Buffer.from('forged token') }))).toBe('InvalidImportTokenException');
    const other = kms.invoke('CreateKey', { Origin: 'EXTERNAL' }).KeyMetadata.KeyId;
    expect(errorName(req({ KeyId: other }))).toBe('InvalidImportTokenException');
    expect(errorName(req({ EncryptedKeyMaterial: wrap(p.PublicKey, material, 'RSAES_OAEP_SHA_1') }))).toBe('InvalidCiphertextException');
    expect(errorName(req({ EncryptedKeyMaterial: wrap(p.PublicKey, crypto.randomBytes(16), 'RSAES_OAEP_SHA_256') }))).toBe('IncorrectKeyMaterialException');
    expect(errorName(req({ ExpirationModel: undefined }))).toBe('ValidationException'); // the default model needs ValidTo
    expect(errorName(req({ ValidTo: new Date(clock.now().getTime() + DAY) }))).toBe('ValidationException');
    expect(errorName(req({ ExpirationModel: 'KEY_MATERIAL_EXPIRES', ValidTo: new Date(clock.now().getTime() + 366 * DAY) }))).toBe('ValidationException');
    expect(errorName(req({ ExpirationModel: 'KEY_MATERIAL_EXPIRES', ValidTo: new Date(clock.now().getTime() - 1000) }))).toBe('ValidationException');
    clock.advance(DAY + 1000);
    expect(errorName(req({}))).toBe('ExpiredImportTokenException');
  });

  it('automatic rotation of an EXTERNAL key is unsupported; on-demand rotation needs material pending rotation', () => {
    const { kms, id, importMaterial } = externalKey();
    importMaterial(crypto.randomBytes(32), { ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' });
    expect(errorName(() => kms.invoke('EnableKeyRotation', { KeyId: id }))).toBe('UnsupportedOperationException');
    expect(() => kms.invoke('RotateKeyOnDemand', { KeyId: id })).toThrow(/has no key material pending rotation/);
  });

  it('rotates imported key material on demand: NEW_KEY_MATERIAL is pending until RotateKeyOnDemand, old ciphertext still decrypts (AWS "rotate imported key material on demand")', () => {
    const { kms, id, importMaterial } = externalKey();
    const forever = { ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' };
    const first = importMaterial(crypto.randomBytes(32), { ...forever, KeyMaterialDescription: 'first' }).KeyMaterialId!;
    const old = kms.invoke('Encrypt', { KeyId: id, Plaintext: Buffer.from('old') }).CiphertextBlob;
    const next = crypto.randomBytes(32);
    expect(errorName(() => importMaterial(next, { ...forever, ImportType: 'NEW_KEY_MATERIAL', KeyMaterialId: first }))).toBe('ValidationException');
    expect(errorName(() => importMaterial(next, { ImportType: 'NEW_KEY_MATERIAL', ValidTo: new Date('2030-06-01T00:00:00Z') }))).toBe(
      'UnsupportedOperationException',
    );
    const second = importMaterial(next, { ...forever, ImportType: 'NEW_KEY_MATERIAL', KeyMaterialDescription: 'second' }).KeyMaterialId!;
    expect(second).not.toBe(first);
    // Pending material does not encrypt: the key still uses the first.
    expect(kms.invoke('DescribeKey', { KeyId: id }).KeyMetadata.CurrentKeyMaterialId).toBe(first);
    expect(kms.invoke('ListKeyRotations', { KeyId: id }).Rotations).toEqual([]);
    const all = () => kms.invoke('ListKeyRotations', { KeyId: id, IncludeKeyMaterial: 'ALL_KEY_MATERIAL' }).Rotations!;
    expect(all().map((r) => [r.KeyMaterialId, r.KeyMaterialState, r.KeyMaterialDescription, r.RotationType])).toEqual([
      [first, 'CURRENT', 'first', undefined],
      [second, 'PENDING_ROTATION', 'second', undefined],
    ]);
    // One pending material at a time; the same material cannot come back as new.
    expect(errorName(() => importMaterial(crypto.randomBytes(32), { ...forever, ImportType: 'NEW_KEY_MATERIAL' }))).toBe('KMSInvalidStateException');
    kms.invoke('RotateKeyOnDemand', { KeyId: id });
    expect(kms.invoke('DescribeKey', { KeyId: id }).KeyMetadata.CurrentKeyMaterialId).toBe(second);
    expect(all().map((r) => [r.KeyMaterialId, r.KeyMaterialState, r.RotationType])).toEqual([
      [first, 'NON_CURRENT', undefined],
      [second, 'CURRENT', 'ON_DEMAND'],
    ]);
    expect(kms.invoke('ListKeyRotations', { KeyId: id }).Rotations!.map((r) => r.KeyMaterialId)).toEqual([second]);
    expect(kms.invoke('Decrypt', { CiphertextBlob: old }).Plaintext.toString()).toBe('old');
    const fresh = kms.invoke('Encrypt', { KeyId: id, Plaintext: Buffer.from('new') });
    expect(kms.invoke('Decrypt', { CiphertextBlob: fresh.CiphertextBlob }).KeyMaterialId).toBe(second);
    expect(errorName(() => importMaterial(next, { ...forever, ImportType: 'NEW_KEY_MATERIAL' }))).toBe('IncorrectKeyMaterialException');
    // Re-importing an associated material keeps its description unless a new one is given.
    importMaterial(next, { ...forever, ImportType: 'EXISTING_KEY_MATERIAL', KeyMaterialId: second, KeyMaterialDescription: 'renamed' });
    expect(all().map((r) => r.KeyMaterialDescription)).toEqual(['first', 'renamed']);
    // A pending material can be deleted by its id, leaving the key as it is; a rotated key's materials are kept together.
    const third = importMaterial(crypto.randomBytes(32), { ...forever, ImportType: 'NEW_KEY_MATERIAL' }).KeyMaterialId!;
    expect(kms.invoke('DeleteImportedKeyMaterial', { KeyId: id, KeyMaterialId: third })).toEqual({ KeyId: expect.stringContaining(id), KeyMaterialId: third });
    expect(all()).toHaveLength(2);
    expect(kms.invoke('DescribeKey', { KeyId: id }).KeyMetadata.KeyState).toBe('Enabled');
    expect(errorName(() => kms.invoke('DeleteImportedKeyMaterial', { KeyId: id, KeyMaterialId: first }))).toBe('UnsupportedOperationException');
    expect(errorName(() => kms.invoke('DeleteImportedKeyMaterial', { KeyId: id }))).toBe('UnsupportedOperationException');
    expect(kms.invoke('Decrypt', { CiphertextBlob: fresh.CiphertextBlob }).Plaintext.toString()).toBe('new');
  });

  it('new key material is for symmetric keys only', () => {
    const t = testKms();
    const hmac = t.kms.invoke('CreateKey', { Origin: 'EXTERNAL', KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }).KeyMetadata.KeyId;
    const p = t.kms.invoke('GetParametersForImport', { KeyId: hmac, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' });
    const imp = (extra: object) =>
      t.kms.invoke('ImportKeyMaterial', {
        KeyId: hmac,
        ImportToken: p.ImportToken,
        EncryptedKeyMaterial: wrap(p.PublicKey!, crypto.randomBytes(32), 'RSAES_OAEP_SHA_256'),
        ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
        ...extra,
      });
    expect(errorName(() => imp({ KeyMaterialDescription: 'd' }))).toBe('UnsupportedOperationException');
    imp({});
    expect(errorName(() => imp({ ImportType: 'NEW_KEY_MATERIAL' }))).toBe('UnsupportedOperationException');
  });

  it('KeyMaterialId: ImportKeyMaterial returns it and checks a named one; DeleteImportedKeyMaterial deletes the named material and returns its id', () => {
    const { kms, id, importMaterial } = externalKey();
    const material = crypto.randomBytes(32);
    const forever = { ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' };
    const mid = importMaterial(material, { ...forever, ImportType: 'EXISTING_KEY_MATERIAL' }).KeyMaterialId!;
    expect(mid).toMatch(/^[0-9a-f]{64}$/);
    expect(kms.invoke('DescribeKey', { KeyId: id }).KeyMetadata.CurrentKeyMaterialId).toBe(mid);
    expect(importMaterial(material, { ...forever, KeyMaterialId: mid }).KeyMaterialId).toBe(mid);
    expect(errorName(() => importMaterial(material, { ...forever, KeyMaterialId: 'a'.repeat(64) }))).toBe('IncorrectKeyMaterialException');
    // The same material is not new material.
    expect(errorName(() => importMaterial(material, { ...forever, ImportType: 'NEW_KEY_MATERIAL' }))).toBe('IncorrectKeyMaterialException');
    expect(errorName(() => importMaterial(material, { ...forever, ImportType: 'OTHER' }))).toBe('ValidationException');
    const [entry] = kms.invoke('ListKeyRotations', { KeyId: id, IncludeKeyMaterial: 'ALL_KEY_MATERIAL' }).Rotations!;
    expect(entry).toMatchObject({ KeyMaterialId: mid, KeyMaterialState: 'CURRENT', ImportState: 'IMPORTED', ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' });
    expect(errorName(() => kms.invoke('DeleteImportedKeyMaterial', { KeyId: id, KeyMaterialId: 'b'.repeat(64) }))).toBe('NotFoundException');
    expect(kms.invoke('DescribeKey', { KeyId: id }).KeyMetadata.KeyState).toBe('Enabled');
    expect(kms.invoke('DeleteImportedKeyMaterial', { KeyId: id, KeyMaterialId: mid })).toEqual({ KeyId: expect.stringContaining(id), KeyMaterialId: mid });
    expect(kms.invoke('DescribeKey', { KeyId: id }).KeyMetadata.KeyState).toBe('PendingImport');
  });
});
