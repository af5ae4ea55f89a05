import crypto from 'node:crypto';
import type { KmsClient } from '../kms/client/index.js';
import { GuardedKey } from '../native/index.js';
import type { KeyDigest, KmsvolToken } from '../volume/luks2.js';
import { DIGEST_ITERATIONS } from '../volume/luks2.js';

/**
 * Unwrap a volume's data key through KMS Decrypt, straight into guarded
 * memory. The transient Buffer of the KMS response is zeroed at once.
 */
export async function unwrapVolumeKey(kms: KmsClient, token: KmsvolToken, grantToken?: string): Promise<GuardedKey> {
  const res = await kms.send('Decrypt', {
    CiphertextBlob: Buffer.from(token.ciphertextBlob, 'base64'),
    EncryptionContext: token.encryptionContext,
    KeyId: token.keyArn,
    ...(grantToken ? { GrantTokens: [grantToken] } : {}),
  });
  try {
    return GuardedKey.fromBuffer(res.Plaintext);
  } finally {
    res.Plaintext.fill(0);
  }
}

/** The LUKS2 pbkdf2 digest of a volume key, computed inside native memory. */
export async function volumeKeyDigest(kms: KmsClient, token: KmsvolToken): Promise<KeyDigest> {
  const key = await unwrapVolumeKey(kms, token);
  try {
    const salt = crypto.randomBytes(32);
    const digest = Buffer.alloc(32);
    key.pbkdf2Sha256(salt, DIGEST_ITERATIONS, digest);
    return { salt, digest, iterations: DIGEST_ITERATIONS };
  } finally {
    key.zeroize();
  }
}
