import { checkNewPolicy } from '../authz.js';
import type { KmsContext } from '../context.js';
import { KmsErrors } from '../errors.js';
import { keyMetadata } from '../rules/keys.js';
import { assertPrimary, multiRegionConfiguration } from '../rules/multiregion.js';
import { putTags, tags } from '../rules/tags.js';
import type { KeyRow } from '../store.js';
import { bool, reqStr, str } from '../validate.js';

type Req = Record<string, unknown>;

/** ReplicateKey and UpdatePrimaryRegion (the rules of multi-Region keys are in rules/multiregion.ts). */
function region(req: Req, field: string): string {
  const r = reqStr(req, field, 32);
  if (!/^[a-z][a-z0-9-]{1,31}$/.test(r)) throw KmsErrors.validation(`${field} ${r} is not a valid region name.`);
  return r;
}

export function replicateKey(k: KmsContext, req: Req) {
  const ref = reqStr(req, 'KeyId');
  const replicaRegion = region(req, 'ReplicaRegion');
  const description = str(req, 'Description', { max: 8192 });
  const policy = str(req, 'Policy', { max: 32768 });
  const tagList = tags(req, 'Tags');
  const bypass = bool(req, 'BypassPolicyLockoutSafetyCheck');
  return k.store.write(() => {
    const row = k.key(ref, 'kms:ReplicateKey', 'keyOnly');
    assertPrimary(k, row, 'ReplicateKey');
    if (policy !== undefined) checkNewPolicy(k.call, policy, k.keyArn(row.key_id, replicaRegion), bypass);
    if (replicaRegion === k.region) throw KmsErrors.validation(`ReplicaRegion ${replicaRegion} is the primary key's own region; name another region.`);
    if (k.store.getKey(replicaRegion, row.key_id)) throw KmsErrors.alreadyExists(`${k.keyArn(row.key_id, replicaRegion)} already exists.`);
    if (row.key_state === 'PendingDeletion') throw KmsErrors.invalidState(k.keyArn(row.key_id), row.key_state);
    const replica: KeyRow = {
      ...row,
      region: replicaRegion,
      description: description ?? row.description,
      key_state: row.key_state === 'PendingImport' ? 'PendingImport' : 'Enabled',
      creation_date: k.now(),
      deletion_date: null,
      pending_window_days: null,
      // Rotation is the primary's: replicas share its material and schedule.
      rotation_enabled: 0,
      rotation_period_days: null,
      next_rotation_date: null,
      on_demand_rotation_start: null,
      policy: policy ?? row.policy,
    };
    k.store.insertKey(replica);
    putTags(k, row.key_id, tagList, replicaRegion);
    return {
      ReplicaKeyMetadata: { ...keyMetadata(k, replica), MultiRegionConfiguration: multiRegionConfiguration(k, replica) },
      ReplicaPolicy: replica.policy,
      ReplicaTags: tagList,
    };
  });
}

export function updatePrimaryRegion(k: KmsContext, req: Req) {
  const ref = reqStr(req, 'KeyId');
  const target = region(req, 'PrimaryRegion');
  return k.store.write(() => {
    const row = k.key(ref, 'kms:UpdatePrimaryRegion', 'keyOnly');
    assertPrimary(k, row, 'UpdatePrimaryRegion');
    const next = k.store.getKey(target, row.key_id);
    if (!next) throw KmsErrors.notFound(`Key '${k.keyArn(row.key_id, target)}' does not exist: replicate the key to ${target} first.`);
    // The rotation schedule moves with the primary.
    k.store.updateKey(target, row.key_id, {
      rotation_enabled: row.rotation_enabled,
      rotation_period_days: row.rotation_period_days,
      next_rotation_date: row.next_rotation_date,
      on_demand_rotation_start: row.on_demand_rotation_start,
    });
    k.store.updateKey(row.region, row.key_id, { rotation_enabled: 0, rotation_period_days: null, next_rotation_date: null, on_demand_rotation_start: null });
    k.store.setPrimaryRegion(row.key_id, target);
    return {};
  });
}
