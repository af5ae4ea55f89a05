import { DAY_MS } from '../../clock.js';
import type { KmsContext } from '../context.js';
import { KmsErrors } from '../errors.js';
import { assertCustomerManaged } from '../rules/keys.js';
import { assertRotationHere, rotationRow } from '../rules/multiregion.js';
import type { KeyRow } from '../store.js';
import { int, LIMITS, oneOf, paginate, reqStr } from '../validate.js';

type Req = Record<string, unknown>;
export const ON_DEMAND_ROTATION_LIMIT = 10;

/** Precondition: only symmetric encryption keys rotate (not asymmetric or HMAC keys). */
function assertSymmetric(k: KmsContext, row: KeyRow, op: string): void {
  if (row.key_spec !== 'SYMMETRIC_DEFAULT')
    throw KmsErrors.unsupported(`${k.keyArn(row.key_id)} is a ${row.key_spec} key; ${op} is supported only for symmetric encryption keys (SYMMETRIC_DEFAULT).`);
}

function assertRotatable(k: KmsContext, row: KeyRow, op: string, importedToo = false): void {
  const arn = k.keyArn(row.key_id);
  assertSymmetric(k, row, op);
  if (row.origin !== 'AWS_KMS' && !(importedToo && row.origin === 'EXTERNAL'))
    throw KmsErrors.unsupported(
      `${arn} has imported key material (Origin ${row.origin}); ${op} is not supported for it. Rotate it manually by creating a new key and updating its alias.`,
    );
  if (row.key_state === 'Disabled') throw KmsErrors.disabled(arn);
  if (row.key_state !== 'Enabled') throw KmsErrors.invalidState(arn, row.key_state);
}

export function enableKeyRotation(k: KmsContext, req: Req) {
  const ref = reqStr(req, 'KeyId');
  const period = int(req, 'RotationPeriodInDays', 90, 2560) ?? 365;
  return k.store.write(() => {
    const row = k.key(ref, 'kms:EnableKeyRotation', 'keyOnly');
    assertCustomerManaged(k, row, 'EnableKeyRotation');
    assertRotationHere(k, row, 'EnableKeyRotation');
    assertRotatable(k, row, 'EnableKeyRotation');
    if (row.rotation_enabled === 1 && row.rotation_period_days === period) return {};
    k.store.updateKey(row.region, row.key_id, { rotation_enabled: 1, rotation_period_days: period, next_rotation_date: k.now() + period * DAY_MS });
    return {};
  });
}

export function disableKeyRotation(k: KmsContext, req: Req) {
  const ref = reqStr(req, 'KeyId');
  return k.store.write(() => {
    const row = k.key(ref, 'kms:DisableKeyRotation', 'keyOnly');
    assertCustomerManaged(k, row, 'DisableKeyRotation');
    assertRotationHere(k, row, 'DisableKeyRotation');
    assertRotatable(k, row, 'DisableKeyRotation');
    k.store.updateKey(row.region, row.key_id, { rotation_enabled: 0, rotation_period_days: null, next_rotation_date: null });
    return {};
  });
}

export function getKeyRotationStatus(k: KmsContext, req: Req) {
  // Asymmetric and HMAC keys never rotate: their status is always false, as for imported material.
  const own = k.key(reqStr(req, 'KeyId'), 'kms:GetKeyRotationStatus', 'keyOnly');
  const row = { ...rotationRow(k, own), key_id: own.key_id };
  const on = row.rotation_enabled === 1;
  return {
    KeyRotationEnabled: on,
    KeyId: k.keyArn(row.key_id),
    ...(on ? { RotationPeriodInDays: row.rotation_period_days, NextRotationDate: new Date(row.next_rotation_date!) } : {}),
    ...(row.on_demand_rotation_start !== null ? { OnDemandRotationStartDate: new Date(row.on_demand_rotation_start) } : {}),
  };
}

export function rotateKeyOnDemand(k: KmsContext, req: Req) {
  const ref = reqStr(req, 'KeyId');
  return k.store.write(() => {
    const row = k.key(ref, 'kms:RotateKeyOnDemand', 'keyOnly');
    assertCustomerManaged(k, row, 'RotateKeyOnDemand');
    assertRotationHere(k, row, 'RotateKeyOnDemand');
    assertRotatable(k, row, 'RotateKeyOnDemand', true);
    const materials = k.store.materials(row.key_id);
    const done = materials.filter((m) => m.rotation_type === 'ON_DEMAND').length;
    // Precondition: at most 10 on-demand rotations per key, ever.
    if (done >= ON_DEMAND_ROTATION_LIMIT) {
      throw KmsErrors.limitExceeded(
        `${k.keyArn(row.key_id)} has reached the limit of ${ON_DEMAND_ROTATION_LIMIT} on-demand rotations. Enable automatic rotation, or create a new key and move its alias.`,
      );
    }
    const now = k.now();
    if (row.origin === 'EXTERNAL') {
      // Imported material rotates to material imported for it (ImportType NEW_KEY_MATERIAL), never to material kmsvol makes.
      const pending = materials.find((m) => m.pending === 1);
      if (!pending)
        throw KmsErrors.invalidStateMsg(
          `${k.keyArn(row.key_id)} has no key material pending rotation. Import new key material (ImportKeyMaterial with ImportType NEW_KEY_MATERIAL) first.`,
        );
      k.store.completePendingRotation(row.key_id, pending.material_id, now);
      k.store.updateKey(row.region, row.key_id, { on_demand_rotation_start: now });
      return { KeyId: k.keyArn(row.key_id) };
    }
    // On-demand rotation does not move the automatic schedule.
    k.newMaterial(row.key_id, now, 'ON_DEMAND');
    k.store.updateKey(row.region, row.key_id, { on_demand_rotation_start: now });
    return { KeyId: k.keyArn(row.key_id) };
  });
}

/**
 * ListKeyRotations: the key's rotations (ROTATIONS_ONLY, the default) or
 * every key material it has had (ALL_KEY_MATERIAL: the original material
 * too, which has no rotation date or type). Each entry says whether its
 * material is the one that encrypts now (CURRENT) or only decrypts.
 */
export function listKeyRotations(k: KmsContext, req: Req) {
  const include = oneOf(req, 'IncludeKeyMaterial', ['ALL_KEY_MATERIAL', 'ROTATIONS_ONLY'] as const) ?? 'ROTATIONS_ONLY';
  const row = k.key(reqStr(req, 'KeyId'), 'kms:ListKeyRotations', 'keyOnly');
  const arn = k.keyArn(row.key_id);
  const materials = k.store.materials(row.key_id);
  const current = materials.filter((m) => m.pending === 0).at(-1);
  const imported = row.origin === 'EXTERNAL';
  const listed = materials.filter((m) => include === 'ALL_KEY_MATERIAL' || (m.rotation_type !== null && m.pending === 0));
  const { page, ...more } = paginate(req, listed, LIMITS.ListKeyRotations, 'ListKeyRotations', (m) => [m.seq]);
  const rotations = page.map((m) => ({
    KeyId: arn,
    KeyMaterialId: m.material_id.toString('hex'),
    ...(m.description !== null ? { KeyMaterialDescription: m.description } : {}),
    ...(imported
      ? {
          ImportState: 'IMPORTED',
          ExpirationModel: row.expiration_model ?? undefined,
          ...(row.valid_to !== null ? { ValidTo: new Date(row.valid_to) } : {}),
        }
      : {}),
    KeyMaterialState: m.pending === 1 ? 'PENDING_ROTATION' : m === current ? 'CURRENT' : 'NON_CURRENT',
    ...(m.rotation_type !== null && m.pending === 0 ? { RotationDate: new Date(m.created), RotationType: m.rotation_type } : {}),
  }));
  return { Rotations: rotations, ...more };
}
