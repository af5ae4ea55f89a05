import crypto from 'node:crypto';
import { KmsErrors } from './errors.js';
import type { MlDsaSpec } from './mldsa.js';
import { mlDsaMaterialProblem, mlDsaPublicKeyDer, mlDsaSpecOf, newMlDsaMaterial } from './mldsa.js';

/**
 * Key specs and key usages as AWS KMS defines them: which usages each spec
 * allows, the algorithms of each (spec, usage), and the backing material of
 * each spec. Material is what the root key seals: 32 random bytes for
 * SYMMETRIC_DEFAULT, the HMAC key bytes, or a PKCS#8 DER private key.
 */
export const KEY_SPECS = [
  'SYMMETRIC_DEFAULT',
  'RSA_2048',
  'RSA_3072',
  'RSA_4096',
  'ECC_NIST_P256',
  'ECC_NIST_P384',
  'ECC_NIST_P521',
  'ECC_SECG_P256K1',
  'ECC_NIST_EDWARDS25519',
  'HMAC_224',
  'HMAC_256',
  'HMAC_384',
  'HMAC_512',
  'SM2',
  'ML_DSA_44',
  'ML_DSA_65',
  'ML_DSA_87',
  'ML_KEM_512',
  'ML_KEM_768',
  'ML_KEM_1024',
] as const;
export const KEY_USAGES = ['ENCRYPT_DECRYPT', 'SIGN_VERIFY', 'GENERATE_VERIFY_MAC', 'KEY_AGREEMENT', 'KEY_ENCAPSULATION'] as const;
export type KeySpec = (typeof KEY_SPECS)[number];
export type KeyUsage = (typeof KEY_USAGES)[number];

export const SIGNING_ALGORITHMS = [
  'RSASSA_PSS_SHA_256',
  'RSASSA_PSS_SHA_384',
  'RSASSA_PSS_SHA_512',
  'RSASSA_PKCS1_V1_5_SHA_256',
  'RSASSA_PKCS1_V1_5_SHA_384',
  'RSASSA_PKCS1_V1_5_SHA_512',
  'ECDSA_SHA_256',
  'ECDSA_SHA_384',
  'ECDSA_SHA_512',
  'SM2DSA',
  'ML_DSA_SHAKE_256',
  'ED25519_SHA_512',
  'ED25519_PH_SHA_512',
] as const;
export const ENCRYPTION_ALGORITHMS = ['SYMMETRIC_DEFAULT', 'RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'SM2PKE'] as const;
export const MAC_ALGORITHMS = ['HMAC_SHA_224', 'HMAC_SHA_256', 'HMAC_SHA_384', 'HMAC_SHA_512'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

/** Specs kmsvol creates; the others exist only in China Regions (SM2) or are ML-KEM, which kmsvol lacks. */
type Kind = 'symmetric' | 'rsa' | 'ec' | 'ed' | 'mldsa' | 'hmac';
interface SpecInfo {
  kind: Kind;
  usages: Partial<Record<KeyUsage, readonly string[]>>;
  /** RSA modulus bits. */
  bits?: number;
  /** OpenSSL curve name. */
  curve?: string;
  /** HMAC key length in bytes. */
  macBytes?: number;
}

const RSA_USAGES = {
  ENCRYPT_DECRYPT: ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'],
  SIGN_VERIFY: [
    'RSASSA_PSS_SHA_256',
    'RSASSA_PSS_SHA_384',
    'RSASSA_PSS_SHA_512',
    'RSASSA_PKCS1_V1_5_SHA_256',
    'RSASSA_PKCS1_V1_5_SHA_384',
    'RSASSA_PKCS1_V1_5_SHA_512',
  ],
} as const;

const SPECS: Partial<Record<KeySpec, SpecInfo>> = {
  SYMMETRIC_DEFAULT: { kind: 'symmetric', usages: { ENCRYPT_DECRYPT: ['SYMMETRIC_DEFAULT'] } },
  RSA_2048: { kind: 'rsa', bits: 2048, usages: RSA_USAGES },
  RSA_3072: { kind: 'rsa', bits: 3072, usages: RSA_USAGES },
  RSA_4096: { kind: 'rsa', bits: 4096, usages: RSA_USAGES },
  ECC_NIST_P256: { kind: 'ec', curve: 'prime256v1', usages: { SIGN_VERIFY: ['ECDSA_SHA_256'], KEY_AGREEMENT: ['ECDH'] } },
  ECC_NIST_P384: { kind: 'ec', curve: 'secp384r1', usages: { SIGN_VERIFY: ['ECDSA_SHA_384'], KEY_AGREEMENT: ['ECDH'] } },
  ECC_NIST_P521: { kind: 'ec', curve: 'secp521r1', usages: { SIGN_VERIFY: ['ECDSA_SHA_512'], KEY_AGREEMENT: ['ECDH'] } },
  ECC_SECG_P256K1: { kind: 'ec', curve: 'secp256k1', usages: { SIGN_VERIFY: ['ECDSA_SHA_256'] } },
  ECC_NIST_EDWARDS25519: { kind: 'ed', usages: { SIGN_VERIFY: ['ED25519_SHA_512', 'ED25519_PH_SHA_512'] } },
  ML_DSA_44: { kind: 'mldsa', usages: { SIGN_VERIFY: ['ML_DSA_SHAKE_256'] } },
  ML_DSA_65: { kind: 'mldsa', usages: { SIGN_VERIFY: ['ML_DSA_SHAKE_256'] } },
  ML_DSA_87: { kind: 'mldsa', usages: { SIGN_VERIFY: ['ML_DSA_SHAKE_256'] } },
  HMAC_224: { kind: 'hmac', macBytes: 28, usages: { GENERATE_VERIFY_MAC: ['HMAC_SHA_224'] } },
  HMAC_256: { kind: 'hmac', macBytes: 32, usages: { GENERATE_VERIFY_MAC: ['HMAC_SHA_256'] } },
  HMAC_384: { kind: 'hmac', macBytes: 48, usages: { GENERATE_VERIFY_MAC: ['HMAC_SHA_384'] } },
  HMAC_512: { kind: 'hmac', macBytes: 64, usages: { GENERATE_VERIFY_MAC: ['HMAC_SHA_512'] } },
};

export function specInfo(spec: string): SpecInfo {
  const info = SPECS[spec as KeySpec];
  if (!info) throw KmsErrors.internal(`Key spec ${spec} has no implementation.`);
  return info;
}

export function kindOf(spec: string): Kind {
  return specInfo(spec).kind;
}

/**
 * Precondition: the spec is one kmsvol can create and the usage is one AWS
 * allows for it. Returns the usage (defaulted as AWS defaults it).
 */
export function checkSpecUsage(spec: string, usage: string | undefined): KeyUsage {
  if (spec === 'SM2') throw KmsErrors.unsupported('KeySpec SM2 is only available in China Regions. Use an RSA or ECC key spec.');
  if (spec.startsWith('ML_KEM_'))
    throw KmsErrors.unsupported(`KeySpec ${spec} (ML-KEM key encapsulation) is not supported by kmsvol. Use an RSA or ECC key spec for asymmetric keys.`);
  const info = specInfo(spec);
  const u = (usage ?? 'ENCRYPT_DECRYPT') as KeyUsage;
  if (!info.usages[u]) {
    const allowed = Object.keys(info.usages).join(' or ');
    throw KmsErrors.validation(
      `KeyUsage ${u} is not compatible with KeySpec ${spec}${usage === undefined ? ' (ENCRYPT_DECRYPT is the default KeyUsage)' : ''}. Use KeyUsage ${allowed}.`,
    );
  }
  return u;
}

/** The algorithms of a key, for DescribeKey and GetPublicKey. */
export function algorithmsOf(spec: string, usage: string): Record<string, string[]> {
  const algs = [...(specInfo(spec).usages[usage as KeyUsage] ?? [])];
  switch (usage) {
    case 'ENCRYPT_DECRYPT':
      return { EncryptionAlgorithms: algs };
    case 'SIGN_VERIFY':
      return { SigningAlgorithms: algs };
    case 'GENERATE_VERIFY_MAC':
      return { MacAlgorithms: algs };
    case 'KEY_AGREEMENT':
      return { KeyAgreementAlgorithms: algs };
    default:
      return {};
  }
}

export function allows(spec: string, usage: string, algorithm: string): boolean {
  return (specInfo(spec).usages[usage as KeyUsage] ?? []).includes(algorithm);
}

/** Fresh backing material for a spec. The caller zeroes it. */
export function newMaterialFor(spec: string): Buffer {
  const info = specInfo(spec);
  switch (info.kind) {
    case 'symmetric':
      return crypto.randomBytes(32);
    case 'hmac':
      return crypto.randomBytes(info.macBytes!);
    case 'rsa':
      return crypto.generateKeyPairSync('rsa', { modulusLength: info.bits! }).privateKey.export({ type: 'pkcs8', format: 'der' });
    case 'ec':
      return crypto.generateKeyPairSync('ec', { namedCurve: info.curve! }).privateKey.export({ type: 'pkcs8', format: 'der' });
    case 'ed':
      return crypto.generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'der' });
    case 'mldsa':
      return newMlDsaMaterial(spec as MlDsaSpec);
  }
}

/** A private key object from sealed-and-opened PKCS#8 DER material. */
export function privateKeyOf(material: Buffer): crypto.KeyObject {
  return crypto.createPrivateKey({ key: material, format: 'der', type: 'pkcs8' });
}

/** The DER SubjectPublicKeyInfo of an asymmetric key's material. */
export function publicKeyDer(material: Buffer): Buffer {
  // ML-DSA material (which OpenSSL 3.0 cannot parse) names its parameter set in its own framing.
  const ml = mlDsaSpecOf(material);
  if (ml) return mlDsaPublicKeyDer(ml, material);
  return crypto.createPublicKey(privateKeyOf(material)).export({ type: 'spki', format: 'der' });
}

/**
 * Precondition for given material (import, seed files): it fits the spec —
 * 32 bytes for SYMMETRIC_DEFAULT, the HMAC spec's length, or a PKCS#8
 * private key of the spec's type and size. Returns a message, or undefined.
 */
export function materialProblem(spec: string, material: Buffer): string | undefined {
  const info = specInfo(spec);
  if (info.kind === 'symmetric')
    return material.length === 32 ? undefined : `Key material for a SYMMETRIC_DEFAULT key is 32 bytes (256 bits); this material is ${material.length} bytes.`;
  if (info.kind === 'hmac')
    return material.length === info.macBytes
      ? undefined
      : `Key material for an ${spec} key is ${info.macBytes} bytes; this material is ${material.length} bytes.`;
  if (info.kind === 'mldsa') return mlDsaMaterialProblem(spec as MlDsaSpec, material);
  let key: crypto.KeyObject;
  try {
    key = privateKeyOf(material);
  } catch {
    return `Key material for an ${spec} key is a DER-encoded PKCS#8 private key; this material does not parse as one.`;
  }
  const d = key.asymmetricKeyDetails ?? {};
  if (info.kind === 'rsa' && (key.asymmetricKeyType !== 'rsa' || d.modulusLength !== info.bits)) {
    return `${`Key material for an ${spec} key is an RSA private key of ${info.bits} bits; this is ${key.asymmetricKeyType} ${d.modulusLength ?? ''}`.trimEnd()}.`;
  }
  if (info.kind === 'ec' && (key.asymmetricKeyType !== 'ec' || d.namedCurve !== info.curve)) {
    return `${`Key material for an ${spec} key is an EC private key on curve ${info.curve}; this is ${key.asymmetricKeyType} ${d.namedCurve ?? ''}`.trimEnd()}.`;
  }
  if (info.kind === 'ed' && key.asymmetricKeyType !== 'ed25519')
    return `Key material for an ${spec} key is an Ed25519 private key; this is ${key.asymmetricKeyType}.`;
  return undefined;
}

/**
 * What a key is for, as grants see it: the grant operations that make sense
 * for a key follow from its class (each operation's `grants` in the registry,
 * operations.ts); AWS refuses the others in CreateGrant.
 */
export type GrantKeyClass = 'symmetric' | 'asymmetric-encrypt' | 'sign' | 'mac' | 'agreement';

/** A key's class for grants, from its spec and usage; undefined for a usage no grant operation of its own applies to. */
export function grantKeyClass(spec: string, usage: string): GrantKeyClass | undefined {
  const kind = kindOf(spec);
  if (usage === 'ENCRYPT_DECRYPT') return kind === 'symmetric' ? 'symmetric' : 'asymmetric-encrypt';
  if (usage === 'SIGN_VERIFY') return 'sign';
  if (usage === 'GENERATE_VERIFY_MAC') return 'mac';
  if (usage === 'KEY_AGREEMENT') return 'agreement';
  return undefined;
}
