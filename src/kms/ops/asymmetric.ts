import type { MessageType } from '../asymmetric.js';
import { sign as signWith, verify as verifyWith } from '../asymmetric.js';
import type { KmsContext } from '../context.js';
import { KmsError, KmsErrors } from '../errors.js';
import { algorithmsOf, allows, kindOf, publicKeyDer, SIGNING_ALGORITHMS } from '../keyspec.js';
import type { KeyRow } from '../store.js';
import { blob, oneOf, reqStr } from '../validate.js';

/**
 * Sign, Verify and GetPublicKey: asymmetric keys whose private half never
 * leaves the store except sealed under the root key. Signatures are what
 * openssl makes and checks (PKCS#1 v1.5, PSS with a hash-long salt, DER ECDSA).
 */
type Req = Record<string, unknown>;
const MAX_MESSAGE = 4096;
const MAX_SIGNATURE = 6144;

function signingRequest(req: Req) {
  const keyId = reqStr(req, 'KeyId');
  const message = blob(req, 'Message', 1, MAX_MESSAGE);
  const type: MessageType = oneOf(req, 'MessageType', ['RAW', 'DIGEST', 'EXTERNAL_MU'] as const) ?? 'RAW';
  const algorithm = oneOf(req, 'SigningAlgorithm', SIGNING_ALGORITHMS);
  if (!algorithm)
    throw KmsErrors.validation("1 validation error detected: Value null at 'signingAlgorithm' failed to satisfy constraint: Member must not be null");
  return { keyId, message, type, algorithm };
}

/** Precondition: the algorithm (and message type) is one of the key's. */
function checkAlgorithm(k: KmsContext, row: KeyRow, algorithm: string, type: string): void {
  if (!allows(row.key_spec, row.key_usage, algorithm)) {
    throw KmsErrors.invalidKeyUsage(
      `Signing algorithm ${algorithm} is not compatible with ${k.keyArn(row.key_id)} (KeySpec ${row.key_spec}); it signs with ${(algorithmsOf(row.key_spec, row.key_usage).SigningAlgorithms ?? []).join(', ')}.`,
    );
  }
  const kind = kindOf(row.key_spec);
  if (type === 'EXTERNAL_MU' && kind !== 'mldsa')
    throw KmsErrors.invalidKeyUsage(`MessageType EXTERNAL_MU is only for ML-DSA keys; ${k.keyArn(row.key_id)} is ${row.key_spec}. Use RAW or DIGEST.`);
  if (type === 'DIGEST' && kind === 'mldsa')
    throw KmsErrors.validation(`MessageType DIGEST is not supported for ${row.key_spec} keys: pass the message as RAW, or its 64-byte μ as EXTERNAL_MU.`);
  // Ed25519: ED25519_SHA_512 signs the message itself, ED25519_PH_SHA_512 a SHA-512 digest; the types are not interchangeable.
  const edType = algorithm === 'ED25519_SHA_512' ? 'RAW' : algorithm === 'ED25519_PH_SHA_512' ? 'DIGEST' : undefined;
  if (edType && type !== edType) throw KmsErrors.validation(`Signing algorithm ${algorithm} requires MessageType ${edType}; this request has ${type}.`);
}

/** Precondition: a DIGEST or an EXTERNAL_MU is exactly 64 bytes where the key is Ed25519 (SHA-512) or ML-DSA (μ). */
function checkLength(row: KeyRow, message: Buffer, type: MessageType): void {
  const kind = kindOf(row.key_spec);
  if ((type === 'EXTERNAL_MU' || (type === 'DIGEST' && kind === 'ed')) && message.length !== 64)
    throw KmsErrors.validation(
      `${type === 'DIGEST' ? 'Digest' : 'External mu'} is invalid length for ${row.key_spec}: it is 64 bytes, this one is ${message.length}.`,
    );
}

export function sign(k: KmsContext, req: Req) {
  const { keyId, message, type, algorithm } = signingRequest(req);
  const row = k.usableKey(keyId, { action: 'kms:Sign', conditions: { 'kms:signingalgorithm': algorithm, 'kms:messagetype': type } }, 'SIGN_VERIFY');
  checkAlgorithm(k, row, algorithm, type);
  checkLength(row, message, type);
  const signature = k.withCurrentMaterial(row, (material) => signWith(row.key_spec, material, algorithm, message, type));
  return { KeyId: k.keyArn(row.key_id), Signature: signature, SigningAlgorithm: algorithm };
}

export function verify(k: KmsContext, req: Req) {
  const { keyId, message, type, algorithm } = signingRequest(req);
  const signature = blob(req, 'Signature', 1, MAX_SIGNATURE);
  const row = k.usableKey(keyId, { action: 'kms:Verify', conditions: { 'kms:signingalgorithm': algorithm, 'kms:messagetype': type } }, 'SIGN_VERIFY');
  checkAlgorithm(k, row, algorithm, type);
  checkLength(row, message, type);
  const ok = k.withCurrentMaterial(row, (material) => verifyWith(row.key_spec, material, algorithm, message, type, signature));
  // Precondition: a signature that does not verify is an error, not SignatureValid false.
  if (!ok)
    throw new KmsError(
      'KMSInvalidSignatureException',
      `The signature does not verify with ${k.keyArn(row.key_id)} under ${algorithm} for this ${type === 'RAW' ? 'message' : 'digest'}.`,
    );
  return { KeyId: k.keyArn(row.key_id), SignatureValid: true, SigningAlgorithm: algorithm };
}

export function getPublicKey(k: KmsContext, req: Req) {
  const row = k.key(reqStr(req, 'KeyId'), 'kms:GetPublicKey');
  const arn = k.keyArn(row.key_id);
  const kind = kindOf(row.key_spec);
  // Precondition: only asymmetric keys have a public key.
  if (kind === 'symmetric' || kind === 'hmac')
    throw KmsErrors.unsupported(`${arn} is a ${row.key_spec} key, which has no public key. GetPublicKey works on asymmetric (RSA, ECC and ML-DSA) keys.`);
  if (row.key_state === 'Disabled') throw KmsErrors.disabled(arn);
  if (row.key_state !== 'Enabled') throw KmsErrors.invalidState(arn, row.key_state);
  return {
    KeyId: arn,
    PublicKey: k.withCurrentMaterial(row, (material) => publicKeyDer(material)),
    CustomerMasterKeySpec: row.key_spec,
    KeySpec: row.key_spec,
    KeyUsage: row.key_usage,
    ...algorithmsOf(row.key_spec, row.key_usage),
  };
}
