import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditLog } from '../../../src/kms/audit.js';
import { Kms } from '../../../src/kms/kms.js';
import { errorName, tempHome, testKms } from '../../helpers/home.js';

describe('CreateKey / DescribeKey / ListKeys', () => {
  it('returns the full KeyMetadata with AWS field names', () => {
    const { kms, clock } = testKms();
    const md = kms.invoke('CreateKey', { Description: 'd', Tags: [{ TagKey: 'team', TagValue: 'storage' }] }).KeyMetadata;
    expect(md).toMatchObject({
      AWSAccountId: '000000000000',
      Arn: `arn:aws:kms:us-east-1:000000000000:key/${md.KeyId}`,
      Enabled: true,
      Description: 'd',
      KeyUsage: 'ENCRYPT_DECRYPT',
      KeyState: 'Enabled',
      Origin: 'AWS_KMS',
      KeyManager: 'CUSTOMER',
      KeySpec: 'SYMMETRIC_DEFAULT',
      CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT',
      EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
      MultiRegion: false,
    });
    expect(md.KeyId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(md.CreationDate.getTime()).toBe(clock.now().getTime());
    expect(kms.invoke('DescribeKey', { KeyId: md.Arn }).KeyMetadata.KeyId).toBe(md.KeyId);
    expect(kms.invoke('ListResourceTags', { KeyId: md.KeyId }).Tags).toEqual([{ TagKey: 'team', TagValue: 'storage' }]);
  });

  it('EXTERNAL origin starts PendingImport with no material', () => {
    const { kms } = testKms();
    const md = kms.invoke('CreateKey', { Origin: 'EXTERNAL' }).KeyMetadata;
    expect(md.KeyState).toBe('PendingImport');
    expect(md.Enabled).toBe(false);
    expect(md.CurrentKeyMaterialId).toBeUndefined();
  });

  it('rejects unsupported specs, usages a spec does not have, and bad enums', () => {
    const { kms } = testKms();
    expect(errorName(() => kms.invoke('CreateKey', { KeySpec: 'SM2', KeyUsage: 'SIGN_VERIFY' }))).toBe('UnsupportedOperationException');
    expect(errorName(() => kms.invoke('CreateKey', { KeySpec: 'ML_KEM_512', KeyUsage: 'KEY_ENCAPSULATION' }))).toBe('UnsupportedOperationException');
    expect(errorName(() => kms.invoke('CreateKey', { KeyUsage: 'SIGN_VERIFY' }))).toBe('ValidationException');
    expect(errorName(() => kms.invoke('CreateKey', { KeySpec: 'ECC_NIST_P256' }))).toBe('ValidationException');
    expect(errorName(() => kms.invoke('CreateKey', { KeySpec: 'ECC_SECG_P256K1', KeyUsage: 'KEY_AGREEMENT' }))).toBe('ValidationException');
    expect(errorName(() => kms.invoke('CreateKey', { KeySpec: 'HMAC_256', KeyUsage: 'SIGN_VERIFY' }))).toBe('ValidationException');
    expect(errorName(() => kms.invoke('CreateKey', { KeySpec: 'RSA_2048', KeyUsage: 'KEY_AGREEMENT' }))).toBe('ValidationException');
    expect(errorName(() => kms.invoke('CreateKey', { KeySpec: 'RSA_9' }))).toBe('ValidationException');
    expect(errorName(() => kms.invoke('CreateKey', { KeyUsage: 'NOPE' }))).toBe('ValidationException');
    expect(errorName(() => kms.invoke('CreateKey', { Origin: 'AWS_CLOUDHSM' }))).toBe('UnsupportedOperationException');
    expect(errorName(() => kms.invoke('CreateKey', { Tags: [{ TagKey: 'aws:x', TagValue: 'y' }] }))).toBe('TagException');
  });

  it('ListKeys paginates with Limit and Marker', () => {
    const { kms } = testKms();
    const ids = Array.from({ length: 5 }, () => kms.invoke('CreateKey', {}).KeyMetadata.KeyId);
    const p1 = kms.invoke('ListKeys', { Limit: 2 });
    expect(p1.Keys).toHaveLength(2);
    expect(p1.Truncated).toBe(true);
    const p2 = kms.invoke('ListKeys', { Limit: 10, Marker: p1.NextMarker });
    expect(p2.Truncated).toBe(false);
    expect([...p1.Keys, ...p2.Keys].map((k) => k.KeyId).sort()).toEqual([...ids].sort());
    expect(errorName(() => kms.invoke('ListKeys', { Marker: 'garbage' }))).toBe('InvalidMarkerException');
    expect(errorName(() => kms.invoke('ListKeys', { Limit: 0 }))).toBe('ValidationException');
  });

  it('unknown keys are NotFoundException with AWS wording', () => {
    const { kms } = testKms();
    const id = '11111111-2222-3333-4444-555555555555';
    expect(() => kms.invoke('DescribeKey', { KeyId: id })).toThrow(`Key 'arn:aws:kms:us-east-1:000000000000:key/${id}' does not exist`);
    expect(() => kms.invoke('DescribeKey', { KeyId: 'alias/none' })).toThrow('Alias arn:aws:kms:us-east-1:000000000000:alias/none is not found.');
    expect(errorName(() => kms.invoke('DescribeKey', { KeyId: 'not-a-key' }))).toBe('NotFoundException');
    expect(errorName(() => kms.invoke('DescribeKey', { KeyId: `arn:aws:kms:elsewhere:000000000000:key/${id}` }))).toBe('NotFoundException');
    expect(errorName(() => kms.invoke('DescribeKey', {}))).toBe('ValidationException');
  });

  it('UpdateKeyDescription, TagResource, UntagResource', () => {
    const { kms } = testKms();
    const key = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    kms.invoke('UpdateKeyDescription', { KeyId: key, Description: 'new' });
    expect(kms.invoke('DescribeKey', { KeyId: key }).KeyMetadata.Description).toBe('new');
    kms.invoke('TagResource', {
      KeyId: key,
      Tags: [
        { TagKey: 'a', TagValue: '1' },
        { TagKey: 'b', TagValue: '2' },
      ],
    });
    kms.invoke('TagResource', { KeyId: key, Tags: [{ TagKey: 'a', TagValue: '3' }] });
    kms.invoke('UntagResource', { KeyId: key, TagKeys: ['b'] });
    expect(kms.invoke('ListResourceTags', { KeyId: key }).Tags).toEqual([{ TagKey: 'a', TagValue: '3' }]);
    const many = Array.from({ length: 51 }, (_, i) => ({ TagKey: `k${i}`, TagValue: 'v' }));
    expect(errorName(() => kms.invoke('TagResource', { KeyId: key, Tags: many }))).toBe('TagException');
    expect(kms.invoke('ListResourceTags', { KeyId: key }).Tags).toHaveLength(1);
  });
});

describe('Encrypt / Decrypt / ReEncrypt / GenerateDataKey / GenerateRandom', () => {
  it('Encrypt takes 1 to 4096 bytes', () => {
    const { kms } = testKms();
    const key = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    expect(errorName(() => kms.invoke('Encrypt', { KeyId: key, Plaintext: Buffer.alloc(0) }))).toBe('ValidationException');
    expect(errorName(() => kms.invoke('Encrypt', { KeyId: key, Plaintext: Buffer.alloc(4097) }))).toBe('ValidationException');
    const big = Buffer.alloc(4096, 7);
    const blob = kms.invoke('Encrypt', { KeyId: key, Plaintext: big }).CiphertextBlob;
    expect(kms.invoke('Decrypt', { CiphertextBlob: blob }).Plaintext.equals(big)).toBe(true);
  });

  it('validation errors never echo plaintext, raw, base64 or hex', () => {
    const { kms } = testKms();
    const key = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    const secret = Buffer.from('S3CR3T-PLAINTEXT-'.repeat(300)); // 5100 bytes: over the 4096-byte limit
    const forms = [secret.toString('latin1'), secret.toString('base64'), secret.toString('hex')].map((f) => f.slice(0, 24));
    const calls: [string, object][] = [
      ['Encrypt', { KeyId: key, Plaintext: secret }],
      ['Encrypt', { KeyId: 'not-a-key', Plaintext: secret.subarray(0, 100) }],
      ['GenerateDataKey', { KeyId: key, NumberOfBytes: 2000, EncryptionContext: { s: secret.toString('base64').slice(0, 64) } }],
    ];
    for (const [op, req] of calls) {
      let err: Error | undefined;
      try {
        kms.invoke(op as 'Encrypt', req as never);
      } catch (e) {
        err = e as Error;
      }
      expect(err, `${op} must fail`).toBeDefined();
      const text = `${err!.message} ${JSON.stringify(err)}`;
      for (const f of forms) expect(text).not.toContain(f);
    }
  });

  it('Decrypt works without KeyId and returns the key ARN', () => {
    const { kms } = testKms();
    const md = kms.invoke('CreateKey', {}).KeyMetadata;
    const blob = kms.invoke('Encrypt', { KeyId: md.KeyId, Plaintext: Buffer.from('p'), EncryptionContext: { 'aws:ebs:id': 'vol-1' } }).CiphertextBlob;
    const r = kms.invoke('Decrypt', { CiphertextBlob: blob, EncryptionContext: { 'aws:ebs:id': 'vol-1' } });
    expect(r).toMatchObject({ KeyId: md.Arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' });
  });

  it('ReEncrypt moves a blob between keys and contexts', () => {
    const { kms } = testKms();
    const a = kms.invoke('CreateKey', {}).KeyMetadata;
    const b = kms.invoke('CreateKey', {}).KeyMetadata;
    const blob = kms.invoke('Encrypt', { KeyId: a.KeyId, Plaintext: Buffer.from('move me'), EncryptionContext: { s: '1' } }).CiphertextBlob;
    expect(errorName(() => kms.invoke('ReEncrypt', { CiphertextBlob: blob, DestinationKeyId: b.KeyId }))).toBe('InvalidCiphertextException');
    expect(
      errorName(() => kms.invoke('ReEncrypt', { CiphertextBlob: blob, SourceEncryptionContext: { s: '1' }, SourceKeyId: b.KeyId, DestinationKeyId: b.KeyId })),
    ).toBe('IncorrectKeyException');
    const r = kms.invoke('ReEncrypt', {
      CiphertextBlob: blob,
      SourceEncryptionContext: { s: '1' },
      DestinationKeyId: b.KeyId,
      DestinationEncryptionContext: { d: '2' },
    });
    expect(r).toMatchObject({
      SourceKeyId: a.Arn,
      KeyId: b.Arn,
      SourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      DestinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
    });
    kms.invoke('DisableKey', { KeyId: a.KeyId });
    expect(kms.invoke('Decrypt', { CiphertextBlob: r.CiphertextBlob, EncryptionContext: { d: '2' } }).Plaintext.toString()).toBe('move me');
  });

  it('GenerateDataKey needs exactly one of KeySpec and NumberOfBytes', () => {
    const { kms } = testKms();
    const key = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    expect(errorName(() => kms.invoke('GenerateDataKey', { KeyId: key }))).toBe('ValidationException');
    expect(errorName(() => kms.invoke('GenerateDataKey', { KeyId: key, KeySpec: 'AES_256', NumberOfBytes: 32 }))).toBe('ValidationException');
    expect(errorName(() => kms.invoke('GenerateDataKey', { KeyId: key, KeySpec: 'AES_512' }))).toBe('ValidationException');
    expect(errorName(() => kms.invoke('GenerateDataKey', { KeyId: key, NumberOfBytes: 1025 }))).toBe('ValidationException');
    expect(kms.invoke('GenerateDataKey', { KeyId: key, KeySpec: 'AES_128' }).Plaintext).toHaveLength(16);
    expect(kms.invoke('GenerateDataKey', { KeyId: key, KeySpec: 'AES_256' }).Plaintext).toHaveLength(32);
    const g = kms.invoke('GenerateDataKey', { KeyId: key, NumberOfBytes: 64, EncryptionContext: { 'aws:ebs:id': 'vol-x' } });
    expect(g.Plaintext).toHaveLength(64);
    expect(kms.invoke('Decrypt', { CiphertextBlob: g.CiphertextBlob, EncryptionContext: { 'aws:ebs:id': 'vol-x' } }).Plaintext.equals(g.Plaintext)).toBe(true);
    const w = kms.invoke('GenerateDataKeyWithoutPlaintext', { KeyId: key, NumberOfBytes: 64 });
    expect(w).not.toHaveProperty('Plaintext');
    expect(kms.invoke('Decrypt', { CiphertextBlob: w.CiphertextBlob }).Plaintext).toHaveLength(64);
  });

  it('GenerateRandom gives 1 to 1024 random bytes', () => {
    const { kms } = testKms();
    expect(kms.invoke('GenerateRandom', { NumberOfBytes: 1024 }).Plaintext).toHaveLength(1024);
    expect(errorName(() => kms.invoke('GenerateRandom', { NumberOfBytes: 0 }))).toBe('ValidationException');
    expect(errorName(() => kms.invoke('GenerateRandom', {}))).toBe('ValidationException');
  });

  it('a non-symmetric EncryptionAlgorithm is InvalidKeyUsageException', () => {
    const { kms } = testKms();
    const key = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    expect(errorName(() => kms.invoke('Encrypt', { KeyId: key, Plaintext: Buffer.from('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }))).toBe(
      'InvalidKeyUsageException',
    );
  });
});

describe('aliases', () => {
  it('CreateAlias, UpdateAlias, DeleteAlias, ListAliases', () => {
    const { kms, clock } = testKms();
    const a = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    const b = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    kms.invoke('CreateAlias', { AliasName: 'alias/app', TargetKeyId: a });
    expect(errorName(() => kms.invoke('CreateAlias', { AliasName: 'alias/app', TargetKeyId: b }))).toBe('AlreadyExistsException');
    clock.advance(60_000);
    kms.invoke('UpdateAlias', { AliasName: 'alias/app', TargetKeyId: kms.ctx.keyArn(b) });
    const [alias] = kms.invoke('ListAliases', {}).Aliases;
    expect(alias).toMatchObject({ AliasName: 'alias/app', AliasArn: 'arn:aws:kms:us-east-1:000000000000:alias/app', TargetKeyId: b });
    expect(alias!.LastUpdatedDate.getTime() - alias!.CreationDate.getTime()).toBe(60_000);
    expect(kms.invoke('ListAliases', { KeyId: a }).Aliases).toHaveLength(0);
    expect(kms.invoke('ListAliases', { KeyId: b }).Aliases).toHaveLength(1);
    expect(kms.invoke('Encrypt', { KeyId: 'arn:aws:kms:us-east-1:000000000000:alias/app', Plaintext: Buffer.from('x') }).KeyId).toBe(kms.ctx.keyArn(b));
    kms.invoke('DeleteAlias', { AliasName: 'alias/app' });
    expect(errorName(() => kms.invoke('DeleteAlias', { AliasName: 'alias/app' }))).toBe('NotFoundException');
    expect(errorName(() => kms.invoke('UpdateAlias', { AliasName: 'alias/app', TargetKeyId: a }))).toBe('NotFoundException');
  });

  it('requires the alias/ prefix and reserves alias/aws/', () => {
    const { kms } = testKms();
    const a = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    expect(errorName(() => kms.invoke('CreateAlias', { AliasName: 'app', TargetKeyId: a }))).toBe('InvalidAliasNameException');
    expect(errorName(() => kms.invoke('CreateAlias', { AliasName: 'alias/has space', TargetKeyId: a }))).toBe('InvalidAliasNameException');
    expect(errorName(() => kms.invoke('CreateAlias', { AliasName: 'alias/aws/ebs', TargetKeyId: a }))).toBe('InvalidAliasNameException');
    expect(errorName(() => kms.invoke('CreateAlias', { AliasName: 'alias/x', TargetKeyId: 'alias/y' }))).toBe('NotFoundException');
  });

  it('the AWS managed key alias/aws/ebs comes into being when first named, once, and is used only through EC2', () => {
    const { kms } = testKms();
    expect(kms.invoke('ListAliases', {}).Aliases).toEqual([]);
    const md = kms.invoke('DescribeKey', { KeyId: 'alias/aws/ebs' }).KeyMetadata;
    const id = md.KeyId;
    expect(kms.invoke('DescribeKey', { KeyId: 'alias/aws/ebs' }).KeyMetadata.KeyId).toBe(id);
    expect(md.Description).toBe('Default key that protects my EBS volumes when no other key is defined');
    expect(kms.invoke('ListKeys', {}).Keys).toHaveLength(1);
    expect(md.KeyManager).toBe('AWS');
    expect(kms.invoke('GetKeyRotationStatus', { KeyId: id })).toMatchObject({ KeyRotationEnabled: true, RotationPeriodInDays: 365 });
    // Its policy (AWS's shape) lets nobody manage it, and the account use it only through EC2.
    for (const op of ['DisableKey', 'ScheduleKeyDeletion', 'DisableKeyRotation', 'RotateKeyOnDemand', 'PutKeyPolicy'] as const) {
      expect(
        errorName(() => kms.invoke(op, { KeyId: id, Policy: '{}' })),
        op,
      ).toBe('AccessDeniedException');
    }
    expect(errorName(() => kms.invoke('DeleteAlias', { AliasName: 'alias/aws/ebs' }))).toBe('InvalidAliasNameException');
    expect(errorName(() => kms.invoke('GenerateDataKeyWithoutPlaintext', { KeyId: 'alias/aws/ebs', NumberOfBytes: 64 }))).toBe('AccessDeniedException');
    const viaEc2 = { principal: kms.principal, viaService: `ec2.${kms.region}.amazonaws.com` };
    expect(kms.invokeAs(viaEc2, 'GenerateDataKeyWithoutPlaintext', { KeyId: 'alias/aws/ebs', NumberOfBytes: 64 }).KeyId).toBe(md.Arn);
    expect(JSON.parse(kms.invoke('GetKeyPolicy', { KeyId: id }).Policy).Statement[0].Condition.StringEquals['kms:ViaService']).toBe(viaEc2.viaService);
  });
});

describe('the store and the audit log', () => {
  it('keys survive reopening; a foreign root key is refused', () => {
    // A home kmsvol makes itself (not mkdtemp's, which is 0700 already), under a umask that would leave it open.
    const home = path.join(tempHome(), 'kv');
    const umask = process.umask(0o022);
    try {
      Kms.open({ home }).close();
    } finally {
      process.umask(umask);
    }
    const k1 = Kms.open({ home });
    const id = k1.invoke('CreateKey', {}).KeyMetadata.KeyId;
    const blob = k1.invoke('Encrypt', { KeyId: id, Plaintext: Buffer.from('persist') }).CiphertextBlob;
    k1.close();
    const k2 = Kms.open({ home });
    expect(k2.invoke('Decrypt', { CiphertextBlob: blob }).Plaintext.toString()).toBe('persist');
    k2.close();
    for (const f of ['kms.db', 'root.key', 'audit.log']) expect(fs.statSync(`${home}/${f}`).mode & 0o777, f).toBe(0o600);
    expect(fs.statSync(home).mode & 0o777).toBe(0o700);
    const other = tempHome();
    Kms.open({ home: other }).close();
    fs.copyFileSync(`${other}/root.key`, `${home}/root.key`);
    expect(() => Kms.open({ home })).toThrow(/does not belong to the KMS store/);
  });

  it('records every call, with errors, and never a secret', () => {
    const { kms, home } = testKms();
    const key = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    const g = kms.invoke('GenerateDataKey', { KeyId: key, KeySpec: 'AES_256', EncryptionContext: { 'aws:ebs:id': 'vol-1' } });
    kms.invoke('DisableKey', { KeyId: key });
    expect(errorName(() => kms.invoke('Decrypt', { CiphertextBlob: g.CiphertextBlob, EncryptionContext: { 'aws:ebs:id': 'vol-1' } }))).toBe(
      'DisabledException',
    );
    kms.flushAudit();
    const log = AuditLog.read(`${home}/audit.log`);
    expect(log.map((r) => r.eventName)).toEqual(['CreateKey', 'GenerateDataKey', 'DisableKey', 'Decrypt']);
    expect(log[1]!.requestParameters).toMatchObject({ keyId: key, keySpec: 'AES_256', encryptionContext: { 'aws:ebs:id': 'vol-1' } });
    expect(log[3]).toMatchObject({ errorCode: 'DisabledException', eventSource: 'kms.amazonaws.com' });
    const raw = fs.readFileSync(`${home}/audit.log`, 'utf8');
    expect(raw).not.toContain(g.Plaintext.toString('base64'));
    expect(raw).not.toContain(g.Plaintext.toString('hex'));
    expect(raw).not.toContain(g.CiphertextBlob.toString('base64'));
  });

  it("records the algorithms a request chose, as CloudTrail does: ReEncrypt's source and destination, Encapsulate's", () => {
    const { kms, home } = testKms();
    const key = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    const blob = kms.invoke('Encrypt', { KeyId: key, Plaintext: Buffer.from('x') }).CiphertextBlob;
    kms.invoke('ReEncrypt', {
      CiphertextBlob: blob,
      DestinationKeyId: key,
      SourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      DestinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
    });
    // A symmetric key cannot encapsulate; the refused call is recorded with what it asked for.
    expect(errorName(() => kms.invoke('Encapsulate', { KeyId: key, EncapsulationAlgorithm: 'ML_KEM' }))).toBe('InvalidKeyUsageException');
    kms.flushAudit();
    const log = AuditLog.read(`${home}/audit.log`);
    expect(log.find((r) => r.eventName === 'ReEncrypt')!.requestParameters).toMatchObject({
      sourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      destinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
    });
    expect(log.find((r) => r.eventName === 'Encapsulate')).toMatchObject({
      errorCode: 'InvalidKeyUsageException',
      requestParameters: { keyId: key, encapsulationAlgorithm: 'ML_KEM' },
    });
  });
});
