import type { EncryptionContext } from './blob.js';
import type { KmsContext } from './context.js';
import { KmsError } from './errors.js';
import type { ConditionValue } from './policy.js';
import { accountOf, hasIamPermissions, KeyPolicy, principalMatches } from './policy.js';
import type { KeyRow } from './store.js';

/**
 * Authorization of one KMS call: the key policy first (an explicit Deny wins),
 * then the key's grants; otherwise AccessDeniedException in AWS's words. Every
 * decision is kept on the call, so the audit log records it with its principal.
 */
export interface Caller {
  principal: string;
  /** The AWS service the call is made through (kms:ViaService), e.g. ec2.<region>.amazonaws.com. */
  viaService?: string;
  /** The request's id as the client saw it (x-amzn-RequestId), recorded in the audit log. */
  requestId?: string;
}

export interface AuthDecision {
  action: string;
  resource: string;
  effect: 'Allow' | 'Deny';
  /** What decided: "key policy" (with the statement's Sid), "grant <id>", "IAM", or "no policy or grant". */
  by: string;
}

/** The call being run: set by Kms.invokeAs for the duration of one operation. */
export interface CallState {
  caller: Caller;
  op: string;
  decisions: AuthDecision[];
}

export interface GrantRow {
  region: string;
  key_id: string;
  grant_id: string;
  name: string | null;
  grantee_principal: string;
  retiring_principal: string | null;
  issuing_account: string;
  operations: string;
  constraints: string | null;
  creation_date: number;
}

export interface GrantConstraints {
  EncryptionContextSubset?: EncryptionContext;
  EncryptionContextEquals?: EncryptionContext;
}

/** Operations whose grants may carry encryption-context constraints. */
export const CONTEXT_OPERATIONS = new Set([
  'Decrypt',
  'Encrypt',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'GenerateDataKeyPair',
  'GenerateDataKeyPairWithoutPlaintext',
  'ReEncryptFrom',
  'ReEncryptTo',
  'CreateGrant',
]);

/** Every operation a grant may allow. */
export const GRANT_OPERATIONS = [
  'Decrypt',
  'Encrypt',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'ReEncryptFrom',
  'ReEncryptTo',
  'Sign',
  'Verify',
  'GetPublicKey',
  'CreateGrant',
  'RetireGrant',
  'DescribeKey',
  'GenerateDataKeyPair',
  'GenerateDataKeyPairWithoutPlaintext',
  'GenerateMac',
  'VerifyMac',
  'DeriveSharedSecret',
] as const;

/** Keys have one policy, and this is its name. */
export const DEFAULT_POLICY_NAME = 'default';

const parsed = new Map<string, KeyPolicy>();

/** Parsed policies, cached by text (the hot path evaluates the same few policies over and over). */
export function parsePolicy(text: string): KeyPolicy {
  let p = parsed.get(text);
  if (!p) {
    p = KeyPolicy.parse(text);
    if (parsed.size >= 256) parsed.delete(parsed.keys().next().value!);
    parsed.set(text, p);
  }
  return p;
}

export function constraintsHold(c: GrantConstraints | null, ec: EncryptionContext | undefined): boolean {
  if (!c) return true;
  const ctx = ec ?? {};
  if (c.EncryptionContextEquals) {
    const want = Object.entries(c.EncryptionContextEquals);
    if (want.length !== Object.keys(ctx).length || want.some(([k, v]) => ctx[k] !== v)) return false;
  }
  if (c.EncryptionContextSubset && Object.entries(c.EncryptionContextSubset).some(([k, v]) => ctx[k] !== v)) return false;
  return true;
}

export interface AuthRequest {
  /** The KMS action, e.g. kms:Decrypt. */
  action: string;
  encryptionContext?: EncryptionContext;
  /** Further condition keys (lower-case), e.g. kms:grantoperations. */
  conditions?: Record<string, ConditionValue>;
}

export function accessDenied(principal: string, action: string, resource: string, explicit: boolean): KmsError {
  return new KmsError(
    'AccessDeniedException',
    `User: ${principal} is not authorized to perform: ${action} on resource: ${resource} ${explicit ? 'with an explicit deny in a resource-based policy' : `because no resource-based policy allows the ${action} action`}`,
  );
}

/** The condition keys of a request, lower-case as the evaluator compares them. */
function conditionKeys(caller: Caller, req: AuthRequest): Record<string, ConditionValue> {
  const out: Record<string, ConditionValue> = {
    'kms:calleraccount': accountOf(caller.principal),
    'aws:principalarn': caller.principal,
    // Only principals with IAM permission can ask a service to act for them.
    'kms:viaservice': caller.viaService && hasIamPermissions(caller.principal) ? caller.viaService : undefined,
    ...req.conditions,
  };
  if (req.encryptionContext !== undefined || CONTEXT_OPERATIONS.has(req.action.slice(4))) {
    const ec = req.encryptionContext ?? {};
    out['kms:encryptioncontextkeys'] = Object.keys(ec);
    for (const [key, v] of Object.entries(ec)) out[`kms:encryptioncontext:${key.toLowerCase()}`] = v;
  }
  return out;
}

/** Grants on a key, newest last. */
export function grantsOf(k: KmsContext, region: string, keyId: string): GrantRow[] {
  return k.store.stmt('SELECT * FROM grants WHERE region = ? AND key_id = ? ORDER BY creation_date, grant_id').all(region, keyId) as GrantRow[];
}

/** The grant that allows `operation` to the caller with this context, if any. */
export function findGrant(k: KmsContext, row: KeyRow, principal: string, operation: string, ec: EncryptionContext | undefined): GrantRow | undefined {
  return grantsOf(k, row.region, row.key_id).find(
    (g) =>
      principalMatches(g.grantee_principal, principal) &&
      (JSON.parse(g.operations) as string[]).includes(operation) &&
      constraintsHold(g.constraints ? JSON.parse(g.constraints) : null, ec),
  );
}

/**
 * Allow or refuse `req` on the key for the current call. Calls that kmsvol
 * makes for itself (no call state) are not subject to policy.
 */
export function authorize(k: KmsContext, row: KeyRow, req: AuthRequest): { grant?: GrantRow } {
  const call = k.call;
  if (!call) return {};
  const resource = k.keyArn(row.key_id, row.region);
  const { principal } = call.caller;
  const decision = parsePolicy(row.policy).evaluate({ principal, action: req.action, resource, conditions: conditionKeys(call.caller, req) });
  const record = (effect: 'Allow' | 'Deny', by: string) => call.decisions.push({ action: req.action, resource, effect, by });
  if (decision.effect === 'Deny') {
    record('Deny', `key policy${decision.sid ? ` statement ${decision.sid}` : ''}`);
    throw accessDenied(principal, req.action, resource, true);
  }
  if (decision.effect === 'Allow') {
    record('Allow', `key policy${decision.sid ? ` statement ${decision.sid}` : ''}`);
    return {};
  }
  const grant = findGrant(k, row, principal, req.action.slice(4), req.encryptionContext);
  if (grant) {
    record('Allow', `grant ${grant.grant_id}`);
    return { grant };
  }
  record('Deny', 'no policy or grant');
  throw accessDenied(principal, req.action, resource, false);
}

/**
 * Actions that IAM policies alone control (CreateKey, ListKeys, ListAliases,
 * GenerateRandom, ListRetirableGrants): allowed to principals with IAM
 * permission, refused to others.
 */
export function authorizeIamOnly(k: KmsContext, action: string): void {
  const call = k.call;
  if (!call) return;
  const resource = `arn:aws:kms:${k.region}:${k.account}:*`;
  if (hasIamPermissions(call.caller.principal)) {
    call.decisions.push({ action, resource, effect: 'Allow', by: 'IAM' });
    return;
  }
  call.decisions.push({ action, resource, effect: 'Deny', by: 'IAM' });
  throw new KmsError(
    'AccessDeniedException',
    `User: ${call.caller.principal} is not authorized to perform: ${action} on resource: ${resource} because no identity-based policy allows the ${action} action`,
  );
}
