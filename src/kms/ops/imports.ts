import crypto from 'node:crypto';
import { DAY_MS } from '../../clock.js';
import { MATERIAL_ID_BYTES } from '../blob.js';
import type { KmsContext } from '../context.js';
import { KmsError, KmsErrors } from '../errors.js';
import { materialProblem } from '../keyspec.js';
import type { ImportParametersRow, KeyRow } from '../store.js';
import { blob, oneOf, reqStr, str } from '../validate.js';

/**
 * Imported key material (Origin EXTERNAL), as AWS KMS does it: an RSA
 * wrapping key and an import token valid for 24 hours; the material arrives
 * wrapped under that public key, optionally expires (at most 365 days ahead),
 * and only the same material can ever be imported into the key again.
 */
type Req = Record<string, unknown>;
const TOKEN_MAGIC = Buffer.from('kmsvol-import-token-v1\0');
const TOKEN_ID_BYTES = 16;
const PARAMETERS_VALID_MS = DAY_MS;
const MAX_VALID_TO_MS = 365 * DAY_MS;
/** kmsvol's bound on KeyMaterialDescription (the model gives none). */
const MAX_DESCRIPTION = 256;
const WRAPPING_ALGORITHMS = [
  'RSAES_PKCS1_V1_5',
  'RSAES_OAEP_SHA_1',
  'RSAES_OAEP_SHA_256',
  'RSA_AES_KEY_WRAP_SHA_1',
  'RSA_AES_KEY_WRAP_SHA_256',
  'SM2PKE',
] as const;
const SUPPORTED_ALGORITHMS = new Set(['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'RSA_AES_KEY_WRAP_SHA_256']);
const KEY_SPECS = { RSA_2048: 2048, RSA_3072: 3072, RSA_4096: 4096 } as const;
/** The sealed wrapping private key is bound to this "material id" in the root key's AAD. */
const PRIVATE_KEY_LABEL = Buffer.alloc(MATERIAL_ID_BYTES, 0xff);

function externalKey(k: KmsContext, ref: string, action: string): KeyRow {
  const row = k.key(ref, action, 'keyOnly');
  const arn = k.keyArn(row.key_id);
  if (row.origin !== 'EXTERNAL')
    throw KmsErrors.unsupported(`${arn} has Origin ${row.origin}; key material can only be imported into keys created with Origin EXTERNAL.`);
  if (row.key_state === 'PendingDeletion') throw KmsErrors.invalidState(arn, row.key_state);
  return row;
}

export function getParametersForImport(k: KmsContext, req: Req) {
  const ref = reqStr(req, 'KeyId');
  const algorithm = oneOf(req, 'WrappingAlgorithm', WRAPPING_ALGORITHMS);
  const spec = oneOf(req, 'WrappingKeySpec', ['RSA_2048', 'RSA_3072', 'RSA_4096', 'SM2'] as const);
  if (!algorithm)
    throw KmsErrors.validation("1 validation error detected: Value null at 'wrappingAlgorithm' failed to satisfy constraint: Member must not be null");
  if (!spec) throw KmsErrors.validation("1 validation error detected: Value null at 'wrappingKeySpec' failed to satisfy constraint: Member must not be null");
  if (!SUPPORTED_ALGORITHMS.has(algorithm))
    throw KmsErrors.unsupported(`WrappingAlgorithm ${algorithm} is not supported; use RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256.`);
  if (spec === 'SM2') throw KmsErrors.unsupported('WrappingKeySpec SM2 is only offered in China Regions; use RSA_2048, RSA_3072 or RSA_4096.');
  const row = externalKey(k, ref, 'kms:GetParametersForImport');
  // Key generation (up to ~1 s for RSA 4096) happens outside the write lock.
  const pair = crypto.generateKeyPairSync('rsa', { modulusLength: KEY_SPECS[spec] });
  const privateDer = pair.privateKey.export({ type: 'pkcs8', format: 'der' });
  const tokenId = crypto.randomBytes(TOKEN_ID_BYTES);
  const now = k.now();
  const validTo = now + PARAMETERS_VALID_MS;
  try {
    const sealed = k.rootKey.seal(`${row.key_id}/import/${tokenId.toString('hex')}`, PRIVATE_KEY_LABEL, privateDer);
    k.store.write(() => {
      k.store.deleteImportParametersBefore(now);
      const p: ImportParametersRow = {
        region: row.region,
        key_id: row.key_id,
        token_id: tokenId,
        wrapping_algorithm: algorithm,
        wrapping_key_spec: spec,
        sealed_private_key: sealed,
        valid_to: validTo,
      };
      k.store.insertImportParameters(p);
    });
  } finally {
    privateDer.fill(0);
  }
  return {
    KeyId: k.keyArn(row.key_id),
    ImportToken: Buffer.concat([TOKEN_MAGIC, tokenId]),
    PublicKey: pair.publicKey.export({ type: 'spki', format: 'der' }),
    ParametersValidTo: new Date(validTo),
  };
}

function timestamp(req: Req, field: string): number | undefined {
  const v = req[field];
  if (v === undefined || v === null) return undefined;
  const ms =
    v instanceof Date
      ? v.getTime()
      : typeof v === 'number'
        ? v * 1000
        : typeof v === 'string'
          ? /^\d+(\.\d+)?$/.test(v)
            ? Number(v) * 1000
            : Date.parse(v)
          : NaN;
  if (!Number.isFinite(ms)) throw KmsErrors.validation(`${field} must be a timestamp (ISO 8601 such as 2027-01-31T00:00:00Z, or epoch seconds).`);
  return ms;
}

/** Unwrap material with the import's RSA private key; InvalidCiphertextException when it does not open. */
function unwrap(algorithm: string, privateDer: Buffer, wrapped: Buffer): Buffer<ArrayBuffer> {
  const key = crypto.createPrivateKey({ key: privateDer, format: 'der', type: 'pkcs8' });
  const bad = () =>
    new KmsError(
      'InvalidCiphertextException',
      `The EncryptedKeyMaterial does not decrypt with this import's wrapping key under ${algorithm}. Wrap the material with the PublicKey of the same GetParametersForImport response, using that algorithm.`,
    );
  try {
    if (algorithm === 'RSA_AES_KEY_WRAP_SHA_256') {
      // RSA-OAEP(SHA-256) of an ephemeral AES-256 key, then AES key wrap with padding (RFC 5649) of the material.
      const rsaLen = key.asymmetricKeyDetails!.modulusLength! / 8;
      if (wrapped.length <= rsaLen) throw bad();
      const aesKey = crypto.privateDecrypt({ key, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, wrapped.subarray(0, rsaLen));
      try {
        if (aesKey.length !== 32) throw bad();
        const d = crypto.createDecipheriv('id-aes256-wrap-pad', aesKey, Buffer.from('a65959a6', 'hex'));
        return Buffer.concat([d.update(wrapped.subarray(rsaLen)), d.final()]);
      } finally {
        aesKey.fill(0);
      }
    }
    return crypto.privateDecrypt(
      { key, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: algorithm === 'RSAES_OAEP_SHA_1' ? 'sha1' : 'sha256' },
      wrapped,
    );
  } catch (e) {
    if (e instanceof KmsError) throw e;
    throw bad();
  }
}

export function importKeyMaterial(k: KmsContext, req: Req) {
  const ref = reqStr(req, 'KeyId');
  const token = blob(req, 'ImportToken', 1, 6144);
  const wrapped = blob(req, 'EncryptedKeyMaterial', 1, 6144);
  const model = oneOf(req, 'ExpirationModel', ['KEY_MATERIAL_EXPIRES', 'KEY_MATERIAL_DOES_NOT_EXPIRE'] as const) ?? 'KEY_MATERIAL_EXPIRES';
  const validTo = timestamp(req, 'ValidTo');
  const typeGiven = oneOf(req, 'ImportType', ['EXISTING_KEY_MATERIAL', 'NEW_KEY_MATERIAL'] as const);
  const namedId = str(req, 'KeyMaterialId', { min: 64, max: 64 });
  const description = str(req, 'KeyMaterialDescription', { max: MAX_DESCRIPTION });
  const now = k.now();
  if (typeGiven === 'NEW_KEY_MATERIAL' && namedId !== undefined)
    throw KmsErrors.validation('KeyMaterialId cannot be given with ImportType NEW_KEY_MATERIAL: new material gets its id when it is imported.');
  if (model === 'KEY_MATERIAL_EXPIRES') {
    if (validTo === undefined)
      throw KmsErrors.validation(
        'ValidTo is required when ExpirationModel is KEY_MATERIAL_EXPIRES (the default). Give ValidTo, or set ExpirationModel KEY_MATERIAL_DOES_NOT_EXPIRE.',
      );
    if (validTo <= now) throw KmsErrors.validation(`ValidTo ${new Date(validTo).toISOString()} is in the past; it must be a future date.`);
    if (validTo > now + MAX_VALID_TO_MS)
      throw KmsErrors.validation(
        `ValidTo ${new Date(validTo).toISOString()} is more than 365 days from now; the latest allowed is ${new Date(now + MAX_VALID_TO_MS).toISOString()}.`,
      );
  } else if (validTo !== undefined) {
    throw KmsErrors.validation('ValidTo is not valid when ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE; omit it.');
  }
  const row = externalKey(k, ref, 'kms:ImportKeyMaterial');
  const arn = k.keyArn(row.key_id);
  // The default: NEW_KEY_MATERIAL for a key that has never had material, EXISTING_KEY_MATERIAL afterwards.
  const importType = typeGiven ?? (row.imported_material_id ? 'EXISTING_KEY_MATERIAL' : 'NEW_KEY_MATERIAL');
  const rotating = importType === 'NEW_KEY_MATERIAL' && row.imported_material_id !== null;
  if ((rotating || description !== undefined) && row.key_spec !== 'SYMMETRIC_DEFAULT')
    throw KmsErrors.unsupported(
      `${arn} is a ${row.key_spec} key; ${rotating ? 'new key material (ImportType NEW_KEY_MATERIAL) can be imported' : 'KeyMaterialDescription can be given'} only for symmetric encryption keys.`,
    );
  if (rotating && row.multi_region === 1)
    throw KmsErrors.unsupported(
      `${arn} is a multi-Region key; kmsvol does not rotate the imported material of multi-Region keys (PENDING_MULTI_REGION_IMPORT_AND_ROTATION). Import new material into a new key and move its alias.`,
    );
  // kmsvol keeps one expiry per key, and an expiry deletes every material of the key: a key whose materials rotate never expires.
  if (rotating && (model === 'KEY_MATERIAL_EXPIRES' || row.expiration_model === 'KEY_MATERIAL_EXPIRES'))
    throw KmsErrors.unsupported(
      `New key material for ${arn} must not expire, nor may its current material (ExpirationModel KEY_MATERIAL_DOES_NOT_EXPIRE): kmsvol keeps one expiry per key, and an expiry would delete the older materials with it. Re-import the current material with KEY_MATERIAL_DOES_NOT_EXPIRE first.`,
    );
  const invalidToken = () =>
    new KmsError(
      'InvalidImportTokenException',
      `The import token is not valid for ${arn}: pass the ImportToken of a GetParametersForImport response for this key.`,
    );
  if (token.length !== TOKEN_MAGIC.length + TOKEN_ID_BYTES || !token.subarray(0, TOKEN_MAGIC.length).equals(TOKEN_MAGIC)) throw invalidToken();
  const tokenId = token.subarray(TOKEN_MAGIC.length);
  const params = k.store.importParameters(tokenId);
  if (!params || params.key_id !== row.key_id || params.region !== row.region) throw invalidToken();
  if (params.valid_to <= now) {
    throw new KmsError(
      'ExpiredImportTokenException',
      `The import token for ${arn} expired at ${new Date(params.valid_to).toISOString()}; import tokens are valid for 24 hours. Call GetParametersForImport again and wrap the material with the new public key.`,
    );
  }
  const privateDer = k.rootKey.unseal(`${row.key_id}/import/${tokenId.toString('hex')}`, PRIVATE_KEY_LABEL, params.sealed_private_key);
  let material: Buffer<ArrayBuffer>;
  try {
    material = unwrap(params.wrapping_algorithm, privateDer, wrapped);
  } finally {
    privateDer.fill(0);
  }
  try {
    // Precondition: the material fits the key spec (32 bytes, the HMAC length, or a PKCS#8 key of the spec).
    const problem = materialProblem(row.key_spec, material);
    if (problem) throw new KmsError('IncorrectKeyMaterialException', problem);
    const materialId = k.rootKey.importedMaterialId(row.key_id, material, MATERIAL_ID_BYTES);
    return k.store.write(() => {
      const cur = k.store.getKey(row.region, row.key_id)!;
      const hex = materialId.toString('hex');
      if (namedId !== undefined && namedId !== hex) {
        throw new KmsError(
          'IncorrectKeyMaterialException',
          `KeyMaterialId ${namedId} is not the id of this key material (${hex}) for ${arn}. Omit KeyMaterialId, or name the material being imported.`,
        );
      }
      const known = k.store.material(row.key_id, materialId);
      if (rotating) {
        // Precondition: new material is new to the key, and at most one material waits for rotation.
        if (known || cur.imported_material_id?.equals(materialId))
          throw new KmsError(
            'IncorrectKeyMaterialException',
            `This key material is already associated with ${arn} (${hex}); import it with ImportType EXISTING_KEY_MATERIAL.`,
          );
        const waiting = k.store.materials(row.key_id).find((m) => m.pending === 1);
        if (waiting)
          throw KmsErrors.invalidStateMsg(
            `${arn} already has key material ${waiting.material_id.toString('hex')} pending rotation. Rotate it in with RotateKeyOnDemand, or delete it (DeleteImportedKeyMaterial with its KeyMaterialId) first.`,
          );
        k.newMaterial(row.key_id, now, null, material, materialId, { pending: true, description });
        return { KeyId: arn, KeyMaterialId: hex };
      }
      // Existing material (or a key's first): only material already associated with the key, once it has some.
      if (cur.imported_material_id && !cur.imported_material_id.equals(materialId) && !known) {
        throw new KmsError(
          'IncorrectKeyMaterialException',
          `The key material is not the material previously imported into ${arn}. A key only ever accepts the same material again; import other material with ImportType NEW_KEY_MATERIAL (then RotateKeyOnDemand), or into a new key.`,
        );
      }
      if (known?.pending === 1) throw KmsErrors.invalidStateMsg(`Key material ${hex} of ${arn} is pending rotation; rotate it in with RotateKeyOnDemand.`);
      if (!known) k.newMaterial(row.key_id, now, null, material, materialId, { description });
      else if (description !== undefined) k.store.setMaterialDescription(row.key_id, materialId, description);
      k.store.updateKey(row.region, row.key_id, {
        key_state: cur.key_state === 'PendingImport' ? 'Enabled' : cur.key_state,
        expiration_model: model,
        valid_to: model === 'KEY_MATERIAL_EXPIRES' ? validTo! : null,
        imported_material_id: cur.imported_material_id ?? materialId,
      });
      return { KeyId: arn, KeyMaterialId: hex };
    });
  } finally {
    material.fill(0);
  }
}

export function deleteImportedKeyMaterial(k: KmsContext, req: Req) {
  const ref = reqStr(req, 'KeyId');
  const namedId = str(req, 'KeyMaterialId', { min: 64, max: 64 });
  return k.store.write(() => {
    const row = k.key(ref, 'kms:DeleteImportedKeyMaterial', 'keyOnly');
    const arn = k.keyArn(row.key_id);
    if (row.origin !== 'EXTERNAL') throw KmsErrors.unsupported(`${arn} has Origin ${row.origin}; only imported key material (Origin EXTERNAL) can be deleted.`);
    const all = k.store.materials(row.key_id);
    const current = k.store.currentMaterial(row.key_id)?.material_id.toString('hex');
    const named = namedId === undefined ? undefined : all.find((m) => m.material_id.toString('hex') === namedId);
    if (namedId !== undefined && !named)
      throw KmsErrors.notFound(
        `Key material ${namedId} does not exist for ${arn}${current ? `; its current key material is ${current}` : '; it has no key material'}. Omit KeyMaterialId to delete the current key material.`,
      );
    // Material pending rotation is not yet the key's: deleting it leaves the key as it is.
    if (named?.pending === 1) {
      k.store.deleteMaterial(row.key_id, named.material_id);
      return { KeyId: arn, KeyMaterialId: namedId };
    }
    if (named && namedId !== current)
      throw KmsErrors.unsupported(
        `Key material ${namedId} of ${arn} is not its current material; kmsvol deletes the current material or one pending rotation, never an older one alone.`,
      );
    if (all.filter((m) => m.pending === 0).length > 1)
      throw KmsErrors.unsupported(
        `${arn} has rotated imported key material; kmsvol keeps a rotated key's materials together and does not delete them (the older ones would be lost with the current one). Disable the key, or schedule its deletion.`,
      );
    k.store.deleteMaterials(row.key_id);
    k.store.updateKey(row.region, row.key_id, {
      key_state: row.key_state === 'PendingDeletion' ? 'PendingDeletion' : 'PendingImport',
      valid_to: null,
      expiration_model: null,
    });
    return { KeyId: arn, ...(current ? { KeyMaterialId: current } : {}) };
  });
}
