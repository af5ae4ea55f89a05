import crypto from 'node:crypto';
import { MATERIAL_ID_BYTES } from '../blob.js';
import type { KmsContext } from '../context.js';
import { KmsErrors } from '../errors.js';
import { algorithmsOf, newMaterialFor } from '../keyspec.js';
import { customKeyMetadata } from '../keystores/keys.js';
import type { KeyRow } from '../store.js';
import { multiRegionConfiguration } from './multiregion.js';
import type { Tag } from './tags.js';
import { putTags } from './tags.js';

/**
 * The rules every operation on a key shares: how a key comes into being (its
 * default policy, its first material and tags), how it is shown (KeyMetadata),
 * and who may change its lifecycle.
 */
export function defaultPolicy(account: string): string {
  return JSON.stringify(
    {
      Version: '2012-10-17',
      Id: 'key-default-1',
      Statement: [{ Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'kms:*', Resource: '*' }],
    },
    null,
    2,
  );
}

/** KeyMetadata with AWS's field names. */
export function keyMetadata(k: KmsContext, row: KeyRow) {
  const material = k.store.currentMaterial(row.key_id);
  return {
    AWSAccountId: k.account,
    KeyId: row.key_id,
    Arn: k.keyArn(row.key_id, row.region),
    CreationDate: new Date(row.creation_date),
    Enabled: row.key_state === 'Enabled',
    Description: row.description,
    KeyUsage: row.key_usage,
    KeyState: row.key_state,
    ...(row.deletion_date !== null ? { DeletionDate: new Date(row.deletion_date) } : {}),
    ...(row.valid_to !== null ? { ValidTo: new Date(row.valid_to) } : {}),
    Origin: row.origin,
    KeyManager: row.key_manager,
    CustomerMasterKeySpec: row.key_spec,
    KeySpec: row.key_spec,
    ...algorithmsOf(row.key_spec, row.key_usage),
    MultiRegion: row.multi_region === 1,
    ...(row.expiration_model !== null ? { ExpirationModel: row.expiration_model } : {}),
    ...(material ? { CurrentKeyMaterialId: material.material_id.toString('hex') } : {}),
    ...(row.multi_region === 1 ? { MultiRegionConfiguration: multiRegionConfiguration(k, row) } : {}),
    ...customKeyMetadata(k, row),
  };
}

export interface NewKey {
  description?: string;
  /** AWS_CLOUDHSM: no material here (the key is in the store's token, keystores/keys.ts). */
  origin?: 'AWS_KMS' | 'EXTERNAL' | 'AWS_CLOUDHSM' | 'EXTERNAL_KEY_STORE';
  keyManager?: 'CUSTOMER' | 'AWS';
  multiRegion?: boolean;
  policy?: string;
  tags?: Tag[];
  keySpec?: string;
  keyUsage?: string;
  /** Given material (seed files): the key is Origin EXTERNAL with material that does not expire. */
  material?: Buffer;
  /** Material generated before the write lock was taken (RSA key generation takes up to a second). */
  generated?: Buffer;
  keyId?: string;
}

/** Insert a key row (and its first material when the origin is AWS_KMS). Call inside a write transaction. */
export function insertKey(k: KmsContext, spec: NewKey): KeyRow {
  const now = k.now();
  const origin = spec.origin ?? 'AWS_KMS';
  const keyId = spec.keyId ?? (spec.multiRegion ? `mrk-${crypto.randomBytes(16).toString('hex')}` : crypto.randomUUID());
  const keySpec = spec.keySpec ?? 'SYMMETRIC_DEFAULT';
  const row: KeyRow = {
    region: k.region,
    key_id: keyId,
    description: spec.description ?? '',
    key_usage: spec.keyUsage ?? 'ENCRYPT_DECRYPT',
    key_spec: keySpec,
    origin,
    key_manager: spec.keyManager ?? 'CUSTOMER',
    key_state: origin === 'EXTERNAL' && !spec.material ? 'PendingImport' : 'Enabled',
    creation_date: now,
    deletion_date: null,
    pending_window_days: null,
    multi_region: spec.multiRegion ? 1 : 0,
    rotation_enabled: 0,
    rotation_period_days: null,
    next_rotation_date: null,
    on_demand_rotation_start: null,
    expiration_model: spec.material ? 'KEY_MATERIAL_DOES_NOT_EXPIRE' : null,
    valid_to: null,
    policy: spec.policy ?? defaultPolicy(k.account),
    primary_region: spec.multiRegion ? k.region : null,
    imported_material_id: null,
  };
  if (spec.material) {
    const copy = Buffer.from(spec.material);
    const materialId = k.rootKey.importedMaterialId(keyId, copy, MATERIAL_ID_BYTES);
    row.imported_material_id = materialId;
    k.store.insertKey(row);
    k.newMaterial(keyId, now, null, copy, materialId);
  } else {
    k.store.insertKey(row);
    // EXTERNAL_KEY_STORE keys have KMS's own material too: the inner layer of their double encryption.
    if (origin === 'AWS_KMS' || origin === 'EXTERNAL_KEY_STORE') k.newMaterial(keyId, now, null, spec.generated ?? newMaterialFor(keySpec));
  }
  putTags(k, keyId, spec.tags ?? []);
  return row;
}

/** AWS managed keys belong to their service: users cannot change their state. */
export function assertCustomerManaged(k: KmsContext, row: KeyRow, op: string): void {
  if (row.key_manager === 'AWS') {
    throw KmsErrors.unsupported(
      `${k.keyArn(row.key_id)} is an AWS managed key; ${op} is not allowed on AWS managed keys. Use a customer managed key if you need to control its lifecycle.`,
    );
  }
}
