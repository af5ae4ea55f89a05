import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { KmsError, KmsErrors } from './errors.js';
import { privateKeyOf, specInfo } from './keyspec.js';
import type { MlDsaSpec } from './mldsa.js';
import { mlDsaSign, mlDsaVerify } from './mldsa.js';

/**
 * The asymmetric primitives behind Sign, Verify and RSA Encrypt/Decrypt,
 * on node:crypto (OpenSSL). Two cases OpenSSL does not expose to Node are
 * done here: RSASSA-PSS over a given digest (EMSA-PSS of RFC 8017 with
 * the raw RSA operation) and ECDSA over a given digest (@noble/curves).
 * Private keys arrive as PKCS#8 DER material that the caller zeroes.
 */
export type MessageType = 'RAW' | 'DIGEST' | 'EXTERNAL_MU';

const HASHES: Record<string, { name: string; bytes: number; digestInfo: string }> = {
  SHA_256: { name: 'sha256', bytes: 32, digestInfo: '3031300d060960864801650304020105000420' },
  SHA_384: { name: 'sha384', bytes: 48, digestInfo: '3041300d060960864801650304020205000430' },
  SHA_512: { name: 'sha512', bytes: 64, digestInfo: '3051300d060960864801650304020305000440' },
};

function hashOf(algorithm: string) {
  return HASHES[algorithm.slice(-7)]!;
}

/** Precondition: a DIGEST message is exactly as long as the algorithm's hash. Returns the digest to sign. */
function digestOf(algorithm: string, message: Buffer, type: MessageType): Buffer {
  const h = hashOf(algorithm);
  if (type === 'RAW') return crypto.createHash(h.name).update(message).digest();
  if (message.length !== h.bytes)
    throw KmsErrors.validation(
      `Digest is invalid length for algorithm ${algorithm}: a DIGEST message for it is ${h.bytes} bytes, this one is ${message.length}.`,
    );
  return message;
}

function mgf1(hash: string, seed: Buffer, len: number): Buffer {
  const out: Buffer[] = [];
  for (let c = 0, n = 0; n < len; c++) {
    const ctr = Buffer.alloc(4);
    ctr.writeUInt32BE(c);
    const block = crypto.createHash(hash).update(seed).update(ctr).digest();
    out.push(block);
    n += block.length;
  }
  return Buffer.concat(out).subarray(0, len);
}

/** EMSA-PSS-ENCODE (RFC 8017 9.1.1) with a salt as long as the hash, as KMS signs. */
function pssEncode(hash: string, mHash: Buffer, modBits: number): Buffer {
  const hLen = mHash.length;
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const salt = crypto.randomBytes(hLen);
  const H = crypto.createHash(hash).update(Buffer.alloc(8)).update(mHash).update(salt).digest();
  const db = Buffer.concat([Buffer.alloc(emLen - 2 * hLen - 2), Buffer.from([1]), salt]);
  const mask = mgf1(hash, H, emLen - hLen - 1);
  for (let i = 0; i < db.length; i++) db[i]! ^= mask[i]!;
  db[0]! &= 0xff >> (8 * emLen - emBits);
  const em = Buffer.concat([db, H, Buffer.from([0xbc])]);
  // The raw RSA operation takes a full modulus-length input.
  return Buffer.concat([Buffer.alloc(Math.ceil(modBits / 8) - emLen), em]);
}

/** EMSA-PSS-VERIFY (RFC 8017 9.1.2), any salt length. */
function pssVerify(hash: string, mHash: Buffer, block: Buffer, modBits: number): boolean {
  const hLen = mHash.length;
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const em = block.subarray(block.length - emLen);
  if (block.length - emLen > 0 && block.subarray(0, block.length - emLen).some((b) => b !== 0)) return false;
  if (emLen < 2 * hLen + 2 || em[emLen - 1] !== 0xbc) return false;
  const db = Buffer.from(em.subarray(0, emLen - hLen - 1));
  const H = em.subarray(emLen - hLen - 1, emLen - 1);
  const topBits = 0xff >> (8 * emLen - emBits);
  if ((db[0]! & ~topBits) !== 0) return false;
  const mask = mgf1(hash, H, db.length);
  for (let i = 0; i < db.length; i++) db[i]! ^= mask[i]!;
  db[0]! &= topBits;
  const one = db.indexOf(1);
  if (one < 0 || db.subarray(0, one).some((b) => b !== 0)) return false;
  const salt = db.subarray(one + 1);
  const H2 = crypto.createHash(hash).update(Buffer.alloc(8)).update(mHash).update(salt).digest();
  return crypto.timingSafeEqual(H, H2);
}

type Nist = typeof import('@noble/curves/nist.js');
type Curve = Nist['p256'] | Nist['p384'] | Nist['p521'] | typeof import('@noble/curves/secp256k1.js')['secp256k1'];
let curves: Record<string, Curve> | undefined;

/** @noble/curves, loaded on the first DIGEST-mode ECDSA call only (it adds ~30 ms to every CLI start otherwise). */
function curve(name: string): Curve {
  if (!curves) {
    const require = createRequire(import.meta.url);
    const nist = require('@noble/curves/nist.js') as Nist;
    const k1 = require('@noble/curves/secp256k1.js') as typeof import('@noble/curves/secp256k1.js');
    curves = { prime256v1: nist.p256, secp384r1: nist.p384, secp521r1: nist.p521, secp256k1: k1.secp256k1 };
  }
  return curves[name]!;
}

/** A minimal DER reader: the value of the TLV at `off`, and where the next TLV starts. */
function tlv(buf: Buffer, off: number): { tag: number; value: Buffer; next: number } {
  const tag = buf[off]!;
  let len = buf[off + 1]!;
  let p = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i]!;
    p += n;
  }
  return { tag, value: buf.subarray(p, p + len), next: p + len };
}

/** Run fn with the EC private scalar (from SEC1 DER: SEQUENCE { INTEGER 1, OCTET STRING d, ... }), zeroed afterwards. */
function withEcScalar<T>(key: crypto.KeyObject, fn: (d: Buffer) => T): T {
  const sec1 = key.export({ type: 'sec1', format: 'der' });
  try {
    const seq = tlv(sec1, 0);
    const version = tlv(seq.value, 0);
    const d = tlv(seq.value, version.next);
    if (d.tag !== 0x04) throw KmsErrors.internal('An EC private key of this store is malformed.');
    return fn(d.value);
  } finally {
    sec1.fill(0);
  }
}

function ecPoint(pub: crypto.KeyObject): Uint8Array {
  const jwk = pub.export({ format: 'jwk' });
  return Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
}

type Ed = typeof import('@noble/curves/ed25519.js');
let ed: Ed | undefined;

/** @noble/curves' Ed25519ph (RFC 8032 with the SHA-512 prehash), loaded on first use: OpenSSL 3.0 has only pure Ed25519. */
function ed25519ph(): Ed['ed25519ph'] {
  ed ??= createRequire(import.meta.url)('@noble/curves/ed25519.js') as Ed;
  return ed.ed25519ph;
}

/** PKCS#8 of an Ed25519 key (RFC 8410): a fixed 16-byte framing, then the 32-byte seed. */
const ED25519_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * Ed25519 with the key's PKCS#8 material: ED25519_SHA_512 is pure Ed25519 over
 * the RAW message (OpenSSL); ED25519_PH_SHA_512 is Ed25519ph over the given
 * 64-byte DIGEST, which it hashes again with SHA-512, as AWS documents.
 */
function edSign(material: Buffer, algorithm: string, message: Buffer): Buffer {
  if (algorithm === 'ED25519_SHA_512') return crypto.sign(null, message, privateKeyOf(material));
  if (material.length !== ED25519_PKCS8.length + 32 || !material.subarray(0, ED25519_PKCS8.length).equals(ED25519_PKCS8))
    throw KmsErrors.internal('An Ed25519 private key of this store is malformed.');
  return Buffer.from(ed25519ph().sign(message, material.subarray(ED25519_PKCS8.length)));
}

function edVerify(pub: crypto.KeyObject, algorithm: string, message: Buffer, signature: Buffer): boolean {
  if (algorithm === 'ED25519_SHA_512') return crypto.verify(null, message, pub, signature);
  return ed25519ph().verify(signature, message, Buffer.from(pub.export({ format: 'jwk' }).x!, 'base64url'));
}

/** Sign with the key's PKCS#8 material. */
export function sign(spec: string, material: Buffer, algorithm: string, message: Buffer, type: MessageType): Buffer {
  const info = specInfo(spec);
  if (info.kind === 'mldsa') return mlDsaSign(spec as MlDsaSpec, material, message, type === 'EXTERNAL_MU');
  if (info.kind === 'ed') return edSign(material, algorithm, message);
  const h = hashOf(algorithm);
  const key = privateKeyOf(material);
  if (info.kind === 'ec') {
    if (type === 'RAW') return crypto.sign(h.name, message, key);
    const digest = digestOf(algorithm, message, type);
    return withEcScalar(key, (d) => Buffer.from(curve(info.curve!).sign(digest, d, { prehash: false, format: 'der', lowS: false })));
  }
  const pss = algorithm.startsWith('RSASSA_PSS_');
  if (type === 'RAW') {
    return crypto.sign(
      h.name,
      message,
      pss ? { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: h.bytes } : { key, padding: crypto.constants.RSA_PKCS1_PADDING },
    );
  }
  const digest = digestOf(algorithm, message, type);
  if (pss) return crypto.privateEncrypt({ key, padding: crypto.constants.RSA_NO_PADDING }, pssEncode(h.name, digest, info.bits!));
  return crypto.privateEncrypt({ key, padding: crypto.constants.RSA_PKCS1_PADDING }, Buffer.concat([Buffer.from(h.digestInfo, 'hex'), digest]));
}

/** Verify with the public half of the key's material; false for any signature that does not verify. */
export function verify(spec: string, material: Buffer, algorithm: string, message: Buffer, type: MessageType, signature: Buffer): boolean {
  const info = specInfo(spec);
  if (info.kind === 'mldsa') return mlDsaVerify(spec as MlDsaSpec, material, message, type === 'EXTERNAL_MU', signature);
  const h = hashOf(algorithm);
  const pub = crypto.createPublicKey(privateKeyOf(material));
  try {
    if (info.kind === 'ed') return edVerify(pub, algorithm, message, signature);
    if (info.kind === 'ec') {
      if (type === 'RAW') return crypto.verify(h.name, message, pub, signature);
      const digest = digestOf(algorithm, message, type);
      return curve(info.curve!).verify(signature, digest, ecPoint(pub), { prehash: false, format: 'der', lowS: false });
    }
    const pss = algorithm.startsWith('RSASSA_PSS_');
    if (type === 'RAW') {
      return crypto.verify(
        h.name,
        message,
        pss
          ? { key: pub, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_AUTO }
          : { key: pub, padding: crypto.constants.RSA_PKCS1_PADDING },
        signature,
      );
    }
    const digest = digestOf(algorithm, message, type);
    if (signature.length !== info.bits! / 8) return false;
    if (pss) return pssVerify(h.name, digest, crypto.publicDecrypt({ key: pub, padding: crypto.constants.RSA_NO_PADDING }, signature), info.bits!);
    const expected = Buffer.concat([Buffer.from(h.digestInfo, 'hex'), digest]);
    const got = crypto.publicDecrypt({ key: pub, padding: crypto.constants.RSA_PKCS1_PADDING }, signature);
    return got.length === expected.length && crypto.timingSafeEqual(got, expected);
  } catch (e) {
    if (e instanceof KmsError) throw e;
    // A malformed signature (bad DER, wrong length, out of range) is an invalid one.
    return false;
  }
}

/** The most plaintext RSAES-OAEP takes with this key and hash: k - 2 hLen - 2 bytes. */
export function rsaMaxPlaintext(spec: string, algorithm: string): number {
  return specInfo(spec).bits! / 8 - 2 * (algorithm === 'RSAES_OAEP_SHA_1' ? 20 : 32) - 2;
}

export function rsaEncrypt(material: Buffer, algorithm: string, plaintext: Buffer): Buffer {
  const pub = crypto.createPublicKey(privateKeyOf(material));
  return crypto.publicEncrypt(
    { key: pub, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: algorithm === 'RSAES_OAEP_SHA_1' ? 'sha1' : 'sha256' },
    plaintext,
  );
}

/** RSAES-OAEP decryption; InvalidCiphertextException when it does not open. The caller zeroes the result. */
export function rsaDecrypt(material: Buffer, algorithm: string, ciphertext: Buffer): Buffer {
  try {
    return crypto.privateDecrypt(
      { key: privateKeyOf(material), padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: algorithm === 'RSAES_OAEP_SHA_1' ? 'sha1' : 'sha256' },
      ciphertext,
    );
  } catch {
    throw KmsErrors.invalidCiphertext();
  }
}
