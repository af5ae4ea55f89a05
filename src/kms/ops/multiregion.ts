import type { KmsContext } from '../context.js';
import { KmsErrors } from '../errors.js';
import type { KeyRow } from '../store.js';
import { bool, reqStr, str } from '../validate.js';
import { keyMetadata, putTags, tags } from './keys.js';
import { checkNewPolicy } from './policies.js';

type Req = Record<string, unknown>;

/**
 * Multi-Region keys: related keys in several regions that share key id,
 * material, rotation and key spec, so a blob encrypted in one region decrypts
 * in another. Each region is its own namespace in the store; the rows share
 * `key_id` (and so their materials) and name the primary's region.
 */
function region(req: Req, field: string): string {
  const r = reqStr(req, field, 32);
  if (!/^[a-z][a-z0-9-]{1,31}$/.test(r)) throw KmsErrors.validation(`${field} ${r} is not a valid region name.`);
  return r;
}

/** Precondition: the key is a multi-Region key and this is its primary's region. */
function primaryOf(k: KmsContext, row: KeyRow, op: string): void {
  const arn = k.keyArn(row.key_id);
  if (row.multi_region !== 1) throw KmsErrors.unsupported(`${arn} is not a multi-Region key; ${op} works on multi-Region keys (CreateKey with MultiRegion).`);
  if (row.primary_region !== k.region) throw KmsErrors.unsupported(`${arn} is a replica key; call ${op} on the primary key in ${row.primary_region}.`);
}

export function multiRegionConfiguration(k: KmsContext, row: KeyRow) {
  if (row.multi_region !== 1 || !row.primary_region) return undefined;
  const regions = (k.store.stmt('SELECT region FROM keys WHERE key_id = ? ORDER BY region').all(row.key_id) as { region: string }[]).map((r) => r.region);
  const at = (r: string) => ({ Arn: k.keyArn(row.key_id, r), Region: r });
  return {
    MultiRegionKeyType: row.primary_region === row.region ? 'PRIMARY' : 'REPLICA',
    PrimaryKey: at(row.primary_region),
    ReplicaKeys: regions.filter((r) => r !== row.primary_region).map(at),
  };
}

export function replicateKey(k: KmsContext, req: Req) {
  const ref = reqStr(req, 'KeyId');
  const replicaRegion = region(req, 'ReplicaRegion');
  const description = str(req, 'Description', { max: 8192 });
  const policy = str(req, 'Policy', { max: 32768 });
  const tagList = tags(req, 'Tags');
  const bypass = bool(req, 'BypassPolicyLockoutSafetyCheck');
  return k.store.write(() => {
    const row = k.key(ref, 'keyOnly');
    primaryOf(k, row, 'ReplicateKey');
    if (policy !== undefined) checkNewPolicy(k, policy, k.keyArn(row.key_id, replicaRegion), bypass);
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
    const row = k.key(ref, 'keyOnly');
    primaryOf(k, row, 'UpdatePrimaryRegion');
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
    k.store.stmt('UPDATE keys SET primary_region = ? WHERE key_id = ?').run(target, row.key_id);
    return {};
  });
}

/** The row that holds a key's rotation settings: the primary's for a multi-Region key. */
export function rotationRow(k: KmsContext, row: KeyRow): KeyRow {
  if (row.multi_region !== 1 || !row.primary_region || row.primary_region === row.region) return row;
  return k.store.getKey(row.primary_region, row.key_id) ?? row;
}

/** Precondition for rotation changes: a multi-Region key rotates from its primary. */
export function assertRotationHere(k: KmsContext, row: KeyRow, op: string): void {
  if (row.multi_region === 1 && row.primary_region && row.primary_region !== row.region) {
    throw KmsErrors.unsupported(
      `${k.keyArn(row.key_id)} is a multi-Region replica key; ${op} is only allowed on its primary key in ${row.primary_region}, whose rotation the replicas share.`,
    );
  }
}

/** Precondition for deleting a primary: it has no replicas left. */
export function assertNoReplicas(k: KmsContext, row: KeyRow): void {
  if (row.multi_region !== 1 || row.primary_region !== row.region) return;
  const n = (k.store.stmt('SELECT COUNT(*) AS n FROM keys WHERE key_id = ? AND region != ?').get(row.key_id, row.region) as { n: number }).n;
  if (n > 0) {
    throw KmsErrors.invalidStateMsg(
      `${k.keyArn(row.key_id)} is a multi-Region primary key with ${n} replica key(s). Delete its replicas first, or make another region the primary with UpdatePrimaryRegion.`,
    );
  }
}
