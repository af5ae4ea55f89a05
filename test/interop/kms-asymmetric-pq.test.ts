import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { errorName, tempHome, testKms } from '../helpers/home.js';

/**
 * Ed25519 (ECC_NIST_EDWARDS25519) and ML-DSA (ML_DSA_44/65/87) keys, each
 * signature checked by an implementation other than the one that signed:
 * pure Ed25519 by `openssl pkeyutl`, Ed25519ph (signed by @noble/curves) by
 * this file's own RFC 8032 arithmetic, ML-DSA (signed by @noble/post-quantum)
 * by liboqs (its C code, built to WebAssembly, in @oqs/liboqs-js).
 */
function openssl(args: string[]) {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

// RFC 8032's Ed25519 verification (section 5.1.7), for Ed25519ph (section 5.1: dom2(1, ""), PH = SHA-512).
const P = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const mod = (x: bigint) => ((x % P) + P) % P;
function pow(b: bigint, e: bigint): bigint {
  let r = 1n;
  for (b = mod(b); e > 0n; e >>= 1n, b = mod(b * b)) if (e & 1n) r = mod(r * b);
  return r;
}
const inv = (x: bigint) => pow(x, P - 2n);
const D = mod(-121665n * inv(121666n));
type Pt = [bigint, bigint];
const le = (b: Uint8Array) => BigInt(`0x${Buffer.from(b).reverse().toString('hex')}`);
function decode(b: Uint8Array): Pt {
  const n = le(b);
  const y = n & ((1n << 255n) - 1n);
  if (y >= P) throw new Error('y out of range');
  const x2 = mod((y * y - 1n) * inv(D * y * y + 1n));
  let x = pow(x2, (P + 3n) / 8n);
  if (mod(x * x - x2) !== 0n) x = mod(x * pow(2n, (P - 1n) / 4n));
  if (mod(x * x - x2) !== 0n) throw new Error('not a point');
  if ((x & 1n) !== n >> 255n) x = mod(-x);
  return [x, y];
}
function add([x1, y1]: Pt, [x2, y2]: Pt): Pt {
  const t = mod(D * x1 * x2 * y1 * y2);
  return [mod((x1 * y2 + y1 * x2) * inv(1n + t)), mod((y1 * y2 + x1 * x2) * inv(1n - t))];
}
function mul(k: bigint, p: Pt): Pt {
  let r: Pt = [0n, 1n];
  for (let q = p; k > 0n; k >>= 1n, q = add(q, q)) if (k & 1n) r = add(r, q);
  return r;
}
const B = decode(Buffer.from('5866666666666666666666666666666666666666666666666666666666666666', 'hex'));
function ed25519phVerify(publicKey: Buffer, message: Buffer, signature: Buffer): boolean {
  if (signature.length !== 64) return false;
  const S = le(signature.subarray(32));
  if (S >= L) return false;
  const dom2 = Buffer.concat([Buffer.from('SigEd25519 no Ed25519 collisions'), Buffer.from([1, 0])]);
  const ph = crypto.createHash('sha512').update(message).digest();
  const k = le(crypto.createHash('sha512').update(dom2).update(signature.subarray(0, 32)).update(publicKey).update(ph).digest()) % L;
  const [lx, ly] = mul(S, B);
  const [rx, ry] = add(decode(signature.subarray(0, 32)), mul(k, decode(publicKey)));
  return lx === rx && ly === ry;
}

function ed25519Key() {
  const t = testKms();
  const md = t.kms.invoke('CreateKey', { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' }).KeyMetadata;
  expect(md.SigningAlgorithms).toEqual(['ED25519_SHA_512', 'ED25519_PH_SHA_512']);
  const der = Buffer.from(t.kms.invoke('GetPublicKey', { KeyId: md.KeyId }).PublicKey!);
  return { ...t, id: md.KeyId, der };
}

describe('ECC_NIST_EDWARDS25519', () => {
  it('ED25519_SHA_512 (RAW) signatures verify with openssl pkeyutl against the GetPublicKey key; a changed byte does not', () => {
    const { kms, id, der } = ed25519Key();
    const dir = tempHome('kmsvol-ed25519-');
    const file = (n: string) => path.join(dir, n);
    fs.writeFileSync(file('pub.der'), der);
    const conv = openssl(['pkey', '-pubin', '-inform', 'DER', '-in', file('pub.der'), '-out', file('pub.pem')]);
    expect(conv.code, conv.out).toBe(0);
    expect(openssl(['pkey', '-pubin', '-in', file('pub.pem'), '-noout', '-text']).out).toContain('ED25519 Public-Key');
    const message = crypto.randomBytes(4096);
    fs.writeFileSync(file('msg'), message);
    const sig = kms.invoke('Sign', { KeyId: id, Message: message, SigningAlgorithm: 'ED25519_SHA_512' }).Signature!;
    expect(sig.length).toBe(64);
    fs.writeFileSync(file('sig'), sig);
    const verify = () => openssl(['pkeyutl', '-verify', '-pubin', '-inkey', file('pub.pem'), '-rawin', '-in', file('msg'), '-sigfile', file('sig')]);
    expect(verify()).toMatchObject({ code: 0, out: expect.stringContaining('Signature Verified Successfully') });
    expect(kms.invoke('Verify', { KeyId: id, Message: message, Signature: sig, SigningAlgorithm: 'ED25519_SHA_512' }).SignatureValid).toBe(true);
    const bad = Buffer.from(sig);
    bad[10]! ^= 1;
    fs.writeFileSync(file('sig'), bad);
    expect(verify().code).not.toBe(0);
    expect(errorName(() => kms.invoke('Verify', { KeyId: id, Message: message, Signature: bad, SigningAlgorithm: 'ED25519_SHA_512' }))).toBe(
      'KMSInvalidSignatureException',
    );
  });

  it('ED25519_PH_SHA_512 signs a 64-byte DIGEST as Ed25519ph of it (hashed again), checked by RFC 8032 arithmetic', () => {
    const { kms, id, der } = ed25519Key();
    const pub = der.subarray(der.length - 32);
    const digest = crypto.createHash('sha512').update('a message signed through its digest').digest();
    const sig = Buffer.from(kms.invoke('Sign', { KeyId: id, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: 'ED25519_PH_SHA_512' }).Signature!);
    expect(ed25519phVerify(pub, digest, sig)).toBe(true);
    const other = Buffer.from(digest);
    other[0]! ^= 1;
    expect(ed25519phVerify(pub, other, sig)).toBe(false);
    // Not a pure Ed25519 signature of the digest: the prehash and dom2 are part of it.
    expect(crypto.verify(null, digest, crypto.createPublicKey({ key: der, format: 'der', type: 'spki' }), sig)).toBe(false);
    expect(
      kms.invoke('Verify', { KeyId: id, Message: digest, MessageType: 'DIGEST', Signature: sig, SigningAlgorithm: 'ED25519_PH_SHA_512' }).SignatureValid,
    ).toBe(true);
  });

  it('each algorithm takes only its message type, a digest is 64 bytes, and GenerateDataKeyPair makes Ed25519 pairs', () => {
    const { kms, id } = ed25519Key();
    const sign = (req: Record<string, unknown>) => () => kms.invoke('Sign', { KeyId: id, Message: crypto.randomBytes(64), ...req });
    expect(errorName(sign({ SigningAlgorithm: 'ED25519_SHA_512', MessageType: 'DIGEST' }))).toBe('ValidationException');
    expect(errorName(sign({ SigningAlgorithm: 'ED25519_PH_SHA_512', MessageType: 'RAW' }))).toBe('ValidationException');
    expect(errorName(sign({ SigningAlgorithm: 'ED25519_PH_SHA_512', MessageType: 'DIGEST', Message: crypto.randomBytes(32) }))).toBe('ValidationException');
    expect(errorName(sign({ SigningAlgorithm: 'ECDSA_SHA_512' }))).toBe('InvalidKeyUsageException');
    expect(errorName(() => kms.invoke('CreateKey', { KeySpec: 'ECC_NIST_EDWARDS25519' }))).toBe('ValidationException');
    const sym = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    const pair = kms.invoke('GenerateDataKeyPair', { KeyId: sym, KeyPairSpec: 'ECC_NIST_EDWARDS25519' });
    const priv = crypto.createPrivateKey({ key: Buffer.from(pair.PrivateKeyPlaintext!), format: 'der', type: 'pkcs8' });
    expect(priv.asymmetricKeyType).toBe('ed25519');
    expect(crypto.createPublicKey(priv).export({ type: 'spki', format: 'der' })).toEqual(Buffer.from(pair.PublicKey!));
  });
});

type Oqs = { verify(m: Uint8Array, s: Uint8Array, pk: Uint8Array): boolean; destroy(): void };
const SIZES = { ML_DSA_44: [1312, 2420, 'createMLDSA44'], ML_DSA_65: [1952, 3309, 'createMLDSA65'], ML_DSA_87: [2592, 4627, 'createMLDSA87'] } as const;
const OIDS = { ML_DSA_44: '2.16.840.1.101.3.4.3.17', ML_DSA_65: '2.16.840.1.101.3.4.3.18', ML_DSA_87: '2.16.840.1.101.3.4.3.19' };

describe('ML-DSA', () => {
  it.each(Object.keys(SIZES) as (keyof typeof SIZES)[])('%s: RAW and EXTERNAL_MU signatures verify with liboqs', async (spec) => {
    const [pkBytes, sigBytes, factory] = SIZES[spec];
    const { kms } = testKms();
    const md = kms.invoke('CreateKey', { KeySpec: spec, KeyUsage: 'SIGN_VERIFY' }).KeyMetadata;
    expect(md).toMatchObject({ KeySpec: spec, SigningAlgorithms: ['ML_DSA_SHAKE_256'] });
    const der = Buffer.from(kms.invoke('GetPublicKey', { KeyId: md.KeyId }).PublicKey!);
    // The SubjectPublicKeyInfo names the parameter set by its NIST OID (read by openssl asn1parse, not by our code).
    const dir = tempHome('kmsvol-mldsa-');
    fs.writeFileSync(path.join(dir, 'pub.der'), der);
    const asn1 = openssl(['asn1parse', '-inform', 'DER', '-in', path.join(dir, 'pub.der')]);
    expect(asn1.out).toContain(OIDS[spec]);
    expect(asn1.out).toContain(`BIT STRING`);
    const pk = der.subarray(der.length - pkBytes);
    const oqs = (await import('@oqs/liboqs-js')) as unknown as Record<string, () => Promise<Oqs>>;
    const verifier = await oqs[factory]!();
    try {
      const message = crypto.randomBytes(4096);
      const sig = kms.invoke('Sign', { KeyId: md.KeyId, Message: message, SigningAlgorithm: 'ML_DSA_SHAKE_256' }).Signature!;
      expect(sig.length).toBe(sigBytes);
      expect(verifier.verify(new Uint8Array(message), new Uint8Array(sig), new Uint8Array(pk))).toBe(true);
      const bad = new Uint8Array(sig);
      bad[100]! ^= 1;
      expect(verifier.verify(new Uint8Array(message), bad, new Uint8Array(pk))).toBe(false);
      // μ = SHAKE256(SHAKE256(pk, 64) || 0x00 || 0x00 || M, 64) (FIPS 204, ML-DSA.Sign with an empty context).
      const tr = crypto.createHash('shake256', { outputLength: 64 }).update(pk).digest();
      const mu = crypto
        .createHash('shake256', { outputLength: 64 })
        .update(tr)
        .update(Buffer.from([0, 0]))
        .update(message)
        .digest();
      const muSig = kms.invoke('Sign', { KeyId: md.KeyId, Message: mu, MessageType: 'EXTERNAL_MU', SigningAlgorithm: 'ML_DSA_SHAKE_256' }).Signature!;
      expect(verifier.verify(new Uint8Array(message), new Uint8Array(muSig), new Uint8Array(pk))).toBe(true);
      expect(kms.invoke('Verify', { KeyId: md.KeyId, Message: message, Signature: muSig, SigningAlgorithm: 'ML_DSA_SHAKE_256' }).SignatureValid).toBe(true);
      expect(errorName(() => kms.invoke('Verify', { KeyId: md.KeyId, Message: message, Signature: bad, SigningAlgorithm: 'ML_DSA_SHAKE_256' }))).toBe(
        'KMSInvalidSignatureException',
      );
      const sign = (req: Record<string, unknown>) => () => kms.invoke('Sign', { KeyId: md.KeyId, SigningAlgorithm: 'ML_DSA_SHAKE_256', ...req });
      expect(errorName(sign({ Message: mu, MessageType: 'DIGEST' }))).toBe('ValidationException');
      expect(errorName(sign({ Message: message.subarray(0, 32), MessageType: 'EXTERNAL_MU' }))).toBe('ValidationException');
    } finally {
      verifier.destroy();
    }
  });

  it('ML-KEM key specs are still refused, naming what to use', () => {
    const { kms } = testKms();
    expect(errorName(() => kms.invoke('CreateKey', { KeySpec: 'ML_KEM_768', KeyUsage: 'KEY_ENCAPSULATION' }))).toBe('UnsupportedOperationException');
  });
});
