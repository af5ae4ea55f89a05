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

/** The role a card assumes for its own volume (session name = volume id); the card's KMS grant is its only permission. */
export const CARD_ROLE = 'kmsvol-card';

/**
 * The global condition keys kmsvol puts in every request context (lower-case,
 * as the evaluator compares them), as AWS sets them ("AWS global condition
 * context keys"). A policy whose conditions name any other aws:* key is
 * refused when it is put (policy.ts, PROVIDED_GLOBAL_KEYS), so a Deny on a key
 * AWS would have never silently fails open here.
 */
export interface RequestFacts {
  /** The region the request names (aws:RequestedRegion); IAM, a global service, is us-east-1. */
  region?: string;
  /** The AWS service a principal's call is made through (kms:ViaService): aws:ViaAWSService is true then. */
  viaService?: string;
  /** The request's time, in ms since the epoch (aws:CurrentTime, aws:EpochTime); now when absent. */
  now?: number;
}

/** AWS's aws:RequestedRegion for a call to a global service such as IAM. */
export const GLOBAL_SERVICE_REGION = 'us-east-1';

export function globalConditionKeys(store: KmsStore, account: string, principal: string, facts: RequestFacts = {}): Record<string, ConditionValue> {
  const time = facts.now ?? Date.now();
  const out: Record<string, ConditionValue> = {
    'aws:principalarn': principal,
    'aws:principalaccount': /^arn:aws:(?:iam|sts)::(\d{12}):/.exec(principal)?.[1],
    'aws:currenttime': new Date(time).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    'aws:epochtime': String(Math.floor(time / 1000)),
    // kmsvol's endpoint serves plain HTTP (server/http.ts); in-process calls have no transport at all.
    'aws:securetransport': false,
    'aws:viaawsservice': facts.viaService !== undefined,
    'aws:requestedregion': facts.region,
  };
  const user = new RegExp(`^arn:aws:iam::${account}:user/(?:.*/)?([^/]+)$`).exec(principal)?.[1];
  const session = new RegExp(`^arn:aws:sts::${account}:assumed-role/([^/]+)/([^/]+)$`).exec(principal);
  if (principal === `arn:aws:iam::${account}:root`) {
    out['aws:principaltype'] = 'Account';
    out['aws:userid'] = account;
  } else if (user) {
    out['aws:principaltype'] = 'User';
    out['aws:username'] = user;
    out['aws:userid'] = store.user(user)?.user_id;
  } else if (session) {
    out['aws:principaltype'] = 'AssumedRole';
    const roleId = store.role(session[1]!)?.role_id;
    out['aws:userid'] = roleId && `${roleId}:${session[2]}`;
  }
  return out;
}

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
  // The card role has no identity policy: its sessions have only their volume's card grant, whatever the store says.
  if (role === CARD_ROLE) return { kind: 'policies', owner: principal, policies: [] };
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
 * An IAM, STS or EBS action that only identity policies decide (the
 * endpoint's IAM operations, sts:AssumeRole through an account-wide trust,
 * the EBS direct APIs): allowed, or AccessDenied in IAM's words. The policies
 * see the request's global condition keys (globalConditionKeys).
 */
export function requireIdentityAllow(store: KmsStore, account: string, principal: string, action: string, resource: string, facts: RequestFacts = {}): void {
  const d = evaluateIdentity(identityOf(store, account, principal), action, resource, globalConditionKeys(store, account, principal, facts));
  if (d.effect === 'Allow') return;
  throw new ServiceError(
    'AccessDenied',
    `User: ${principal} is not authorized to perform: ${action} on resource: ${resource} ${d.effect === 'Deny' ? 'with an explicit deny in an identity-based policy' : `because no identity-based policy allows the ${action} action`}`,
    403,
  );
}
