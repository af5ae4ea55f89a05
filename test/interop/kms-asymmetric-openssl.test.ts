import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { errorName, tempHome, testKms } from '../helpers/home.js';

/**
 * openssl is the oracle: signatures from Sign verify with `openssl dgst`
 * against the DER public key from GetPublicKey, for every signing
 * algorithm and both message types.
 */
function openssl(args: string[], input?: Buffer) {
  const r = spawnSync('openssl', args, { input, encoding: 'buffer' });
  return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString(), raw: r.stdout };
}

const HASH: Record<string, string> = { SHA_256: 'sha256', SHA_384: 'sha384', SHA_512: 'sha512' };
const CASES: [string, string][] = [
  ['RSA_2048', 'RSASSA_PKCS1_V1_5_SHA_256'],
  ['RSA_2048', 'RSASSA_PKCS1_V1_5_SHA_384'],
  ['RSA_2048', 'RSASSA_PKCS1_V1_5_SHA_512'],
  ['RSA_2048', 'RSASSA_PSS_SHA_256'],
  ['RSA_2048', 'RSASSA_PSS_SHA_384'],
  ['RSA_2048', 'RSASSA_PSS_SHA_512'],
  ['RSA_3072', 'RSASSA_PSS_SHA_256'],
  ['RSA_4096', 'RSASSA_PKCS1_V1_5_SHA_512'],
  ['ECC_NIST_P256', 'ECDSA_SHA_256'],
  ['ECC_NIST_P384', 'ECDSA_SHA_384'],
  ['ECC_NIST_P521', 'ECDSA_SHA_512'],
  ['ECC_SECG_P256K1', 'ECDSA_SHA_256'],
];

describe('Sign and GetPublicKey agree with openssl', () => {
  it.each(CASES)('%s %s: RAW and DIGEST signatures verify with openssl dgst -verify', (spec, alg) => {
    const { kms } = testKms();
    const dir = tempHome('kmsvol-openssl-');
    const md = kms.invoke('CreateKey', { KeySpec: spec, KeyUsage: 'SIGN_VERIFY' }).KeyMetadata;
    expect(md.KeySpec).toBe(spec);
    expect(md.KeyUsage).toBe('SIGN_VERIFY');
    expect(md.SigningAlgorithms).toContain(alg);
    const pub = kms.invoke('GetPublicKey', { KeyId: md.KeyId });
    expect(pub.SigningAlgorithms).toEqual(md.SigningAlgorithms);
    fs.writeFileSync(path.join(dir, 'pub.der'), pub.PublicKey);
    const conv = openssl(['pkey', '-pubin', '-inform', 'DER', '-in', path.join(dir, 'pub.der'), '-out', path.join(dir, 'pub.pem')]);
    expect(conv.stderr).toBe('');
    expect(conv.code).toBe(0);
    const hash = HASH[alg.slice(-7)]!;
    const message = crypto.randomBytes(1000);
    fs.writeFileSync(path.join(dir, 'msg'), message);
    const pss = alg.startsWith('RSASSA_PSS') ? ['-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:-1'] : [];
    const digest = crypto.createHash(hash).update(message).digest();
    for (const [type, m] of [
      ['RAW', message],
      ['DIGEST', digest],
    ] as const) {
      const s = kms.invoke('Sign', { KeyId: md.Arn, Message: m, MessageType: type, SigningAlgorithm: alg });
      expect(s.SigningAlgorithm).toBe(alg);
      fs.writeFileSync(path.join(dir, `sig-${type}`), s.Signature);
      const v = openssl(['dgst', `-${hash}`, '-verify', path.join(dir, 'pub.pem'), ...pss, '-signature', path.join(dir, `sig-${type}`), path.join(dir, 'msg')]);
      expect(v.stdout.trim(), `${type}: ${v.stderr}`).toBe('Verified OK');
      // Our own Verify accepts it in either form (a message and its digest are the same message).
      expect(kms.invoke('Verify', { KeyId: md.KeyId, Message: message, Signature: s.Signature, SigningAlgorithm: alg }).SignatureValid).toBe(true);
      expect(
        kms.invoke('Verify', { KeyId: md.KeyId, Message: digest, MessageType: 'DIGEST', Signature: s.Signature, SigningAlgorithm: alg }).SignatureValid,
      ).toBe(true);
      // A tampered signature, and another message, are refused.
      const bad = Buffer.from(s.Signature);
      bad[bad.length - 5]! ^= 1;
      expect(errorName(() => kms.invoke('Verify', { KeyId: md.KeyId, Message: message, Signature: bad, SigningAlgorithm: alg }))).toBe(
        'KMSInvalidSignatureException',
      );
      expect(errorName(() => kms.invoke('Verify', { KeyId: md.KeyId, Message: digest, MessageType: 'DIGEST', Signature: bad, SigningAlgorithm: alg }))).toBe(
        'KMSInvalidSignatureException',
      );
      expect(errorName(() => kms.invoke('Verify', { KeyId: md.KeyId, Message: Buffer.from('other'), Signature: s.Signature, SigningAlgorithm: alg }))).toBe(
        'KMSInvalidSignatureException',
      );
    }
    // openssl's own tampering check: a changed message fails openssl too.
    fs.writeFileSync(path.join(dir, 'msg'), Buffer.concat([message, Buffer.from('x')]));
    expect(
      openssl(['dgst', `-${hash}`, '-verify', path.join(dir, 'pub.pem'), ...pss, '-signature', path.join(dir, 'sig-RAW'), path.join(dir, 'msg')]).stdout.trim(),
    ).toBe('Verification failure');
  });

  it('an ECDSA DIGEST signature verifies with openssl pkeyutl -verify', () => {
    const { kms } = testKms();
    const dir = tempHome('kmsvol-openssl-');
    const id = kms.invoke('CreateKey', { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }).KeyMetadata.KeyId;
    const digest = crypto.createHash('sha256').update('hello').digest();
    fs.writeFileSync(path.join(dir, 'pub.der'), kms.invoke('GetPublicKey', { KeyId: id }).PublicKey);
    fs.writeFileSync(path.join(dir, 'dgst'), digest);
    fs.writeFileSync(
      path.join(dir, 'sig'),
      kms.invoke('Sign', { KeyId: id, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_256' }).Signature,
    );
    const v = openssl([
      'pkeyutl',
      '-verify',
      '-pubin',
      '-keyform',
      'DER',
      '-inkey',
      path.join(dir, 'pub.der'),
      '-in',
      path.join(dir, 'dgst'),
      '-sigfile',
      path.join(dir, 'sig'),
    ]);
    expect(v.stdout.trim(), v.stderr).toBe('Signature Verified Successfully');
  });
});

describe('RSA encryption, data key pairs and key agreement agree with openssl', () => {
  it.each([
    ['RSA_2048', 'RSAES_OAEP_SHA_1', 'sha1', 214],
    ['RSA_2048', 'RSAES_OAEP_SHA_256', 'sha256', 190],
    ['RSA_3072', 'RSAES_OAEP_SHA_256', 'sha256', 318],
    ['RSA_4096', 'RSAES_OAEP_SHA_1', 'sha1', 470],
  ] as const)(
    '%s %s (%s): openssl pkeyutl -encrypt with the public key gives ciphertext Decrypt accepts; Encrypt takes at most %s bytes',
    (spec, alg, md, max) => {
      const { kms } = testKms();
      const dir = tempHome('kmsvol-openssl-');
      const md0 = kms.invoke('CreateKey', { KeySpec: spec, KeyUsage: 'ENCRYPT_DECRYPT' }).KeyMetadata;
      expect(md0.EncryptionAlgorithms).toEqual(['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256']);
      fs.writeFileSync(path.join(dir, 'pub.der'), kms.invoke('GetPublicKey', { KeyId: md0.KeyId }).PublicKey);
      const pt = crypto.randomBytes(max);
      fs.writeFileSync(path.join(dir, 'pt'), pt);
      const enc = openssl([
        'pkeyutl',
        '-encrypt',
        '-pubin',
        '-keyform',
        'DER',
        '-inkey',
        path.join(dir, 'pub.der'),
        '-pkeyopt',
        'rsa_padding_mode:oaep',
        '-pkeyopt',
        `rsa_oaep_md:${md}`,
        '-in',
        path.join(dir, 'pt'),
        '-out',
        path.join(dir, 'ct'),
      ]);
      expect(enc.stderr).toBe('');
      const ct = fs.readFileSync(path.join(dir, 'ct'));
      const dec = kms.invoke('Decrypt', { KeyId: md0.Arn, CiphertextBlob: ct, EncryptionAlgorithm: alg });
      expect(Buffer.from(dec.Plaintext).equals(pt)).toBe(true);
      expect(dec.EncryptionAlgorithm).toBe(alg);
      // Without KeyId, or with the other OAEP hash, or changed, the ciphertext does not open.
      expect(errorName(() => kms.invoke('Decrypt', { CiphertextBlob: ct, EncryptionAlgorithm: alg }))).toBe('ValidationException');
      expect(errorName(() => kms.invoke('Decrypt', { CiphertextBlob: ct }))).toBe('InvalidCiphertextException');
      const other = alg === 'RSAES_OAEP_SHA_1' ? 'RSAES_OAEP_SHA_256' : 'RSAES_OAEP_SHA_1';
      expect(errorName(() => kms.invoke('Decrypt', { KeyId: md0.KeyId, CiphertextBlob: ct, EncryptionAlgorithm: other }))).toBe('InvalidCiphertextException');
      const bad = Buffer.from(ct);
      bad[10]! ^= 1;
      expect(errorName(() => kms.invoke('Decrypt', { KeyId: md0.KeyId, CiphertextBlob: bad, EncryptionAlgorithm: alg }))).toBe('InvalidCiphertextException');
      // Encrypt takes at most k - 2 hLen - 2 bytes, and its output round-trips.
      const c2 = kms.invoke('Encrypt', { KeyId: md0.KeyId, Plaintext: pt, EncryptionAlgorithm: alg });
      expect(Buffer.from(kms.invoke('Decrypt', { KeyId: md0.KeyId, CiphertextBlob: c2.CiphertextBlob, EncryptionAlgorithm: alg }).Plaintext).equals(pt)).toBe(
        true,
      );
      expect(errorName(() => kms.invoke('Encrypt', { KeyId: md0.KeyId, Plaintext: crypto.randomBytes(max + 1), EncryptionAlgorithm: alg }))).toBe(
        'ValidationException',
      );
    },
  );

  it.each(['RSA_2048', 'ECC_NIST_P256', 'ECC_NIST_P384', 'ECC_NIST_P521', 'ECC_SECG_P256K1'])(
    'GenerateDataKeyPair %s: the decrypted private key is PKCS#8 DER that openssl pkey parses, with the returned public key',
    (spec) => {
      const { kms } = testKms();
      const dir = tempHome('kmsvol-openssl-');
      const id = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
      const ctx = { purpose: 'test' };
      const pair = kms.invoke('GenerateDataKeyPair', { KeyId: id, KeyPairSpec: spec, EncryptionContext: ctx });
      expect(pair.KeyPairSpec).toBe(spec);
      const opened = kms.invoke('Decrypt', { CiphertextBlob: pair.PrivateKeyCiphertextBlob, EncryptionContext: ctx }).Plaintext;
      expect(Buffer.from(opened).equals(Buffer.from(pair.PrivateKeyPlaintext))).toBe(true);
      fs.writeFileSync(path.join(dir, 'priv.der'), opened);
      const text = openssl(['pkey', '-inform', 'DER', '-in', path.join(dir, 'priv.der'), '-noout', '-text']);
      expect(text.code, text.stderr).toBe(0);
      expect(text.stdout).toMatch(/Private-Key: \(\d+ bit/);
      const pub = openssl(['pkey', '-inform', 'DER', '-in', path.join(dir, 'priv.der'), '-pubout', '-outform', 'DER']);
      expect(pub.raw.equals(Buffer.from(pair.PublicKey))).toBe(true);
      // ...WithoutPlaintext: only the wrapped private key and the public key.
      const np = kms.invoke('GenerateDataKeyPairWithoutPlaintext', { KeyId: id, KeyPairSpec: spec, EncryptionContext: ctx });
      expect(Object.keys(np).sort()).toEqual(['KeyId', 'KeyMaterialId', 'KeyPairSpec', 'PrivateKeyCiphertextBlob', 'PublicKey']);
      fs.writeFileSync(path.join(dir, 'priv2.der'), kms.invoke('Decrypt', { CiphertextBlob: np.PrivateKeyCiphertextBlob, EncryptionContext: ctx }).Plaintext);
      expect(openssl(['pkey', '-inform', 'DER', '-in', path.join(dir, 'priv2.der'), '-pubout', '-outform', 'DER']).raw.equals(Buffer.from(np.PublicKey))).toBe(
        true,
      );
      expect(errorName(() => kms.invoke('Decrypt', { CiphertextBlob: np.PrivateKeyCiphertextBlob }))).toBe('InvalidCiphertextException');
    },
  );

  it.each([
    ['ECC_NIST_P256', 'P-256'],
    ['ECC_NIST_P384', 'P-384'],
    ['ECC_NIST_P521', 'P-521'],
  ])('DeriveSharedSecret %s agrees with openssl pkeyutl -derive on the other side', (spec, curve) => {
    const { kms } = testKms();
    const dir = tempHome('kmsvol-openssl-');
    const md = kms.invoke('CreateKey', { KeySpec: spec, KeyUsage: 'KEY_AGREEMENT' }).KeyMetadata;
    expect(md.KeyAgreementAlgorithms).toEqual(['ECDH']);
    fs.writeFileSync(path.join(dir, 'kms.der'), kms.invoke('GetPublicKey', { KeyId: md.KeyId }).PublicKey);
    expect(openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', `ec_paramgen_curve:${curve}`, '-out', path.join(dir, 'peer.pem')]).code).toBe(0);
    const peerPub = openssl(['pkey', '-in', path.join(dir, 'peer.pem'), '-pubout', '-outform', 'DER']).raw;
    const ours = kms.invoke('DeriveSharedSecret', { KeyId: md.KeyId, KeyAgreementAlgorithm: 'ECDH', PublicKey: peerPub });
    expect(ours.KeyAgreementAlgorithm).toBe('ECDH');
    expect(ours.KeyOrigin).toBe('AWS_KMS');
    const theirs = openssl(['pkeyutl', '-derive', '-inkey', path.join(dir, 'peer.pem'), '-peerkey', path.join(dir, 'kms.der'), '-peerform', 'DER']);
    expect(theirs.stderr).toBe('');
    expect(Buffer.from(ours.SharedSecret).equals(theirs.raw)).toBe(true);
    // A key on another curve is refused.
    const other = crypto
      .generateKeyPairSync('ec', { namedCurve: spec === 'ECC_NIST_P256' ? 'secp384r1' : 'prime256v1' })
      .publicKey.export({ type: 'spki', format: 'der' });
    expect(errorName(() => kms.invoke('DeriveSharedSecret', { KeyId: md.KeyId, KeyAgreementAlgorithm: 'ECDH', PublicKey: other }))).toBe('ValidationException');
  });
});
