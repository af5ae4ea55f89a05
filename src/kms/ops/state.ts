import { DAY_MS } from '../../clock.js';
import type { KmsContext } from '../context.js';
import { KmsErrors } from '../errors.js';
import { assertCustomerManaged } from '../rules/keys.js';
import { assertNoReplicas } from '../rules/multiregion.js';
import type { KeyRow } from '../store.js';
import { int, reqStr } from '../validate.js';

type Req = Record<string, unknown>;

/** Run a lifecycle change on a settled key inside one write transaction. */
function mutate<T>(k: KmsContext, req: Req, op: string, fn: (row: KeyRow, arn: string, now: number) => T): T {
  const ref = reqStr(req, 'KeyId');
  return k.store.write(() => {
    const row = k.key(ref, `kms:${op}`, 'keyOnly');
    assertCustomerManaged(k, row, op);
    return fn(row, k.keyArn(row.key_id), k.now());
  });
}

export function enableKey(k: KmsContext, req: Req) {
  return mutate(k, req, 'EnableKey', (row, arn, now) => {
    // Precondition: only Disabled (or already Enabled) keys can be enabled.
    if (row.key_state === 'PendingDeletion' || row.key_state === 'PendingImport') throw KmsErrors.invalidState(arn, row.key_state);
    if (row.key_state === 'Enabled') return {};
    const fields: Partial<KeyRow> = { key_state: 'Enabled' };
    // A key that was due to rotate while disabled rotates as soon as it is enabled again.
    if (row.rotation_enabled === 1 && row.next_rotation_date !== null && row.next_rotation_date <= now) {
      k.newMaterial(row.key_id, now, 'AUTOMATIC');
      fields.next_rotation_date = now + row.rotation_period_days! * DAY_MS;
    }
    k.store.updateKey(row.region, row.key_id, fields);
    return {};
  });
}

export function disableKey(k: KmsContext, req: Req) {
  return mutate(k, req, 'DisableKey', (row, arn) => {
    if (row.key_state === 'PendingDeletion' || row.key_state === 'PendingImport') throw KmsErrors.invalidState(arn, row.key_state);
    if (row.key_state === 'Enabled') k.store.updateKey(row.region, row.key_id, { key_state: 'Disabled' });
    return {};
  });
}

export function scheduleKeyDeletion(k: KmsContext, req: Req) {
  const days = int(req, 'PendingWindowInDays', 7, 30) ?? 30;
  return mutate(k, req, 'ScheduleKeyDeletion', (row, arn, now) => {
    if (row.key_state === 'PendingDeletion') throw KmsErrors.invalidState(arn, row.key_state);
    assertNoReplicas(k, row);
    const deletionDate = now + days * DAY_MS;
    k.store.updateKey(row.region, row.key_id, { key_state: 'PendingDeletion', deletion_date: deletionDate, pending_window_days: days });
    return { KeyId: arn, DeletionDate: new Date(deletionDate), KeyState: 'PendingDeletion', PendingWindowInDays: days };
  });
}

export function cancelKeyDeletion(k: KmsContext, req: Req) {
  return mutate(k, req, 'CancelKeyDeletion', (row, arn) => {
    if (row.key_state !== 'PendingDeletion') throw KmsErrors.invalidStateMsg(`${arn} is not pending deletion.`);
    // A cancelled key comes back Disabled (or PendingImport when it has no material), never Enabled.
    const hasMaterial = k.store.currentMaterial(row.key_id) !== undefined;
    k.store.updateKey(row.region, row.key_id, {
      key_state: hasMaterial ? 'Disabled' : 'PendingImport',
      deletion_date: null,
      pending_window_days: null,
    });
    return { KeyId: arn };
  });
}
