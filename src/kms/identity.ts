import { ServiceError } from '../errors.js';
import type { ConditionValue, Decision } from './policy.js';
import { KeyPolicy } from './policy.js';
import type { KmsStore } from './store.js';

/**
 * IAM identity policies: what a principal's own policies allow, as IAM
 * evaluates them for a call in the principal's own account. AWS's rules
 * ("Policy evaluation logic"; KMS's "Determining access to an AWS KMS key"):
 * - the account root user has every permission; identity policies cannot
 *   restrict it (only SCPs can, which kmsvol does not model);
 * - an IAM user has what its inline policies allow, and nothing without one
 *   ("By default, IAM users and roles don't have any permissions");
 * - a role session has what its role's inline policies allow;
 * - any other principal (another account's, a service) has none here.
 * An explicit Deny in any of them wins over every Allow.
 */
export type Identity = { kind: 'root' } | { kind: 'policies'; owner: string; policies: KeyPolicy[] };

const parsed = new Map<string, KeyPolicy>();

/** An identity policy, parsed once per text (the hot path asks the same few over and over). */
export function parseIdentityPolicy(text: string): KeyPolicy {
  let p = parsed.get(text);
  if (!p) {
    p = KeyPolicy.parse(text, 'identity');
    if (parsed.size >= 256) parsed.delete(parsed.keys().next().value!);
    parsed.set(text, p);
  }
  return p;
}

/** The identity a principal ARN has in `account`: its kind and inline policies. */
export function identityOf(store: KmsStore, account: string, principal: string): Identity {
  if (principal === `arn:aws:iam::${account}:root`) return { kind: 'root' };
  const user = new RegExp(`^arn:aws:iam::${account}:user/(?:.*/)?([^/]+)$`).exec(principal)?.[1];
  const role = new RegExp(`^arn:aws:sts::${account}:assumed-role/([^/]+)/[^/]+$`).exec(principal)?.[1];
  const kind = user ? 'user' : role ? 'role' : undefined;
  if (!kind) return { kind: 'policies', owner: principal, policies: [] };
  const rows = store.identityPolicies(kind, (user ?? role)!);
  return { kind: 'policies', owner: principal, policies: rows.map((r) => parseIdentityPolicy(r.document)) };
}

/** What the identity's policies say of `action` on `resource`: Deny (explicit), Allow, or ImplicitDeny. */
export function evaluateIdentity(id: Identity, action: string, resource: string, conditions: Record<string, ConditionValue> = {}): Decision {
  if (id.kind === 'root') return { effect: 'Allow', via: 'direct' };
  let allow: Decision | undefined;
  for (const p of id.policies) {
    const d = p.evaluate({ principal: id.owner, action, resource, conditions });
    if (d.effect === 'Deny') return d;
    if (d.effect === 'Allow') allow ??= d;
  }
  return allow ?? { effect: 'ImplicitDeny' };
}

/**
 * An IAM or STS action that only identity policies decide (the endpoint's
 * IAM operations, sts:AssumeRole through an account-wide trust): allowed, or
 * AccessDenied in IAM's words.
 */
export function requireIdentityAllow(store: KmsStore, account: string, principal: string, action: string, resource: string): void {
  const d = evaluateIdentity(identityOf(store, account, principal), action, resource);
  if (d.effect === 'Allow') return;
  throw new ServiceError(
    'AccessDenied',
    `User: ${principal} is not authorized to perform: ${action} on resource: ${resource} ${d.effect === 'Deny' ? 'with an explicit deny in an identity-based policy' : `because no identity-based policy allows the ${action} action`}`,
    403,
  );
}
