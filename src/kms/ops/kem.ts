import type { KmsContext } from '../context.js';
import { KmsErrors } from '../errors.js';
import { blob, oneOf, reqStr } from '../validate.js';

/**
 * Encapsulate and Decapsulate work only with ML-KEM keys (KeyUsage
 * KEY_ENCAPSULATION), which kmsvol cannot create (Node's OpenSSL has no
 * ML-KEM). They answer as AWS does for any other key: NotFoundException for
 * a key that does not exist, the key-state errors, and InvalidKeyUsageException.
 */
type Req = Record<string, unknown>;

function kemKey(k: KmsContext, req: Req, action: string) {
  const keyId = reqStr(req, 'KeyId');
  const alg = oneOf(req, 'EncapsulationAlgorithm', ['ML_KEM'] as const);
  if (!alg)
    throw KmsErrors.validation("1 validation error detected: Value null at 'encapsulationAlgorithm' failed to satisfy constraint: Member must not be null");
  return k.usableKey(keyId, { action }, 'KEY_ENCAPSULATION');
}

export function encapsulate(
  k: KmsContext,
  req: Req,
): { KeyId: string; SharedSecret: Buffer; SharedSecretCiphertextBlob: Buffer; EncapsulationAlgorithm: string } {
  kemKey(k, req, 'kms:Encapsulate');
  throw KmsErrors.internal('unreachable: no key has KeyUsage KEY_ENCAPSULATION');
}

export function decapsulate(k: KmsContext, req: Req): { KeyId: string; SharedSecret: Buffer; EncapsulationAlgorithm: string } {
  blob(req, 'SharedSecretCiphertextBlob', 1, 6144);
  kemKey(k, req, 'kms:Decapsulate');
  throw KmsErrors.internal('unreachable: no key has KeyUsage KEY_ENCAPSULATION');
}
