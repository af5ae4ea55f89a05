import crypto from 'node:crypto';
import type { KmsContext } from '../context.js';
import { KmsErrors } from '../errors.js';
import { privateKeyOf, specInfo } from '../keyspec.js';
import { blob, oneOf, reqStr } from '../validate.js';

/**
 * DeriveSharedSecret: ECDH between a KEY_AGREEMENT key's private half (sealed
 * in the store) and a peer's public key (DER SubjectPublicKeyInfo) on the same
 * curve. The raw shared secret is returned, as openssl pkeyutl -derive gives it.
 */
type Req = Record<string, unknown>;

export function deriveSharedSecret(k: KmsContext, req: Req) {
  const keyId = reqStr(req, 'KeyId');
  const algorithm = oneOf(req, 'KeyAgreementAlgorithm', ['ECDH'] as const);
  if (!algorithm)
    throw KmsErrors.validation("1 validation error detected: Value null at 'keyAgreementAlgorithm' failed to satisfy constraint: Member must not be null");
  const peer = blob(req, 'PublicKey', 1, 8192);
  const row = k.usableKey(keyId, { action: 'kms:DeriveSharedSecret', conditions: { 'kms:keyagreementalgorithm': algorithm } }, 'KEY_AGREEMENT');
  const arn = k.keyArn(row.key_id);
  let peerKey: crypto.KeyObject;
  try {
    peerKey = crypto.createPublicKey({ key: peer, format: 'der', type: 'spki' });
  } catch {
    throw KmsErrors.validation(
      'PublicKey is not a DER-encoded X.509 SubjectPublicKeyInfo. Pass the peer public key as DER (openssl pkey -pubout -outform DER).',
    );
  }
  // Precondition: the peer's key is an EC key on the KMS key's curve.
  const curve = specInfo(row.key_spec).curve;
  if (peerKey.asymmetricKeyType !== 'ec' || peerKey.asymmetricKeyDetails?.namedCurve !== curve) {
    throw KmsErrors.validation(
      `PublicKey must be an EC public key on the curve of ${arn} (${row.key_spec}); it is ${peerKey.asymmetricKeyType} ${peerKey.asymmetricKeyDetails?.namedCurve ?? ''}`.trimEnd() +
        '.',
    );
  }
  const secret = k.withCurrentMaterial(row, (material) => crypto.diffieHellman({ privateKey: privateKeyOf(material), publicKey: peerKey }));
  return { KeyId: arn, SharedSecret: secret, KeyAgreementAlgorithm: algorithm, KeyOrigin: row.origin };
}
