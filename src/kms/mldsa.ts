import crypto from 'node:crypto';
import { createRequire } from 'node:module';

/**
 * ML-DSA (FIPS 204) keys: KeySpec ML_DSA_44, ML_DSA_65 and ML_DSA_87, signing
 * with ML_DSA_SHAKE_256 (pure ML-DSA, empty context) over a RAW message or an
 * EXTERNAL_MU (the 64-byte μ of FIPS 204 section 6.2). Node 20's OpenSSL has
 * no ML-DSA, so the arithmetic is @noble/post-quantum's, loaded on first use.
 *
 * The store keeps a key as PKCS#8 in the seed-only form of RFC 9881
 * (privateKey = [0] IMPLICIT OCTET STRING of the 32-byte seed ξ); the
 * expanded secret key is derived for each operation and zeroed after it.
 * GetPublicKey gives the SubjectPublicKeyInfo with the NIST OID and the raw
 * public key as the BIT STRING, as AWS KMS and openssl 3.5 do.
 */
export type MlDsaSpec = 'ML_DSA_44' | 'ML_DSA_65' | 'ML_DSA_87';
export const ML_DSA_SPECS: readonly MlDsaSpec[] = ['ML_DSA_44', 'ML_DSA_65', 'ML_DSA_87'];
/** id-ml-dsa-44/65/87: 2.16.840.1.101.3.4.3.17/18/19. */
const OID: Record<MlDsaSpec, Buffer> = {
  ML_DSA_44: Buffer.from('0609608648016503040311', 'hex'),
  ML_DSA_65: Buffer.from('0609608648016503040312', 'hex'),
  ML_DSA_87: Buffer.from('0609608648016503040313', 'hex'),
};
const SEED_BYTES = 32;
export const MU_BYTES = 64;

type Noble = typeof import('@noble/post-quantum/ml-dsa.js');
let noble: Noble | undefined;
function dsa(spec: MlDsaSpec) {
  noble ??= createRequire(import.meta.url)('@noble/post-quantum/ml-dsa.js') as Noble;
  return { ML_DSA_44: noble.ml_dsa44, ML_DSA_65: noble.ml_dsa65, ML_DSA_87: noble.ml_dsa87 }[spec];
}

/** A DER TLV with a definite length (short or long form). */
function der(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), body]);
}

const algorithmId = (spec: MlDsaSpec) => der(0x30, OID[spec]);

/** PKCS#8 (seed-only form) of a seed. */
function pkcs8(spec: MlDsaSpec, seed: Buffer): Buffer {
  return der(0x30, Buffer.from('020100', 'hex'), algorithmId(spec), der(0x04, der(0x80, seed)));
}

/** The spec whose seed-only PKCS#8 this material is, if it is one: the framing before the seed is exactly that spec's. */
export function mlDsaSpecOf(material: Buffer): MlDsaSpec | undefined {
  return ML_DSA_SPECS.find((s) => {
    const framing = pkcs8(s, Buffer.alloc(SEED_BYTES));
    return material.length === framing.length && material.subarray(0, -SEED_BYTES).equals(framing.subarray(0, -SEED_BYTES));
  });
}

/** Fresh key material for an ML-DSA spec. The caller zeroes it. */
export function newMlDsaMaterial(spec: MlDsaSpec): Buffer {
  const seed = crypto.randomBytes(SEED_BYTES);
  try {
    return pkcs8(spec, seed);
  } finally {
    seed.fill(0);
  }
}

/** Precondition for given material: the seed-only PKCS#8 of this spec. Returns a message, or undefined. */
export function mlDsaMaterialProblem(spec: MlDsaSpec, material: Buffer): string | undefined {
  if (mlDsaSpecOf(material) === spec) return undefined;
  return `Key material for an ${spec} key is a DER-encoded PKCS#8 private key in the seed-only form of RFC 9881 (a 32-byte seed, 54 bytes in all); this material is not one for ${spec}.`;
}

/** Run fn with the key pair expanded from the material's seed; the secret key is zeroed afterwards. */
function withKeys<T>(spec: MlDsaSpec, material: Buffer, fn: (keys: { secretKey: Uint8Array; publicKey: Uint8Array }) => T): T {
  const keys = dsa(spec).keygen(material.subarray(material.length - SEED_BYTES));
  try {
    return fn(keys);
  } finally {
    keys.secretKey.fill(0);
  }
}

/** The DER SubjectPublicKeyInfo of ML-DSA material. */
export function mlDsaPublicKeyDer(spec: MlDsaSpec, material: Buffer): Buffer {
  return withKeys(spec, material, ({ publicKey }) => der(0x30, algorithmId(spec), der(0x03, Buffer.from([0]), Buffer.from(publicKey))));
}

/** Sign a RAW message (pure ML-DSA, empty context) or an EXTERNAL_MU μ. */
export function mlDsaSign(spec: MlDsaSpec, material: Buffer, message: Buffer, externalMu: boolean): Buffer {
  return withKeys(spec, material, ({ secretKey }) =>
    Buffer.from(externalMu ? dsa(spec).internal.sign(message, secretKey, { externalMu: true }) : dsa(spec).sign(message, secretKey)),
  );
}

export function mlDsaVerify(spec: MlDsaSpec, material: Buffer, message: Buffer, externalMu: boolean, signature: Buffer): boolean {
  return withKeys(spec, material, ({ publicKey }) =>
    externalMu ? dsa(spec).internal.verify(signature, message, publicKey, { externalMu: true }) : dsa(spec).verify(signature, message, publicKey),
  );
}
