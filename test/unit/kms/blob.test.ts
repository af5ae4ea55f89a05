import { describe, expect, it } from 'vitest';
import { AuditLog } from '../../../src/kms/audit.js';
import { encodeContext, parseBlob } from '../../../src/kms/blob.js';
import { errorName, testKms } from '../../helpers/home.js';

describe('encryption context encoding', () => {
  it('encodes {"ab":"c"} and {"a":"bc"} differently', () => {
    expect(encodeContext({ ab: 'c' }).equals(encodeContext({ a: 'bc' }))).toBe(false);
  });

  it('is independent of key order', () => {
    expect(encodeContext({ b: '2', a: '1' }).equals(encodeContext({ a: '1', b: '2' }))).toBe(true);
  });

  it('distinguishes an empty context from none only by content (both are empty)', () => {
    expect(encodeContext({}).equals(encodeContext(undefined))).toBe(true);
  });
});

describe('ciphertext blobs', () => {
  it('contexts {"ab":"c"} and {"a":"bc"} do not cross-decrypt', () => {
    const { kms } = testKms();
    const key = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    const blob = kms.invoke('Encrypt', { KeyId: key, Plaintext: Buffer.from('secret'), EncryptionContext: { ab: 'c' } }).CiphertextBlob;
    expect(errorName(() => kms.invoke('Decrypt', { CiphertextBlob: blob, EncryptionContext: { a: 'bc' } }))).toBe('InvalidCiphertextException');
    expect(kms.invoke('Decrypt', { CiphertextBlob: blob, EncryptionContext: { ab: 'c' } }).Plaintext.toString()).toBe('secret');
  });

  it('a missing or extra context pair is InvalidCiphertextException', () => {
    const { kms } = testKms();
    const key = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    const blob = kms.invoke('Encrypt', { KeyId: key, Plaintext: Buffer.from('x'), EncryptionContext: { a: '1' } }).CiphertextBlob;
    expect(errorName(() => kms.invoke('Decrypt', { CiphertextBlob: blob }))).toBe('InvalidCiphertextException');
    expect(errorName(() => kms.invoke('Decrypt', { CiphertextBlob: blob, EncryptionContext: { a: '1', b: '2' } }))).toBe('InvalidCiphertextException');
  });

  it('every single changed byte is InvalidCiphertextException', () => {
    const { kms } = testKms();
    const key = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    const blob = kms.invoke('Encrypt', { KeyId: key, Plaintext: Buffer.from('tamper me') }).CiphertextBlob;
    for (let i = 0; i < blob.length; i++) {
      const t = Buffer.from(blob);
      t[i]! ^= 0x01;
      const name = errorName(() => kms.invoke('Decrypt', { CiphertextBlob: t }));
      // A flipped key-id byte can name a syntactically valid but unknown key; still InvalidCiphertext.
      expect(name, `byte ${i}`).toBe('InvalidCiphertextException');
    }
  });

  it('a truncated blob and garbage are InvalidCiphertextException', () => {
    const { kms } = testKms();
    const key = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    const blob = kms.invoke('Encrypt', { KeyId: key, Plaintext: Buffer.from('abc') }).CiphertextBlob;
    for (const n of [1, 3, 20, 60, blob.length - 1]) {
      expect(errorName(() => kms.invoke('Decrypt', { CiphertextBlob: blob.subarray(0, n) }))).toBe('InvalidCiphertextException');
    }
    expect(errorName(() => kms.invoke('Decrypt', { CiphertextBlob: Buffer.from('not a blob at all') }))).toBe('InvalidCiphertextException');
  });

  it('a blob from another home is InvalidCiphertextException', () => {
    const a = testKms();
    const b = testKms();
    const key = a.kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    const blob = a.kms.invoke('Encrypt', { KeyId: key, Plaintext: Buffer.from('abc') }).CiphertextBlob;
    expect(errorName(() => b.kms.invoke('Decrypt', { CiphertextBlob: blob }))).toBe('InvalidCiphertextException');
  });

  it('a KeyId that names another key is IncorrectKeyException', () => {
    const { kms } = testKms();
    const k1 = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    const k2 = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    kms.invoke('CreateAlias', { AliasName: 'alias/two', TargetKeyId: k2 });
    const blob = kms.invoke('Encrypt', { KeyId: k1, Plaintext: Buffer.from('abc') }).CiphertextBlob;
    expect(errorName(() => kms.invoke('Decrypt', { CiphertextBlob: blob, KeyId: k2 }))).toBe('IncorrectKeyException');
    expect(errorName(() => kms.invoke('Decrypt', { CiphertextBlob: blob, KeyId: 'alias/two' }))).toBe('IncorrectKeyException');
    expect(kms.invoke('Decrypt', { CiphertextBlob: blob, KeyId: kms.ctx.keyArn(k1) }).KeyId).toBe(kms.ctx.keyArn(k1));
  });

  it('parses the header fields it wrote', () => {
    const { kms } = testKms();
    const key = kms.invoke('CreateKey', {}).KeyMetadata;
    const blob = kms.invoke('Encrypt', { KeyId: key.KeyId, Plaintext: Buffer.from('abc') }).CiphertextBlob;
    const p = parseBlob(blob);
    expect(p.keyId).toBe(key.KeyId);
    expect(p.materialId.toString('hex')).toBe(key.CurrentKeyMaterialId);
    expect(p.ciphertext.length).toBe(3);
  });
});

describe('text that is not Unicode', () => {
  it('a lone surrogate is refused in every member before any operation runs, and never opens a blob made under U+FFFD', () => {
    const { kms } = testKms();
    const key = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    const blob = kms.invoke('Encrypt', { KeyId: key, Plaintext: Buffer.from('secret'), EncryptionContext: { a: '\ufffd', '\ufffd': 'k' } }).CiphertextBlob;
    // UTF-8 has no bytes for a lone surrogate: encoded with replacement, each one would be U+FFFD, and these would decrypt the blob.
    for (const ctx of [
      { a: '\ud800', '\ufffd': 'k' },
      { a: '\udfff', '\ufffd': 'k' },
      { a: '\ufffd', '\udbff': 'k' },
    ]) {
      let err: Error | undefined;
      try {
        kms.invoke('Decrypt', { CiphertextBlob: blob, EncryptionContext: ctx }).Plaintext.fill(0);
      } catch (e) {
        err = e as Error;
      }
      expect(err?.name).toBe('ValidationException');
      expect(err?.message).toMatch(
        /^1 validation error detected: Value at 'encryptionContext' failed to satisfy constraint: Member must be valid Unicode text; it holds an unpaired UTF-16 surrogate \(\\ud[89a-f][0-9a-f]{2} at UTF-16 offset 0\)/,
      );
    }
    expect(kms.invoke('Decrypt', { CiphertextBlob: blob, EncryptionContext: { a: '\ufffd', '\ufffd': 'k' } }).Plaintext.toString()).toBe('secret');
    // The encoding itself refuses them too (a second line for any caller that reaches it), and keeps surrogate pairs whole.
    expect(errorName(() => encodeContext({ a: '\ud800' }))).toBe('ValidationException');
    expect(errorName(() => encodeContext({ '\udc00': 'v' }))).toBe('ValidationException');
    expect(encodeContext({ a: '\ud83d\ude00' }).equals(encodeContext({ a: '\ufffd' }))).toBe(false);
    expect(encodeContext({ a: '\ud83d\ude00' }).equals(encodeContext({ a: '😀' }))).toBe(true);
    // Names, descriptions, tags, grant names and constraints: refused, nothing changed.
    const refused = [
      () => kms.invoke('CreateKey', { Description: 'd\ud800' }),
      () => kms.invoke('UpdateKeyDescription', { KeyId: key, Description: '\udc00' }),
      () => kms.invoke('TagResource', { KeyId: key, Tags: [{ TagKey: 'k', TagValue: 'v\udfff' }] }),
      () => kms.invoke('TagResource', { KeyId: key, Tags: [{ TagKey: '\ud800', TagValue: 'v' }] }),
      () => kms.invoke('CreateAlias', { AliasName: 'alias/a\ud800', TargetKeyId: key }),
      () => kms.invoke('CreateGrant', { KeyId: key, GranteePrincipal: `arn:aws:iam::000000000000:user/bob`, Operations: ['Decrypt'], Name: 'g\ud800' }),
      () =>
        kms.invoke('CreateGrant', {
          KeyId: key,
          GranteePrincipal: `arn:aws:iam::000000000000:user/bob`,
          Operations: ['Decrypt'],
          Constraints: { EncryptionContextSubset: { '\ud800': 'v' } },
        }),
    ];
    for (const call of refused) expect(errorName(call)).toBe('ValidationException');
    expect(kms.invoke('ListKeys', {}).Keys).toHaveLength(1);
    expect(kms.invoke('DescribeKey', { KeyId: key }).KeyMetadata.Description).toBe('');
    expect(kms.invoke('ListResourceTags', { KeyId: key }).Tags).toEqual([]);
    expect(kms.invoke('ListAliases', { KeyId: key }).Aliases).toEqual([]);
    expect(kms.invoke('ListGrants', { KeyId: key }).Grants).toEqual([]);
    // The refusals are audited, as JSON a reader can parse.
    kms.flushAudit();
    const refusals = AuditLog.read(kms.home.auditLog).filter((r) => r.errorCode === 'ValidationException');
    expect(refusals.map((r) => r.eventName)).toEqual([
      'Decrypt',
      'Decrypt',
      'Decrypt',
      'CreateKey',
      'UpdateKeyDescription',
      'TagResource',
      'TagResource',
      'CreateAlias',
      'CreateGrant',
      'CreateGrant',
    ]);
    expect(refusals[3]!.requestParameters).toEqual({ description: 'd\ud800' });
  });
});
