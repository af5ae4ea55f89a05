import crypto from 'node:crypto';
import type { KmsClient } from '../kms/client/index.js';
import { GuardedKey } from '../native/index.js';
import type { KeyslotMaterial } from '../volume/keyslot.js';
import { KEYSLOT_AREA_SIZE, KEYSLOT_ITERATIONS, KEYSLOT_STRIPES, SECRET_BYTES } from '../volume/keyslot.js';
import type { KeyDigest, KmsvolToken } from '../volume/luks2.js';
import { CorruptImageError, DIGEST_ITERATIONS } from '../volume/luks2.js';

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

/**
 * Precondition: the unwrapped key matches the header's key digest. The check
 * is LUKS2's (cryptsetup's PBKDF2_digest_verify): PBKDF2 of the key with the
 * digest's hash, salt and iterations, as long as the stored digest, compared
 * in constant time. The PBKDF2 runs in the native engine over the guarded
 * pages; only its output (as public as the header) reaches JavaScript. The
 * digest's fields were bounded when the header was decoded (luks2.ts).
 */
export function keyMatchesDigest(key: GuardedKey, d: KeyDigest): boolean {
  if (d.hash !== 'sha256') return false; // the only hash in DIGEST_HASHES, the engine's PBKDF2
  const mine = Buffer.alloc(d.digest.length);
  key.pbkdf2Sha256(d.salt, d.iterations, mine);
  return crypto.timingSafeEqual(mine, d.digest);
}

/**
 * Unwrap a volume's key and check it against its header's digest before
 * anything is served with it. A key that does not match is zeroized and the
 * header is InvalidVolume.Corrupt: it was altered, or belongs to another volume.
 */
export async function unwrapVerifiedKey(
  kms: KmsClient,
  header: { token: KmsvolToken; digest: KeyDigest },
  image: string,
  grantToken?: string,
): Promise<GuardedKey> {
  const key = await unwrapVolumeKey(kms, header.token, grantToken);
  try {
    if (keyMatchesDigest(key, header.digest)) return key;
  } catch (e) {
    key.zeroize();
    throw e;
  }
  key.zeroize();
  throw new CorruptImageError(
    `The data key KMS returned for ${header.token.volumeId} does not match the key digest of segment 0 in the LUKS2 header of ${image}: the header was altered or belongs to another volume. Restore the image from a backup or a snapshot.`,
  );
}

/**
 * What a new image's header needs from its volume key, from one unwrap: the
 * LUKS2 pbkdf2 digest (computed inside native memory) and keyslot 0 with a
 * new KMS-wrapped secret (makeKeyslot). The key is zeroized after.
 */
export async function volumeKeyMaterial(kms: KmsClient, token: KmsvolToken): Promise<{ digest: KeyDigest; keyslot: KeyslotMaterial }> {
  const key = await unwrapVolumeKey(kms, token);
  try {
    const salt = crypto.randomBytes(32);
    const digest = Buffer.alloc(32);
    key.pbkdf2Sha256(salt, DIGEST_ITERATIONS, digest);
    const keyslot = await makeKeyslot(kms, token, key);
    return { digest: { hash: 'sha256', salt, digest, iterations: DIGEST_ITERATIONS }, keyslot };
  } finally {
    key.zeroize();
  }
}

/**
 * A new LUKS2 keyslot for a verified volume key: a random 32-byte secret from
 * GenerateDataKey under the volume's key and encryption context (its wrapped
 * form goes in the token), and the keyslot area that secret opens, made in the
 * native engine. The secret's plaintext Buffer is zeroed before this returns.
 */
export async function makeKeyslot(kms: KmsClient, token: KmsvolToken, key: GuardedKey): Promise<KeyslotMaterial> {
  const gdk = await kms.send('GenerateDataKey', { KeyId: token.keyArn, NumberOfBytes: SECRET_BYTES, EncryptionContext: token.encryptionContext });
  try {
    const salt = crypto.randomBytes(32);
    const area = Buffer.alloc(KEYSLOT_AREA_SIZE);
    key.luks2Keyslot(gdk.Plaintext, salt, KEYSLOT_ITERATIONS, KEYSLOT_STRIPES, area);
    return { salt, iterations: KEYSLOT_ITERATIONS, area, secretBlob: Buffer.from(gdk.CiphertextBlob).toString('base64') };
  } finally {
    gdk.Plaintext.fill(0);
  }
}

/** The keyslot of a volume whose header is `header`: its key unwrapped and checked against the digest first, zeroized after. */
export async function volumeKeyslot(kms: KmsClient, header: { token: KmsvolToken; digest: KeyDigest }, image: string): Promise<KeyslotMaterial> {
  const key = await unwrapVerifiedKey(kms, header, image);
  try {
    return await makeKeyslot(kms, header.token, key);
  } finally {
    key.zeroize();
  }
}
