import crypto from 'node:crypto';
import type { EncryptionContext } from '../blob.js';
import { encodeContext, encodeHeader, NONCE_BYTES, parseBlob } from '../blob.js';
import type { KmsContext } from '../context.js';
import { KmsErrors } from '../errors.js';
import { openInToken, sealInToken } from '../keystores/hsm.js';
import { openOuter, sealOuter } from '../keystores/xks.js';
import type { KeyRow } from '../store.js';

/**
 * Symmetric envelope encryption: seal plaintext under a key's current
 * material into a self-describing blob (blob.ts), and open such a blob again
 * with the material it names. Encrypt, Decrypt, ReEncrypt, GenerateDataKey*
 * and GenerateDataKeyPair* all seal and open through here.
 */

/** Encrypt under the key's current material. */
export function seal(k: KmsContext, row: KeyRow, plaintext: Buffer, ctx: EncryptionContext | undefined, nonce = crypto.randomBytes(NONCE_BYTES)): Buffer {
  // A key in an AWS CloudHSM key store encrypts in its token (keystores/hsm.ts).
  if (row.origin === 'AWS_CLOUDHSM') return sealInToken(k, row, plaintext, ctx, nonce);
  const mat = k.store.currentMaterial(row.key_id);
  if (!mat) throw KmsErrors.invalidState(k.keyArn(row.key_id), 'PendingImport');
  const header = encodeHeader({ storeId: k.store.storeId, keyId: row.key_id, materialId: mat.material_id, nonce });
  const inner = k.withBackingKey(row.key_id, mat.material_id, mat.sealed, (key) => {
    const c = crypto.createCipheriv('aes-256-gcm', key, nonce);
    c.setAAD(Buffer.concat([header, encodeContext(ctx)]));
    return Buffer.concat([header, c.update(plaintext), c.final(), c.getAuthTag()]);
  });
  // A key in an external key store: the external key encrypts KMS's ciphertext (keystores/xks.ts).
  return row.origin === 'EXTERNAL_KEY_STORE' ? sealOuter(k, row, inner, mat.material_id, ctx, k.call?.op ?? 'Encrypt') : inner;
}

/** The KeyMaterialId of a blob sealed here (hex, as AWS shows it): the material that sealed it. */
export function materialIdOf(ciphertext: Buffer): string {
  return parseBlob(ciphertext).materialId.toString('hex');
}

/**
 * Open a blob. Precondition order matches AWS: a KeyId naming another key is
 * IncorrectKeyException; a blob of another store, a changed byte or a wrong
 * context is InvalidCiphertextException; a deleted key is NotFoundException.
 */
export function open(
  k: KmsContext,
  ciphertext: Buffer,
  ctx: EncryptionContext | undefined,
  keyRef: string | undefined,
  action: string,
): { row: KeyRow; plaintext: Buffer; materialId: string } {
  let parsed = parseBlob(ciphertext);
  if (!parsed.storeId.equals(k.store.storeId)) throw KmsErrors.invalidCiphertext();
  if (keyRef !== undefined && k.resolveKeyId(keyRef) !== parsed.keyId) throw KmsErrors.incorrectKey();
  const raw = k.store.getKey(k.region, parsed.keyId);
  const row = raw && k.settle(raw);
  if (!row) {
    if (k.store.wasDeleted(k.region, parsed.keyId)) throw KmsErrors.notFound(`Key '${k.keyArn(parsed.keyId)}' does not exist`);
    throw KmsErrors.invalidCiphertext();
  }
  k.authorize(row, { action, encryptionContext: ctx });
  k.assertUsable(row);
  if (row.origin === 'AWS_CLOUDHSM') return { row, plaintext: openInToken(k, row, parsed, ctx), materialId: parsed.materialId.toString('hex') };
  if (row.origin === 'EXTERNAL_KEY_STORE') {
    // The outer layer first, through the proxy; the inner blob is KMS's own, of the same key.
    parsed = parseBlob(openOuter(k, row, parsed, ctx, k.call?.op ?? action.replace(/^kms:/, '')));
    if (!parsed.storeId.equals(k.store.storeId) || parsed.keyId !== row.key_id) throw KmsErrors.invalidCiphertext();
  }
  const mat = k.store.material(row.key_id, parsed.materialId);
  if (!mat) throw KmsErrors.invalidCiphertext();
  const plaintext = k.withBackingKey(row.key_id, mat.material_id, mat.sealed, (key) => {
    const d = crypto.createDecipheriv('aes-256-gcm', key, parsed.nonce);
    d.setAAD(Buffer.concat([parsed.header, encodeContext(ctx)]));
    d.setAuthTag(parsed.tag);
    // GCM's final() yields no bytes: return update()'s buffer itself, so no
    // intermediate copy of the plaintext is left behind for the caller to miss.
    const out = d.update(parsed.ciphertext);
    try {
      d.final();
    } catch {
      out.fill(0);
      throw KmsErrors.invalidCiphertext();
    }
    return out;
  });
  return { row, plaintext, materialId: mat.material_id.toString('hex') };
}
