import crypto from 'node:crypto';
import { authorizeIamOnly } from '../authz.js';
import type { KmsContext } from '../context.js';
import { KmsErrors } from '../errors.js';
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
      Statement: [
        { Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'kms:*', Resource: '*' },
      ],
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
    EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
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
  const ins = k.store.stmt('INSERT INTO tags (region, key_id, tag_key, tag_value) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET tag_value = excluded.tag_value');
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
}

/** Insert a key row (and its first material when the origin is AWS_KMS). Call inside a write transaction. */
export function insertKey(k: KmsContext, spec: NewKey): KeyRow {
  const now = k.now();
  const origin = spec.origin ?? 'AWS_KMS';
  const keyId = spec.multiRegion ? `mrk-${crypto.randomBytes(16).toString('hex')}` : crypto.randomUUID();
  const row: KeyRow = {
    region: k.region,
    key_id: keyId,
    description: spec.description ?? '',
    key_usage: 'ENCRYPT_DECRYPT',
    key_spec: 'SYMMETRIC_DEFAULT',
    origin,
    key_manager: spec.keyManager ?? 'CUSTOMER',
    key_state: origin === 'EXTERNAL' ? 'PendingImport' : 'Enabled',
    creation_date: now,
    deletion_date: null,
    pending_window_days: null,
    multi_region: spec.multiRegion ? 1 : 0,
    rotation_enabled: 0,
    rotation_period_days: null,
    next_rotation_date: null,
    on_demand_rotation_start: null,
    expiration_model: null,
    valid_to: null,
    policy: spec.policy ?? defaultPolicy(k.account),
    primary_region: spec.multiRegion ? k.region : null,
    imported_material_id: null,
  };
  k.store.insertKey(row);
  if (origin === 'AWS_KMS') k.newMaterial(keyId, now, null);
  putTags(k, keyId, spec.tags ?? []);
  return row;
}

export function createKey(k: KmsContext, req: Req) {
  const description = str(req, 'Description', { max: 8192 });
  const usage = oneOf(req, 'KeyUsage', ['ENCRYPT_DECRYPT', 'SIGN_VERIFY', 'GENERATE_VERIFY_MAC', 'KEY_AGREEMENT'] as const);
  const spec = str(req, 'KeySpec', { max: 64 }) ?? str(req, 'CustomerMasterKeySpec', { max: 64 });
  const origin = oneOf(req, 'Origin', ['AWS_KMS', 'EXTERNAL', 'AWS_CLOUDHSM', 'EXTERNAL_KEY_STORE'] as const);
  const policy = str(req, 'Policy', { max: 32768 });
  const bypass = bool(req, 'BypassPolicyLockoutSafetyCheck');
  const multiRegion = bool(req, 'MultiRegion');
  const tagList = tags(req, 'Tags');
  if (usage && usage !== 'ENCRYPT_DECRYPT') throw KmsErrors.unsupported(`KeyUsage ${usage} is not supported by kmsvol; it provides symmetric ENCRYPT_DECRYPT keys.`);
  if (spec && spec !== 'SYMMETRIC_DEFAULT') throw KmsErrors.unsupported(`KeySpec ${spec} is not supported by kmsvol; use SYMMETRIC_DEFAULT.`);
  if (origin === 'AWS_CLOUDHSM' || origin === 'EXTERNAL_KEY_STORE') throw KmsErrors.unsupported(`Origin ${origin} needs a custom key store, which kmsvol does not have; use AWS_KMS or EXTERNAL.`);
  authorizeIamOnly(k, 'kms:CreateKey');
  const row = k.store.write(() => {
    const created = insertKey(k, { description, origin, multiRegion, policy, tags: tagList });
    if (policy !== undefined) checkNewPolicy(k, policy, k.keyArn(created.key_id), bypass);
    return created;
  });
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
