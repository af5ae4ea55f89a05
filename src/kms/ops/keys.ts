import crypto from 'node:crypto';
import { authorizeIamOnly } from '../authz.js';
import { MATERIAL_ID_BYTES } from '../blob.js';
import type { KmsContext } from '../context.js';
import { KmsErrors } from '../errors.js';
import { algorithmsOf, checkSpecUsage, KEY_SPECS, KEY_USAGES, newMaterialFor } from '../keyspec.js';
import type { KeyRow } from '../store.js';
import { bool, oneOf, paginate, reqStr, str, strList } from '../validate.js';
import { multiRegionConfiguration } from './multiregion.js';
import { checkNewPolicy } from './policies.js';

type Req = Record<string, unknown>;
export interface Tag {
  TagKey: string;
  TagValue: string;
}

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
  };
}

export function tags(req: Req, field: string): Tag[] {
  const v = req[field];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw KmsErrors.validation(`${field} must be a list of {TagKey, TagValue}.`);
  return v.map((t: unknown) => {
    const tag = (t ?? {}) as Record<string, unknown>;
    const key = str(tag, 'TagKey', { required: true, max: 128 })!;
    const value = str(tag, 'TagValue', { required: true, min: 0, max: 256 })!;
    if (key.toLowerCase().startsWith('aws:')) throw KmsErrors.tag(`Tag keys beginning with "aws:" are reserved for AWS. Rename the tag ${key}.`);
    return { TagKey: key, TagValue: value };
  });
}

export function putTags(k: KmsContext, keyId: string, list: Tag[], region = k.region): void {
  const ins = k.store.stmt(
    'INSERT INTO tags (region, key_id, tag_key, tag_value) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET tag_value = excluded.tag_value',
  );
  for (const t of list) ins.run(region, keyId, t.TagKey, t.TagValue);
  const n = (k.store.stmt('SELECT COUNT(*) AS n FROM tags WHERE region = ? AND key_id = ?').get(region, keyId) as { n: number }).n;
  if (n > 50) throw KmsErrors.tag(`A KMS key can have at most 50 tags; this request would give ${k.keyArn(keyId)} ${n}. Remove some with UntagResource first.`);
}

export interface NewKey {
  description?: string;
  origin?: 'AWS_KMS' | 'EXTERNAL';
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
    if (origin === 'AWS_KMS') k.newMaterial(keyId, now, null, spec.generated ?? newMaterialFor(keySpec));
  }
  putTags(k, keyId, spec.tags ?? []);
  return row;
}

export function createKey(k: KmsContext, req: Req) {
  const description = str(req, 'Description', { max: 8192 });
  const usage = oneOf(req, 'KeyUsage', KEY_USAGES);
  const keySpec = oneOf(req, 'KeySpec', KEY_SPECS);
  const cmkSpec = oneOf(req, 'CustomerMasterKeySpec', KEY_SPECS);
  if (keySpec && cmkSpec)
    throw KmsErrors.validation('You cannot specify both KeySpec and CustomerMasterKeySpec; use KeySpec (CustomerMasterKeySpec is deprecated).');
  const spec = keySpec ?? cmkSpec ?? 'SYMMETRIC_DEFAULT';
  const origin = oneOf(req, 'Origin', ['AWS_KMS', 'EXTERNAL', 'AWS_CLOUDHSM', 'EXTERNAL_KEY_STORE'] as const);
  const policy = str(req, 'Policy', { max: 32768 });
  const bypass = bool(req, 'BypassPolicyLockoutSafetyCheck');
  const multiRegion = bool(req, 'MultiRegion');
  const tagList = tags(req, 'Tags');
  const keyUsage = checkSpecUsage(spec, usage);
  if (origin === 'AWS_CLOUDHSM' || origin === 'EXTERNAL_KEY_STORE')
    throw KmsErrors.unsupported(`Origin ${origin} needs a custom key store, which kmsvol does not have; use AWS_KMS or EXTERNAL.`);
  authorizeIamOnly(k, 'kms:CreateKey');
  const generated = origin === 'EXTERNAL' || spec === 'SYMMETRIC_DEFAULT' ? undefined : newMaterialFor(spec);
  let row: KeyRow;
  try {
    row = k.store.write(() => {
      const created = insertKey(k, { description, origin, multiRegion, policy, tags: tagList, keySpec: spec, keyUsage, generated });
      if (policy !== undefined) checkNewPolicy(k, policy, k.keyArn(created.key_id), bypass);
      return created;
    });
  } finally {
    generated?.fill(0);
  }
  return { KeyMetadata: keyMetadata(k, row) };
}

export function describeKey(k: KmsContext, req: Req) {
  const row = k.key(reqStr(req, 'KeyId'));
  return { KeyMetadata: keyMetadata(k, row) };
}

export function listKeys(k: KmsContext, req: Req) {
  authorizeIamOnly(k, 'kms:ListKeys');
  const rows = k.store.listKeys(k.region).filter((r) => k.settle(r) !== undefined);
  const { page, ...more } = paginate(req, rows);
  return { Keys: page.map((r) => ({ KeyId: r.key_id, KeyArn: k.keyArn(r.key_id) })), ...more };
}

export function updateKeyDescription(k: KmsContext, req: Req) {
  const ref = reqStr(req, 'KeyId');
  const description = str(req, 'Description', { required: true, min: 0, max: 8192 })!;
  k.store.write(() => {
    const row = k.key(ref, 'keyOnly');
    k.store.updateKey(row.region, row.key_id, { description });
  });
  return {};
}

export function tagResource(k: KmsContext, req: Req) {
  const ref = reqStr(req, 'KeyId');
  const list = tags(req, 'Tags');
  k.store.write(() => {
    const row = k.key(ref, 'keyOnly');
    if (row.key_state === 'PendingDeletion') throw KmsErrors.invalidState(k.keyArn(row.key_id), row.key_state);
    putTags(k, row.key_id, list);
  });
  return {};
}

export function untagResource(k: KmsContext, req: Req) {
  const ref = reqStr(req, 'KeyId');
  const keys = strList(req, 'TagKeys', { required: true, max: 50 })!;
  k.store.write(() => {
    const row = k.key(ref, 'keyOnly');
    if (row.key_state === 'PendingDeletion') throw KmsErrors.invalidState(k.keyArn(row.key_id), row.key_state);
    const del = k.store.stmt('DELETE FROM tags WHERE region = ? AND key_id = ? AND tag_key = ?');
    for (const t of keys) del.run(k.region, row.key_id, t);
  });
  return {};
}

export function listResourceTags(k: KmsContext, req: Req) {
  const row = k.key(reqStr(req, 'KeyId'), 'keyOnly');
  const all = k.store
    .stmt('SELECT tag_key AS TagKey, tag_value AS TagValue FROM tags WHERE region = ? AND key_id = ? ORDER BY tag_key')
    .all(k.region, row.key_id) as Tag[];
  const { page, ...more } = paginate(req, all, 50, 50);
  return { Tags: page, ...more };
}
