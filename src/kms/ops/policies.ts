import { DEFAULT_POLICY_NAME, parsePolicy } from '../authz.js';
import type { KmsContext } from '../context.js';
import { KmsError, KmsErrors } from '../errors.js';
import type { KeyRow } from '../store.js';
import { bool, oneOf, reqStr } from '../validate.js';
import { assertCustomerManaged } from './state.js';

type Req = Record<string, unknown>;

/**
 * Check a new key policy: valid (MalformedPolicyDocumentException otherwise)
 * and, unless the caller bypasses it, passing the lockout safety check — the
 * caller must still be allowed to change the policy afterwards, or nobody may
 * ever manage the key again.
 */
export function checkNewPolicy(k: KmsContext, policy: string, keyArn: string, bypass: boolean | undefined): void {
  const parsed = parsePolicy(policy);
  if (bypass || !k.call) return;
  const { principal } = k.call.caller;
  const decision = parsed.evaluate({ principal, action: 'kms:PutKeyPolicy', resource: keyArn, conditions: {} });
  if (decision.effect !== 'Allow') {
    throw new KmsError(
      'MalformedPolicyDocumentException',
      `The new key policy will not allow you to update the key policy in the future: it does not allow ${principal} kms:PutKeyPolicy. Add a statement that allows it, or set BypassPolicyLockoutSafetyCheck if you really mean to lock yourself out.`,
    );
  }
}

function policyName(req: Req): string {
  const name = oneOf(req, 'PolicyName', [DEFAULT_POLICY_NAME] as const);
  return name ?? DEFAULT_POLICY_NAME;
}

export function getKeyPolicy(k: KmsContext, req: Req) {
  const name = policyName(req);
  const row = k.key(reqStr(req, 'KeyId'), 'keyOnly');
  return { Policy: row.policy, PolicyName: name };
}

export function listKeyPolicies(k: KmsContext, req: Req) {
  k.key(reqStr(req, 'KeyId'), 'keyOnly');
  return { PolicyNames: [DEFAULT_POLICY_NAME], Truncated: false };
}

export function putKeyPolicy(k: KmsContext, req: Req) {
  const ref = reqStr(req, 'KeyId');
  policyName(req);
  const policy = reqStr(req, 'Policy', 32768);
  const bypass = bool(req, 'BypassPolicyLockoutSafetyCheck');
  return k.store.write(() => {
    const row: KeyRow = k.key(ref, 'keyOnly');
    assertCustomerManaged(k, row, 'PutKeyPolicy');
    if (row.key_state === 'PendingDeletion') throw KmsErrors.invalidState(k.keyArn(row.key_id), row.key_state);
    checkNewPolicy(k, policy, k.keyArn(row.key_id), bypass);
    k.store.updateKey(row.region, row.key_id, { policy });
    return {};
  });
}
