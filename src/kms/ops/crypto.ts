import crypto from 'node:crypto';
import { rsaDecrypt, rsaEncrypt, rsaMaxPlaintext } from '../asymmetric.js';
import type { EncryptionContext } from '../blob.js';
import { NONCE_BYTES } from '../blob.js';
import type { KmsContext } from '../context.js';
import { KmsErrors } from '../errors.js';
import { algorithmsOf, allows, ENCRYPTION_ALGORITHMS } from '../keyspec.js';
import { randomFromStore } from '../keystores/hsm.js';
import { dryRunSucceeded } from '../members.js';
import { materialIdOf, open, seal } from '../rules/envelope.js';
import type { KeyRow } from '../store.js';
import { blob, context, int, oneOf, reqStr, str, strList } from '../validate.js';

type Req = Record<string, unknown>;
const ALG = 'SYMMETRIC_DEFAULT';
const MAX_CIPHERTEXT = 6144;

function algorithm(req: Req, field: string): string {
  return oneOf(req, field, ENCRYPTION_ALGORITHMS) ?? ALG;
}

/** Precondition: the encryption algorithm is one of the key's (SYMMETRIC_DEFAULT, or RSAES_OAEP_* for RSA keys). */
function checkAlgorithm(k: KmsContext, row: KeyRow, alg: string): void {
  if (!allows(row.key_spec, row.key_usage, alg)) {
    throw KmsErrors.invalidKeyUsage(
      `The encryption algorithm ${alg} is not compatible with ${k.keyArn(row.key_id)} (KeySpec ${row.key_spec}); it uses ${(algorithmsOf(row.key_spec, row.key_usage).EncryptionAlgorithms ?? []).join(', ')}.`,
    );
  }
}

/** Precondition: data keys come only from symmetric encryption keys. */
function symmetricOnly(k: KmsContext, row: KeyRow): void {
  if (row.key_spec !== 'SYMMETRIC_DEFAULT')
    throw KmsErrors.invalidKeyUsage(`${k.keyArn(row.key_id)} is a ${row.key_spec} key; this operation needs a symmetric encryption key (SYMMETRIC_DEFAULT).`);
}

/** RSAES-OAEP under an RSA key: no encryption context, at most k - 2 hLen - 2 bytes. */
function rsaSeal(k: KmsContext, row: KeyRow, plaintext: Buffer, ctx: EncryptionContext | undefined, alg: string): Buffer {
  if (ctx !== undefined) throw KmsErrors.validation(`An encryption context is not supported with asymmetric KMS keys; omit it for ${k.keyArn(row.key_id)}.`);
  const max = rsaMaxPlaintext(row.key_spec, alg);
  if (plaintext.length > max)
    throw KmsErrors.validation(`Plaintext is ${plaintext.length} bytes; ${alg} with a ${row.key_spec} key encrypts at most ${max} bytes.`);
  return k.withCurrentMaterial(row, (material) => rsaEncrypt(material, alg, plaintext));
}

/** The asymmetric key a Decrypt names, if KeyId names one; undefined for symmetric keys (their blobs name the key). */
function asymmetricKey(k: KmsContext, keyRef: string | undefined, action: string): KeyRow | undefined {
  if (keyRef === undefined) return undefined;
  const raw = k.store.getKey(k.region, k.resolveKeyId(keyRef));
  if (!raw || raw.key_spec === 'SYMMETRIC_DEFAULT') return undefined;
  const row = k.key(keyRef, action);
  k.assertUsable(row);
  return row;
}

function rsaOpen(k: KmsContext, row: KeyRow, ct: Buffer, ctx: EncryptionContext | undefined, alg: string): Buffer {
  checkAlgorithm(k, row, alg);
  if (ctx !== undefined) throw KmsErrors.validation(`An encryption context is not supported with asymmetric KMS keys; omit it for ${k.keyArn(row.key_id)}.`);
  return k.withCurrentMaterial(row, (material) => rsaDecrypt(material, alg, ct));
}

/**
 * DryRunModifiers IGNORE_CIPHERTEXT: a DryRun of Decrypt or ReEncrypt that
 * checks the caller's permission on the named key alone, without reading the
 * ciphertext. Without DryRun it changes nothing.
 */
function ignoresCiphertext(req: Req): boolean {
  const modifiers = strList(req, 'DryRunModifiers', { max: 1 }) ?? [];
  for (const m of modifiers)
    if (m !== 'IGNORE_CIPHERTEXT')
      throw KmsErrors.validation(
        `1 validation error detected: Value '[${m}]' at 'dryRunModifiers' failed to satisfy constraint: Member must satisfy enum value set: [IGNORE_CIPHERTEXT]`,
      );
  return req.DryRun === true && modifiers.length > 0;
}

/** Precondition of IGNORE_CIPHERTEXT: the key to check is named, since the ciphertext is not read. */
function namedForDryRun(keyRef: string | undefined, field: string): string {
  if (keyRef === undefined)
    throw KmsErrors.validation(`${field} is required with DryRunModifiers IGNORE_CIPHERTEXT: the ciphertext is not read, so name the key to check.`);
  return keyRef;
}

export function encrypt(k: KmsContext, req: Req) {
  const keyId = reqStr(req, 'KeyId');
  const plaintext = blob(req, 'Plaintext', 1, 4096);
  const ctx = context(req, 'EncryptionContext');
  const alg = algorithm(req, 'EncryptionAlgorithm');
  const row = k.usableKey(keyId, { action: 'kms:Encrypt', encryptionContext: ctx, conditions: { 'kms:encryptionalgorithm': alg } });
  checkAlgorithm(k, row, alg);
  const ct = alg === ALG ? seal(k, row, plaintext, ctx) : rsaSeal(k, row, plaintext, ctx, alg);
  return { CiphertextBlob: ct, KeyId: k.keyArn(row.key_id), EncryptionAlgorithm: alg };
}

export function decrypt(k: KmsContext, req: Req) {
  const ct = blob(req, 'CiphertextBlob', 1, MAX_CIPHERTEXT);
  const ctx = context(req, 'EncryptionContext');
  const keyId = str(req, 'KeyId', { max: 2048 });
  const alg = algorithm(req, 'EncryptionAlgorithm');
  if (ignoresCiphertext(req)) {
    const row = k.usableKey(namedForDryRun(keyId, 'KeyId'), { action: 'kms:Decrypt', encryptionContext: ctx, conditions: { 'kms:encryptionalgorithm': alg } });
    checkAlgorithm(k, row, alg);
    throw dryRunSucceeded();
  }
  const rsa = asymmetricKey(k, keyId, 'kms:Decrypt');
  if (rsa) return { KeyId: k.keyArn(rsa.key_id), Plaintext: rsaOpen(k, rsa, ct, ctx, alg), EncryptionAlgorithm: alg };
  if (alg !== ALG && keyId === undefined)
    throw KmsErrors.validation(
      `KeyId is required to decrypt with ${alg}: ciphertext of an asymmetric key does not name its key. Pass the RSA key's id or ARN.`,
    );
  if (alg !== ALG)
    throw KmsErrors.invalidKeyUsage(
      `The encryption algorithm ${alg} is only for asymmetric (RSA) keys; ${keyId} names a symmetric key, which uses SYMMETRIC_DEFAULT.`,
    );
  const { row, plaintext, materialId } = open(k, ct, ctx, keyId, 'kms:Decrypt');
  return { KeyId: k.keyArn(row.key_id), Plaintext: plaintext, EncryptionAlgorithm: ALG, KeyMaterialId: materialId };
}

export function reEncrypt(k: KmsContext, req: Req) {
  const ct = blob(req, 'CiphertextBlob', 1, MAX_CIPHERTEXT);
  const srcCtx = context(req, 'SourceEncryptionContext');
  const srcKey = str(req, 'SourceKeyId', { max: 2048 });
  const destKey = reqStr(req, 'DestinationKeyId');
  const destCtx = context(req, 'DestinationEncryptionContext');
  const srcAlg = algorithm(req, 'SourceEncryptionAlgorithm');
  const destAlg = algorithm(req, 'DestinationEncryptionAlgorithm');
  const dest = k.usableKey(destKey, { action: 'kms:ReEncryptTo', encryptionContext: destCtx });
  checkAlgorithm(k, dest, destAlg);
  if (ignoresCiphertext(req)) {
    const src = k.usableKey(namedForDryRun(srcKey, 'SourceKeyId'), { action: 'kms:ReEncryptFrom', encryptionContext: srcCtx });
    checkAlgorithm(k, src, srcAlg);
    throw dryRunSucceeded();
  }
  const rsa = asymmetricKey(k, srcKey, 'kms:ReEncryptFrom');
  if (!rsa && srcAlg !== ALG && srcKey === undefined)
    throw KmsErrors.validation(
      `SourceKeyId is required to re-encrypt from ${srcAlg}: ciphertext of an asymmetric key does not name its key. Pass the RSA key's id or ARN.`,
    );
  if (!rsa && srcAlg !== ALG)
    throw KmsErrors.invalidKeyUsage(
      `The encryption algorithm ${srcAlg} is only for asymmetric (RSA) keys; ${srcKey} names a symmetric key, which uses SYMMETRIC_DEFAULT.`,
    );
  const { row, plaintext, materialId } = rsa
    ? { row: rsa, plaintext: rsaOpen(k, rsa, ct, srcCtx, srcAlg), materialId: undefined }
    : open(k, ct, srcCtx, srcKey, 'kms:ReEncryptFrom');
  try {
    const blob = destAlg === ALG ? seal(k, dest, plaintext, destCtx) : rsaSeal(k, dest, plaintext, destCtx, destAlg);
    // The material ids are those of symmetric keys only, as AWS gives them.
    return {
      CiphertextBlob: blob,
      SourceKeyId: k.keyArn(row.key_id),
      KeyId: k.keyArn(dest.key_id),
      SourceEncryptionAlgorithm: srcAlg,
      DestinationEncryptionAlgorithm: destAlg,
      ...(materialId ? { SourceKeyMaterialId: materialId } : {}),
      ...(destAlg === ALG ? { DestinationKeyMaterialId: materialIdOf(blob) } : {}),
    };
  } finally {
    plaintext.fill(0);
  }
}

function dataKeyLength(req: Req): number {
  const spec = oneOf(req, 'KeySpec', ['AES_128', 'AES_256'] as const);
  const n = int(req, 'NumberOfBytes', 1, 1024);
  // Precondition: exactly one of KeySpec and NumberOfBytes.
  if ((spec === undefined) === (n === undefined)) throw KmsErrors.validation('Please specify either number of bytes or key spec.');
  return spec === 'AES_128' ? 16 : spec === 'AES_256' ? 32 : n!;
}

export function generateDataKey(k: KmsContext, req: Req) {
  const keyId = reqStr(req, 'KeyId');
  const len = dataKeyLength(req);
  const ctx = context(req, 'EncryptionContext');
  const row = k.usableKey(keyId, { action: 'kms:GenerateDataKey', encryptionContext: ctx });
  symmetricOnly(k, row);
  const plaintext = crypto.randomBytes(len);
  const ct = seal(k, row, plaintext, ctx);
  return { CiphertextBlob: ct, Plaintext: plaintext, KeyId: k.keyArn(row.key_id), KeyMaterialId: materialIdOf(ct) };
}

export function generateDataKeyWithoutPlaintext(k: KmsContext, req: Req) {
  const keyId = reqStr(req, 'KeyId');
  const len = dataKeyLength(req);
  const ctx = context(req, 'EncryptionContext');
  const row = k.usableKey(keyId, { action: 'kms:GenerateDataKeyWithoutPlaintext', encryptionContext: ctx });
  symmetricOnly(k, row);
  // One RNG call for the nonce and the key; the key part is zeroed at once.
  const rnd = crypto.randomBytes(NONCE_BYTES + len);
  try {
    const ct = seal(k, row, rnd.subarray(NONCE_BYTES), ctx, rnd.subarray(0, NONCE_BYTES));
    return { CiphertextBlob: ct, KeyId: k.keyArn(row.key_id), KeyMaterialId: materialIdOf(ct) };
  } finally {
    rnd.fill(0);
  }
}

export function generateRandom(k: KmsContext, req: Req) {
  k.authorizeIamOnly('kms:GenerateRandom');
  const n = int(req, 'NumberOfBytes', 1, 1024);
  if (n === undefined) throw KmsErrors.validation('Please specify NumberOfBytes (1 to 1024).');
  const storeId = str(req, 'CustomKeyStoreId', { min: 1, max: 64 });
  return { Plaintext: storeId === undefined ? crypto.randomBytes(n) : randomFromStore(k, storeId, n) };
}
