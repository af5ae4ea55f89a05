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
    for (const [type, m] of [['RAW', message], ['DIGEST', digest]] as const) {
      const s = kms.invoke('Sign', { KeyId: md.Arn, Message: m, MessageType: type, SigningAlgorithm: alg });
      expect(s.SigningAlgorithm).toBe(alg);
      fs.writeFileSync(path.join(dir, `sig-${type}`), s.Signature);
      const v = openssl(['dgst', `-${hash}`, '-verify', path.join(dir, 'pub.pem'), ...pss, '-signature', path.join(dir, `sig-${type}`), path.join(dir, 'msg')]);
      expect(v.stdout.trim(), `${type}: ${v.stderr}`).toBe('Verified OK');
      // Our own Verify accepts it in either form (a message and its digest are the same message).
      expect(kms.invoke('Verify', { KeyId: md.KeyId, Message: message, Signature: s.Signature, SigningAlgorithm: alg }).SignatureValid).toBe(true);
      expect(kms.invoke('Verify', { KeyId: md.KeyId, Message: digest, MessageType: 'DIGEST', Signature: s.Signature, SigningAlgorithm: alg }).SignatureValid).toBe(true);
      // A tampered signature, and another message, are refused.
      const bad = Buffer.from(s.Signature);
      bad[bad.length - 5]! ^= 1;
      expect(errorName(() => kms.invoke('Verify', { KeyId: md.KeyId, Message: message, Signature: bad, SigningAlgorithm: alg }))).toBe('KMSInvalidSignatureException');
      expect(errorName(() => kms.invoke('Verify', { KeyId: md.KeyId, Message: digest, MessageType: 'DIGEST', Signature: bad, SigningAlgorithm: alg }))).toBe('KMSInvalidSignatureException');
      expect(errorName(() => kms.invoke('Verify', { KeyId: md.KeyId, Message: Buffer.from('other'), Signature: s.Signature, SigningAlgorithm: alg }))).toBe('KMSInvalidSignatureException');
    }
    // openssl's own tampering check: a changed message fails openssl too.
    fs.writeFileSync(path.join(dir, 'msg'), Buffer.concat([message, Buffer.from('x')]));
    expect(openssl(['dgst', `-${hash}`, '-verify', path.join(dir, 'pub.pem'), ...pss, '-signature', path.join(dir, 'sig-RAW'), path.join(dir, 'msg')]).stdout.trim()).toBe('Verification failure');
  });

  it('an ECDSA DIGEST signature verifies with openssl pkeyutl -verify', () => {
    const { kms } = testKms();
    const dir = tempHome('kmsvol-openssl-');
    const id = kms.invoke('CreateKey', { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }).KeyMetadata.KeyId;
    const digest = crypto.createHash('sha256').update('hello').digest();
    fs.writeFileSync(path.join(dir, 'pub.der'), kms.invoke('GetPublicKey', { KeyId: id }).PublicKey);
    fs.writeFileSync(path.join(dir, 'dgst'), digest);
    fs.writeFileSync(path.join(dir, 'sig'), kms.invoke('Sign', { KeyId: id, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_256' }).Signature);
    const v = openssl(['pkeyutl', '-verify', '-pubin', '-keyform', 'DER', '-inkey', path.join(dir, 'pub.der'), '-in', path.join(dir, 'dgst'), '-sigfile', path.join(dir, 'sig')]);
    expect(v.stdout.trim(), v.stderr).toBe('Signature Verified Successfully');
  });
});
