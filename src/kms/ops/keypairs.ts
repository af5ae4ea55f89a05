import type { KmsContext } from '../context.js';
import { KmsErrors } from '../errors.js';
import { newMaterialFor, publicKeyDer } from '../keyspec.js';
import { materialIdOf, seal } from '../rules/envelope.js';
import { context, oneOf, reqStr } from '../validate.js';

/**
 * GenerateDataKeyPair(+WithoutPlaintext): an RSA or ECC key pair for use
 * outside KMS. The private key (PKCS#8 DER) is returned encrypted under a
 * symmetric encryption key, as a blob Decrypt opens, and in plaintext by
 * GenerateDataKeyPair only.
 */
type Req = Record<string, unknown>;
const KEY_PAIR_SPECS = [
  'RSA_2048',
  'RSA_3072',
  'RSA_4096',
  'ECC_NIST_P256',
  'ECC_NIST_P384',
  'ECC_NIST_P521',
  'ECC_SECG_P256K1',
  'ECC_NIST_EDWARDS25519',
  'SM2',
] as const;

function pairRequest(k: KmsContext, req: Req, action: string) {
  const keyId = reqStr(req, 'KeyId');
  const spec = oneOf(req, 'KeyPairSpec', KEY_PAIR_SPECS);
  if (!spec) throw KmsErrors.validation("1 validation error detected: Value null at 'keyPairSpec' failed to satisfy constraint: Member must not be null");
  const ctx = context(req, 'EncryptionContext');
  if (spec === 'SM2') throw KmsErrors.unsupported('KeyPairSpec SM2 is only available in China Regions. Use an RSA or ECC key pair spec.');
  const row = k.usableKey(keyId, { action, encryptionContext: ctx, conditions: { 'kms:datakeypairspec': spec } });
  // Precondition: the private key is wrapped under a symmetric encryption key.
  if (row.key_spec !== 'SYMMETRIC_DEFAULT')
    throw KmsErrors.invalidKeyUsage(
      `${k.keyArn(row.key_id)} is a ${row.key_spec} key; data key pairs are encrypted under a symmetric encryption key (SYMMETRIC_DEFAULT).`,
    );
  return { row, spec, ctx };
}

function generate(k: KmsContext, req: Req, action: string, withPlaintext: boolean) {
  const { row, spec, ctx } = pairRequest(k, req, action);
  const privateKey = newMaterialFor(spec);
  try {
    const sealed = seal(k, row, privateKey, ctx);
    const out = {
      PrivateKeyCiphertextBlob: sealed,
      ...(withPlaintext ? { PrivateKeyPlaintext: Buffer.from(privateKey) } : {}),
      PublicKey: publicKeyDer(privateKey),
      KeyId: k.keyArn(row.key_id),
      KeyPairSpec: spec,
      KeyMaterialId: materialIdOf(sealed),
    };
    return out;
  } finally {
    privateKey.fill(0);
  }
}

export function generateDataKeyPair(k: KmsContext, req: Req) {
  return generate(k, req, 'kms:GenerateDataKeyPair', true);
}

export function generateDataKeyPairWithoutPlaintext(k: KmsContext, req: Req) {
  return generate(k, req, 'kms:GenerateDataKeyPairWithoutPlaintext', false);
}
