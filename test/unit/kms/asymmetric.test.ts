import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createAccessKey } from '../../../src/kms/iam.js';
import { Kms } from '../../../src/kms/kms.js';
import { DAY, errorName, onCleanup, testKms } from '../../helpers/home.js';

const ACCT = '000000000000';
const APP = `arn:aws:iam::${ACCT}:role/app`;
const EVE = `arn:aws:iam::${ACCT}:user/eve`;
const msg = Buffer.from('message');
const digest = crypto.createHash('sha256').update(msg).digest();
const peer = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'der' });

function keys(kms: Kms) {
  const mk = (req: object) => kms.invoke('CreateKey', req).KeyMetadata.KeyId;
  return {
    sym: mk({}),
    rsaEnc: mk({ KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' }),
    rsaSig: mk({ KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' }),
    ecSig: mk({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }),
    ecdh: mk({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'KEY_AGREEMENT' }),
    hmac: mk({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }),
  };
}

/** One valid request per new operation, for a key of the right kind. */
function requests(k: ReturnType<typeof keys>, sig: Uint8Array, mac: Uint8Array): [string, string, Record<string, unknown>][] {
  return [
    ['Sign', k.ecSig, { Message: msg, SigningAlgorithm: 'ECDSA_SHA_256' }],
    ['Verify', k.ecSig, { Message: msg, Signature: sig, SigningAlgorithm: 'ECDSA_SHA_256' }],
    ['GetPublicKey', k.ecSig, {}],
    ['GenerateMac', k.hmac, { Message: msg, MacAlgorithm: 'HMAC_SHA_256' }],
    ['VerifyMac', k.hmac, { Message: msg, Mac: mac, MacAlgorithm: 'HMAC_SHA_256' }],
    ['GenerateDataKeyPair', k.sym, { KeyPairSpec: 'ECC_NIST_P256' }],
    ['GenerateDataKeyPairWithoutPlaintext', k.sym, { KeyPairSpec: 'ECC_NIST_P256' }],
    ['DeriveSharedSecret', k.ecdh, { KeyAgreementAlgorithm: 'ECDH', PublicKey: peer }],
    ['Encrypt', k.rsaEnc, { Plaintext: msg, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }],
  ];
}

function setup() {
  const t = testKms();
  const k = keys(t.kms);
  const sig = t.kms.invoke('Sign', { KeyId: k.ecSig, Message: msg, SigningAlgorithm: 'ECDSA_SHA_256' }).Signature;
  const mac = t.kms.invoke('GenerateMac', { KeyId: k.hmac, Message: msg, MacAlgorithm: 'HMAC_SHA_256' }).Mac;
  return { ...t, k, reqs: requests(k, sig, mac) };
}

describe('asymmetric and HMAC keys: DescribeKey', () => {
  it('shows KeySpec, KeyUsage and the algorithms of each kind of key', () => {
    const { kms, k } = setup();
    const md = (id: string) => kms.invoke('DescribeKey', { KeyId: id }).KeyMetadata as Record<string, unknown>;
    expect(md(k.sym)).toMatchObject({
      KeySpec: 'SYMMETRIC_DEFAULT',
      CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT',
      KeyUsage: 'ENCRYPT_DECRYPT',
      EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
    });
    expect(md(k.rsaEnc)).toMatchObject({ KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT', EncryptionAlgorithms: ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'] });
    expect(md(k.rsaSig)).toMatchObject({
      KeyUsage: 'SIGN_VERIFY',
      SigningAlgorithms: [
        'RSASSA_PSS_SHA_256',
        'RSASSA_PSS_SHA_384',
        'RSASSA_PSS_SHA_512',
        'RSASSA_PKCS1_V1_5_SHA_256',
        'RSASSA_PKCS1_V1_5_SHA_384',
        'RSASSA_PKCS1_V1_5_SHA_512',
      ],
    });
    expect(md(k.ecSig)).toMatchObject({ KeySpec: 'ECC_NIST_P256', SigningAlgorithms: ['ECDSA_SHA_256'] });
    expect(md(k.ecdh)).toMatchObject({ KeyUsage: 'KEY_AGREEMENT', KeyAgreementAlgorithms: ['ECDH'] });
    expect(md(k.hmac)).toMatchObject({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC', MacAlgorithms: ['HMAC_SHA_256'] });
    expect(md(k.hmac).EncryptionAlgorithms).toBeUndefined();
    expect(md(k.ecSig).CurrentKeyMaterialId).toMatch(/^[0-9a-f]+$/);
  });

  it('rotation is refused for asymmetric and HMAC keys, as AWS refuses it, and their rotation status is always false', () => {
    const { kms, k } = setup();
    for (const id of [k.rsaEnc, k.ecSig, k.hmac]) {
      for (const op of ['EnableKeyRotation', 'DisableKeyRotation', 'RotateKeyOnDemand'] as const) {
        expect(errorName(() => kms.invoke(op, { KeyId: id }))).toBe('UnsupportedOperationException');
      }
      expect(kms.invoke('GetKeyRotationStatus', { KeyId: id }).KeyRotationEnabled).toBe(false);
    }
  });
});

describe('asymmetric and HMAC operations: negative cases', () => {
  it('each operation refuses a key of the wrong usage with InvalidKeyUsageException (GetPublicKey: UnsupportedOperationException for keys without one)', () => {
    const { kms, k, reqs } = setup();
    for (const [op, right, req] of reqs) {
      const wrong = right === k.sym ? k.hmac : right === k.rsaEnc ? k.hmac : k.sym;
      expect(
        errorName(() => kms.invoke(op as never, { ...req, KeyId: wrong })),
        `${op} with a key of another usage`,
      ).toBe(op === 'GetPublicKey' ? 'UnsupportedOperationException' : 'InvalidKeyUsageException');
    }
    // Symmetric data keys are not made by RSA keys, and KEY_AGREEMENT keys do not sign.
    expect(errorName(() => kms.invoke('GenerateDataKey', { KeyId: k.rsaEnc, KeySpec: 'AES_256' }))).toBe('InvalidKeyUsageException');
    expect(errorName(() => kms.invoke('Sign', { KeyId: k.ecdh, Message: msg, SigningAlgorithm: 'ECDSA_SHA_256' }))).toBe('InvalidKeyUsageException');
    expect(errorName(() => kms.invoke('GenerateDataKeyPair', { KeyId: k.rsaEnc, KeyPairSpec: 'RSA_2048' }))).toBe('InvalidKeyUsageException');
  });

  it('an algorithm the key spec does not have is InvalidKeyUsageException', () => {
    const { kms, k } = setup();
    expect(errorName(() => kms.invoke('Sign', { KeyId: k.ecSig, Message: msg, SigningAlgorithm: 'ECDSA_SHA_384' }))).toBe('InvalidKeyUsageException');
    expect(errorName(() => kms.invoke('Sign', { KeyId: k.ecSig, Message: msg, SigningAlgorithm: 'RSASSA_PSS_SHA_256' }))).toBe('InvalidKeyUsageException');
    expect(errorName(() => kms.invoke('Sign', { KeyId: k.rsaSig, Message: msg, SigningAlgorithm: 'ECDSA_SHA_256' }))).toBe('InvalidKeyUsageException');
    expect(errorName(() => kms.invoke('GenerateMac', { KeyId: k.hmac, Message: msg, MacAlgorithm: 'HMAC_SHA_512' }))).toBe('InvalidKeyUsageException');
    expect(errorName(() => kms.invoke('Encrypt', { KeyId: k.rsaEnc, Plaintext: msg }))).toBe('InvalidKeyUsageException');
    expect(errorName(() => kms.invoke('Encrypt', { KeyId: k.sym, Plaintext: msg, EncryptionAlgorithm: 'RSAES_OAEP_SHA_1' }))).toBe('InvalidKeyUsageException');
    // Enum values that do not exist at all are ValidationException.
    expect(errorName(() => kms.invoke('Sign', { KeyId: k.ecSig, Message: msg, SigningAlgorithm: 'ECDSA_SHA_1' }))).toBe('ValidationException');
    expect(errorName(() => kms.invoke('Sign', { KeyId: k.ecSig, Message: msg }))).toBe('ValidationException');
    expect(errorName(() => kms.invoke('GenerateDataKeyPair', { KeyId: k.sym, KeyPairSpec: 'SM2' }))).toBe('UnsupportedOperationException');
  });

  it('messages too long, DIGEST of the wrong length, and too much RSA plaintext are ValidationException', () => {
    const { kms, k } = setup();
    const big = Buffer.alloc(4097);
    expect(errorName(() => kms.invoke('Sign', { KeyId: k.ecSig, Message: big, SigningAlgorithm: 'ECDSA_SHA_256' }))).toBe('ValidationException');
    expect(errorName(() => kms.invoke('Verify', { KeyId: k.ecSig, Message: big, Signature: Buffer.alloc(8), SigningAlgorithm: 'ECDSA_SHA_256' }))).toBe(
      'ValidationException',
    );
    expect(errorName(() => kms.invoke('GenerateMac', { KeyId: k.hmac, Message: big, MacAlgorithm: 'HMAC_SHA_256' }))).toBe('ValidationException');
    expect(kms.invoke('Sign', { KeyId: k.ecSig, Message: Buffer.alloc(4096), SigningAlgorithm: 'ECDSA_SHA_256' }).Signature.length).toBeGreaterThan(60);
    expect(errorName(() => kms.invoke('Sign', { KeyId: k.ecSig, Message: digest.subarray(1), MessageType: 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_256' }))).toBe(
      'ValidationException',
    );
    expect(
      errorName(() =>
        kms.invoke('Sign', { KeyId: k.rsaSig, Message: Buffer.concat([digest, digest]), MessageType: 'DIGEST', SigningAlgorithm: 'RSASSA_PSS_SHA_256' }),
      ),
    ).toBe('ValidationException');
    expect(errorName(() => kms.invoke('Encrypt', { KeyId: k.rsaEnc, Plaintext: Buffer.alloc(191), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }))).toBe(
      'ValidationException',
    );
    expect(kms.invoke('Encrypt', { KeyId: k.rsaEnc, Plaintext: Buffer.alloc(190), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }).CiphertextBlob.length).toBe(256);
    // Asymmetric keys take no encryption context.
    expect(
      errorName(() => kms.invoke('Encrypt', { KeyId: k.rsaEnc, Plaintext: msg, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256', EncryptionContext: { a: 'b' } })),
    ).toBe('ValidationException');
  });

  it('disabled keys answer DisabledException and keys pending deletion KMSInvalidStateException, for every operation', () => {
    const { kms, k, reqs } = setup();
    for (const id of Object.values(k)) kms.invoke('DisableKey', { KeyId: id });
    for (const [op, id, req] of reqs)
      expect(
        errorName(() => kms.invoke(op as never, { ...req, KeyId: id })),
        op,
      ).toBe('DisabledException');
    for (const id of Object.values(k)) kms.invoke('ScheduleKeyDeletion', { KeyId: id, PendingWindowInDays: 7 });
    for (const [op, id, req] of reqs)
      expect(
        errorName(() => kms.invoke(op as never, { ...req, KeyId: id })),
        op,
      ).toBe('KMSInvalidStateException');
  });

  it('a grant that allows Verify but not Sign; GenerateMac but not VerifyMac', () => {
    const { kms, k, reqs } = setup();
    const call = (op: string) => () => {
      const [, id, req] = reqs.find(([o]) => o === op)!;
      return kms.invokeAs(APP, op as never, { ...req, KeyId: id });
    };
    expect(errorName(call('Verify'))).toBe('AccessDeniedException');
    kms.invoke('CreateGrant', { KeyId: k.ecSig, GranteePrincipal: APP, Operations: ['Verify', 'GetPublicKey'] });
    kms.invoke('CreateGrant', { KeyId: k.hmac, GranteePrincipal: APP, Operations: ['GenerateMac'] });
    expect((call('Verify')() as { SignatureValid: boolean }).SignatureValid).toBe(true);
    expect((call('GetPublicKey')() as { PublicKey: Uint8Array }).PublicKey.length).toBe(91);
    expect(errorName(call('Sign'))).toBe('AccessDeniedException');
    expect((call('GenerateMac')() as { Mac: Uint8Array }).Mac.length).toBe(32);
    expect(errorName(call('VerifyMac'))).toBe('AccessDeniedException');
    expect(errorName(call('DeriveSharedSecret'))).toBe('AccessDeniedException');
    expect(errorName(call('GenerateDataKeyPair'))).toBe('AccessDeniedException');
  });

  it('CreateGrant refuses operations the key cannot perform', () => {
    const { kms, k } = setup();
    const grant = (id: string, ops: string[]) => () => kms.invoke('CreateGrant', { KeyId: id, GranteePrincipal: APP, Operations: ops });
    expect(errorName(grant(k.sym, ['Sign']))).toBe('ValidationException');
    expect(errorName(grant(k.rsaSig, ['Decrypt']))).toBe('ValidationException');
    expect(errorName(grant(k.rsaEnc, ['GenerateDataKey']))).toBe('ValidationException');
    expect(errorName(grant(k.hmac, ['GetPublicKey']))).toBe('ValidationException');
    expect(errorName(grant(k.ecdh, ['Sign']))).toBe('ValidationException');
    expect(grant(k.rsaEnc, ['Decrypt', 'GetPublicKey', 'DescribeKey'])().GrantId).toMatch(/^[0-9a-f]{64}$/);
    expect(grant(k.ecdh, ['DeriveSharedSecret'])().GrantId).toMatch(/^[0-9a-f]{64}$/);
  });

  it('a policy Deny wins over the account statement, per action', () => {
    const { kms, k, reqs } = setup();
    createAccessKey(kms.ctx, 'eve'); // an administrator by her identity policy: only the key policy's Deny stops her
    const policy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCT}:root` }, Action: 'kms:*', Resource: '*' },
        {
          Sid: 'No use by eve',
          Effect: 'Deny',
          Principal: { AWS: EVE },
          Action: ['kms:Sign', 'kms:GenerateMac', 'kms:DeriveSharedSecret', 'kms:GenerateDataKeyPair*', 'kms:Encrypt'],
          Resource: '*',
        },
      ],
    });
    for (const id of Object.values(k)) kms.invoke('PutKeyPolicy', { KeyId: id, Policy: policy });
    for (const [op, id, req] of reqs) {
      const denied = ['Sign', 'GenerateMac', 'DeriveSharedSecret', 'GenerateDataKeyPair', 'GenerateDataKeyPairWithoutPlaintext', 'Encrypt'].includes(op);
      const run = () => kms.invokeAs(EVE, op as never, { ...req, KeyId: id });
      if (denied) expect(errorName(run), op).toBe('AccessDeniedException');
      else expect(run(), op).toBeTruthy();
    }
  });

  it('policy conditions on kms:SigningAlgorithm and kms:MacAlgorithm decide per algorithm', () => {
    const { kms, k } = setup();
    const policy = (cond: object) =>
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCT}:root` }, Action: 'kms:*', Resource: '*' },
          { Sid: 'Only PSS', Effect: 'Deny', Principal: { AWS: '*' }, Action: ['kms:Sign', 'kms:GenerateMac'], Resource: '*', Condition: cond },
        ],
      });
    kms.invoke('PutKeyPolicy', { KeyId: k.rsaSig, Policy: policy({ StringNotLike: { 'kms:SigningAlgorithm': 'RSASSA_PSS_*' } }) });
    expect(kms.invoke('Sign', { KeyId: k.rsaSig, Message: msg, SigningAlgorithm: 'RSASSA_PSS_SHA_512' }).SigningAlgorithm).toBe('RSASSA_PSS_SHA_512');
    expect(errorName(() => kms.invoke('Sign', { KeyId: k.rsaSig, Message: msg, SigningAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_256' }))).toBe('AccessDeniedException');
    kms.invoke('PutKeyPolicy', { KeyId: k.hmac, Policy: policy({ StringEquals: { 'kms:MacAlgorithm': 'HMAC_SHA_256' } }) });
    expect(errorName(() => kms.invoke('GenerateMac', { KeyId: k.hmac, Message: msg, MacAlgorithm: 'HMAC_SHA_256' }))).toBe('AccessDeniedException');
  });

  it('DryRun checks the call and changes nothing (no last-usage record)', () => {
    const { kms, k, reqs, clock } = setup();
    clock.advance(DAY);
    for (const [op, id, req] of reqs) {
      if (op === 'GetPublicKey') continue;
      expect(
        errorName(() => kms.invoke(op as never, { ...req, KeyId: id, DryRun: true })),
        op,
      ).toBe('DryRunOperationException');
    }
    expect(kms.invoke('GetKeyLastUsage', { KeyId: k.ecdh }).KeyLastUsage).toEqual({});
    expect(kms.invoke('GetKeyLastUsage', { KeyId: k.ecSig }).KeyLastUsage.Timestamp).toEqual(new Date('2030-01-01T00:00:00Z'));
    // A DryRun that would fail fails as the real call would.
    expect(errorName(() => kms.invoke('Sign', { KeyId: k.hmac, Message: msg, SigningAlgorithm: 'ECDSA_SHA_256', DryRun: true }))).toBe(
      'InvalidKeyUsageException',
    );
  });
});

function wrapKeyWrap(publicKeyDer: Uint8Array, material: Buffer): Buffer {
  const key = crypto.createPublicKey({ key: Buffer.from(publicKeyDer), format: 'der', type: 'spki' });
  const aes = crypto.randomBytes(32);
  const c = crypto.createCipheriv('id-aes256-wrap-pad', aes, Buffer.from('a65959a6', 'hex'));
  return Buffer.concat([
    crypto.publicEncrypt({ key, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, aes),
    c.update(material),
    c.final(),
  ]);
}

describe('ReEncrypt with RSA keys', () => {
  it('re-encrypts from a symmetric key to an RSA key and back, with the algorithms named', () => {
    const { kms, k } = setup();
    const blob = kms.invoke('Encrypt', { KeyId: k.sym, Plaintext: msg, EncryptionContext: { a: 'b' } }).CiphertextBlob;
    const toRsa = kms.invoke('ReEncrypt', {
      CiphertextBlob: blob,
      SourceEncryptionContext: { a: 'b' },
      DestinationKeyId: k.rsaEnc,
      DestinationEncryptionAlgorithm: 'RSAES_OAEP_SHA_1',
    });
    expect(toRsa).toMatchObject({ SourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT', DestinationEncryptionAlgorithm: 'RSAES_OAEP_SHA_1' });
    expect(toRsa.CiphertextBlob.length).toBe(256);
    expect(
      Buffer.from(kms.invoke('Decrypt', { KeyId: k.rsaEnc, CiphertextBlob: toRsa.CiphertextBlob, EncryptionAlgorithm: 'RSAES_OAEP_SHA_1' }).Plaintext).equals(
        msg,
      ),
    ).toBe(true);
    const back = kms.invoke('ReEncrypt', {
      CiphertextBlob: toRsa.CiphertextBlob,
      SourceKeyId: k.rsaEnc,
      SourceEncryptionAlgorithm: 'RSAES_OAEP_SHA_1',
      DestinationKeyId: k.sym,
    });
    expect(back.SourceKeyId).toContain(k.rsaEnc);
    expect(Buffer.from(kms.invoke('Decrypt', { CiphertextBlob: back.CiphertextBlob }).Plaintext).equals(msg)).toBe(true);
    // The RSA ciphertext does not name its key: without SourceKeyId it is refused.
    expect(
      errorName(() =>
        kms.invoke('ReEncrypt', { CiphertextBlob: toRsa.CiphertextBlob, SourceEncryptionAlgorithm: 'RSAES_OAEP_SHA_1', DestinationKeyId: k.sym }),
      ),
    ).toBe('ValidationException');
    expect(
      errorName(() =>
        kms.invoke('ReEncrypt', {
          CiphertextBlob: toRsa.CiphertextBlob,
          SourceKeyId: k.sym,
          SourceEncryptionAlgorithm: 'RSAES_OAEP_SHA_1',
          DestinationKeyId: k.sym,
        }),
      ),
    ).toBe('InvalidKeyUsageException');
    expect(errorName(() => kms.invoke('ReEncrypt', { CiphertextBlob: toRsa.CiphertextBlob, DestinationKeyId: k.sym }))).toBe('InvalidCiphertextException');
    // A destination algorithm the destination key lacks.
    expect(errorName(() => kms.invoke('ReEncrypt', { CiphertextBlob: blob, SourceEncryptionContext: { a: 'b' }, DestinationKeyId: k.rsaEnc }))).toBe(
      'InvalidKeyUsageException',
    );
  });
});

describe('import and multi-Region for asymmetric and HMAC keys', () => {
  it('imports an ECC private key (PKCS#8) and HMAC bytes into EXTERNAL keys of their spec, and refuses material of another spec', () => {
    const { kms } = testKms();
    const imp = (spec: string, usage: string, material: Buffer) => {
      const id = kms.invoke('CreateKey', { KeySpec: spec, KeyUsage: usage, Origin: 'EXTERNAL' }).KeyMetadata.KeyId;
      expect(kms.invoke('DescribeKey', { KeyId: id }).KeyMetadata.KeyState).toBe('PendingImport');
      const p = kms.invoke('GetParametersForImport', { KeyId: id, WrappingAlgorithm: 'RSA_AES_KEY_WRAP_SHA_256', WrappingKeySpec: 'RSA_3072' });
      return {
        id,
        run: () =>
          kms.invoke('ImportKeyMaterial', {
            KeyId: id,
            ImportToken: p.ImportToken,
            EncryptedKeyMaterial: wrapKeyWrap(p.PublicKey, material),
            ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
          }),
      };
    };
    const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const e = imp('ECC_NIST_P384', 'SIGN_VERIFY', ec.privateKey.export({ type: 'pkcs8', format: 'der' }));
    e.run();
    const sig = kms.invoke('Sign', { KeyId: e.id, Message: msg, SigningAlgorithm: 'ECDSA_SHA_384' }).Signature;
    expect(crypto.verify('sha384', msg, ec.publicKey, sig)).toBe(true);
    const hk = crypto.randomBytes(48);
    const h = imp('HMAC_384', 'GENERATE_VERIFY_MAC', hk);
    h.run();
    expect(
      Buffer.from(kms.invoke('GenerateMac', { KeyId: h.id, Message: msg, MacAlgorithm: 'HMAC_SHA_384' }).Mac).equals(
        crypto.createHmac('sha384', hk).update(msg).digest(),
      ),
    ).toBe(true);
    expect(errorName(imp('HMAC_256', 'GENERATE_VERIFY_MAC', hk).run)).toBe('IncorrectKeyMaterialException');
    expect(errorName(imp('ECC_NIST_P256', 'SIGN_VERIFY', ec.privateKey.export({ type: 'pkcs8', format: 'der' })).run)).toBe('IncorrectKeyMaterialException');
  });

  it('a multi-Region ECC signing key signs in its replica region with the same key pair', () => {
    const { kms, home, clock } = testKms();
    const id = kms.invoke('CreateKey', { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY', MultiRegion: true }).KeyMetadata.KeyId;
    expect(id).toMatch(/^mrk-/);
    const replica = kms.invoke('ReplicateKey', { KeyId: id, ReplicaRegion: 'eu-west-1' }).ReplicaKeyMetadata;
    expect(replica).toMatchObject({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY', SigningAlgorithms: ['ECDSA_SHA_256'] });
    const eu = Kms.open({ home, clock, region: 'eu-west-1' });
    onCleanup(() => eu.close());
    const sig = eu.invoke('Sign', { KeyId: id, Message: msg, SigningAlgorithm: 'ECDSA_SHA_256' }).Signature;
    expect(Buffer.from(eu.invoke('GetPublicKey', { KeyId: id }).PublicKey).equals(Buffer.from(kms.invoke('GetPublicKey', { KeyId: id }).PublicKey))).toBe(true);
    expect(kms.invoke('Verify', { KeyId: id, Message: msg, Signature: sig, SigningAlgorithm: 'ECDSA_SHA_256' }).SignatureValid).toBe(true);
  });
});
