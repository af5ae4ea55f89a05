import { checkNewPolicy, DEFAULT_POLICY_NAME } from '../authz.js';
import type { KmsContext } from '../context.js';
import { KmsErrors } from '../errors.js';
import { assertCustomerManaged } from '../rules/keys.js';
import type { KeyRow } from '../store.js';
import { bool, LIMITS, oneOf, paginate, reqStr } from '../validate.js';

type Req = Record<string, unknown>;

function policyName(req: Req): string {
  const name = oneOf(req, 'PolicyName', [DEFAULT_POLICY_NAME] as const);
  return name ?? DEFAULT_POLICY_NAME;
}

export function getKeyPolicy(k: KmsContext, req: Req) {
  const name = policyName(req);
  const row = k.key(reqStr(req, 'KeyId'), 'kms:GetKeyPolicy', 'keyOnly');
  return { Policy: row.policy, PolicyName: name };
}

export function listKeyPolicies(k: KmsContext, req: Req) {
  k.key(reqStr(req, 'KeyId'), 'kms:ListKeyPolicies', 'keyOnly');
  const { page, ...more } = paginate(req, [DEFAULT_POLICY_NAME], LIMITS.ListKeyPolicies, 'ListKeyPolicies', (n) => [n]);
  return { PolicyNames: page, ...more };
}

export function putKeyPolicy(k: KmsContext, req: Req) {
  const ref = reqStr(req, 'KeyId');
  policyName(req);
  const policy = reqStr(req, 'Policy', 32768);
  const bypass = bool(req, 'BypassPolicyLockoutSafetyCheck');
  return k.store.write(() => {
    const row: KeyRow = k.key(ref, 'kms:PutKeyPolicy', 'keyOnly');
    assertCustomerManaged(k, row, 'PutKeyPolicy');
    if (row.key_state === 'PendingDeletion') throw KmsErrors.invalidState(k.keyArn(row.key_id), row.key_state);
    checkNewPolicy(k.call, policy, k.keyArn(row.key_id), bypass);
    k.store.updateKey(row.region, row.key_id, { policy });
    return {};
  });
}
