import type { KmsContext } from '../context.js';
import { KmsErrors } from '../errors.js';
import type { KeyRow } from '../store.js';

/**
 * The rules of multi-Region keys: related keys in several regions that share
 * key id, material, rotation and key spec, so a blob encrypted in one region
 * decrypts in another. Each region is its own namespace in the store; the rows
 * share `key_id` (and so their materials) and name the primary's region.
 */

/** Precondition: the key is a multi-Region key and this is its primary's region. */
export function assertPrimary(k: KmsContext, row: KeyRow, op: string): void {
  const arn = k.keyArn(row.key_id);
  if (row.multi_region !== 1) throw KmsErrors.unsupported(`${arn} is not a multi-Region key; ${op} works on multi-Region keys (CreateKey with MultiRegion).`);
  if (row.primary_region !== k.region) throw KmsErrors.unsupported(`${arn} is a replica key; call ${op} on the primary key in ${row.primary_region}.`);
}

export function multiRegionConfiguration(k: KmsContext, row: KeyRow) {
  if (row.multi_region !== 1 || !row.primary_region) return undefined;
  const regions = k.store.keyRegions(row.key_id);
  const at = (r: string) => ({ Arn: k.keyArn(row.key_id, r), Region: r });
  return {
    MultiRegionKeyType: row.primary_region === row.region ? 'PRIMARY' : 'REPLICA',
    PrimaryKey: at(row.primary_region),
    ReplicaKeys: regions.filter((r) => r !== row.primary_region).map(at),
  };
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
  const n = k.store.keyRegions(row.key_id).filter((r) => r !== row.region).length;
  if (n > 0) {
    throw KmsErrors.invalidStateMsg(
      `${k.keyArn(row.key_id)} is a multi-Region primary key with ${n} replica key(s). Delete its replicas first, or make another region the primary with UpdatePrimaryRegion.`,
    );
  }
}
