import type { EncryptionContext } from './blob.js';
import { KmsError } from './errors.js';
import type { Identity } from './identity.js';
import { evaluateIdentity } from './identity.js';
import type { GrantKeyClass } from './keyspec.js';
import type { ConditionValue } from './policy.js';
import { accountOf, hasIamPermissions, KeyPolicy, principalMatches } from './policy.js';
import type { GrantRow } from './store.js';

/**
 * Authorization of one KMS call, as AWS KMS decides it for a principal of the
 * key's account ("Determining access to an AWS KMS key"): an explicit Deny in
 * the key policy or in the caller's identity policies wins; then a key policy
 * statement that names the caller allows; a statement that names only the
 * caller's account (the default policy's root statement) allows when the
 * caller's identity policies allow too; then the key's grants; otherwise
 * AccessDeniedException in AWS's words. Every
 * decision is kept on the call, so the audit log records it with its principal.
 * It takes the call and what it decides over (a key's policy, ARN and grants),
 * never the whole KMS: KmsContext hands those in.
 */
/** Whom a KMS call runs as: the principal policies and grants are evaluated for (from a signed request: server/service.ts's SignedCaller). */
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
  /** What the operation registry says of every operation (operations.ts, operationFacts), handed down with the call. */
  facts: OperationFacts;
  /** The caller's IAM identity (root, or its inline policies: identity.ts); none when absent. */
  identity?: () => Identity;
  /** The request's global condition keys (aws:PrincipalArn, aws:RequestedRegion ...: identity.ts, globalConditionKeys). */
  globals?: () => Record<string, ConditionValue>;
}

const NO_IDENTITY: Identity = { kind: 'policies', owner: '', policies: [] };

/** The registry's facts about operations that the rules below it need (derived in operations.ts, operationFacts). */
export interface OperationFacts {
  /** Every operation a grant may allow, in the registry's order. */
  grantOperations: readonly string[];
  /** The grant operations that make sense for a key of this class (keyspec.ts, grantKeyClass). */
  grantOperationsFor(keyClass: GrantKeyClass | undefined): string[];
  /** Operations whose grants may carry encryption-context constraints (they take an encryption context). */
  constrainable: ReadonlySet<string>;
  /** Operations that are a use of the key (GetKeyLastUsage). */
  tracked: ReadonlySet<string>;
}

/** What a decision on a key looks at: its policy, its ARN, and (only if the policy is silent) its grants. */
export interface KeyResource {
  policy: string;
  arn: string;
  grants: () => GrantRow[];
}

export interface GrantConstraints {
  EncryptionContextSubset?: EncryptionContext;
  EncryptionContextEquals?: EncryptionContext;
}

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

/** An encryption context with its keys folded to lower case: each folded key and the values its spellings carry. */
function folded(ctx: EncryptionContext): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [k, v] of Object.entries(ctx)) {
    const f = k.toLowerCase();
    const list = out.get(f);
    if (list) list.push(v);
    else out.set(f, [v]);
  }
  return out;
}

/** Does `ctx` include every pair of `want`, keys compared without case, values with it? Every spelling of a key must carry the value. */
function includesPairs(ctx: Map<string, string[]>, want: Map<string, string[]>): boolean {
  for (const [k, wanted] of want) {
    const have = ctx.get(k);
    if (!have?.every((v) => wanted.every((w) => w === v))) return false;
  }
  return true;
}

/**
 * Grant constraints as AWS compares them: "in a grant constraint, the key in
 * each key-value pair is not case sensitive, but the value is case
 * sensitive" (GrantConstraints). A context whose keys differ only in case
 * ("Dept" and "dept") satisfies a constraint on Dept only if every spelling
 * carries the constraint's value: an added "dept" pair never passes a
 * constraint that "Dept" fails.
 */
export function constraintsHold(c: GrantConstraints | null, ec: EncryptionContext | undefined): boolean {
  if (!c) return true;
  const ctx = folded(ec ?? {});
  if (c.EncryptionContextEquals) {
    const want = folded(c.EncryptionContextEquals);
    if (!includesPairs(ctx, want) || !includesPairs(want, ctx)) return false;
  }
  if (c.EncryptionContextSubset && !includesPairs(ctx, folded(c.EncryptionContextSubset))) return false;
  return true;
}

export interface AuthRequest {
  /** The KMS action, e.g. kms:Decrypt. */
  action: string;
  encryptionContext?: EncryptionContext;
  /** Further condition keys (lower-case), e.g. kms:grantoperations. */
  conditions?: Record<string, ConditionValue>;
}

export function accessDenied(
  principal: string,
  action: string,
  resource: string,
  explicit: boolean,
  policy: 'resource-based' | 'identity-based' = 'resource-based',
): KmsError {
  return new KmsError(
    'AccessDeniedException',
    `User: ${principal} is not authorized to perform: ${action} on resource: ${resource} ${explicit ? `with an explicit deny in ${policy === 'identity-based' ? 'an identity-based' : 'a resource-based'} policy` : `because no ${policy} policy allows the ${action} action`}`,
  );
}

/** The condition keys of a request, lower-case as the evaluator compares them. */
function conditionKeys(call: CallState, req: AuthRequest): Record<string, ConditionValue> {
  const { caller, facts } = call;
  const out: Record<string, ConditionValue> = {
    ...call.globals?.(),
    'kms:calleraccount': accountOf(caller.principal),
    'aws:principalarn': caller.principal,
    // Only principals with IAM permission can ask a service to act for them.
    'kms:viaservice': caller.viaService && hasIamPermissions(caller.principal) ? caller.viaService : undefined,
    ...req.conditions,
  };
  if (req.encryptionContext !== undefined || facts.constrainable.has(req.action.slice(4))) {
    const ec = req.encryptionContext ?? {};
    out['kms:encryptioncontextkeys'] = Object.keys(ec);
    // Condition key names are not case sensitive (kms:EncryptionContext:AppName matches an "appname" pair); values are, as the operator says.
    for (const [key, values] of folded(ec)) out[`kms:encryptioncontext:${key}`] = values.length === 1 ? values[0] : { eitherOf: values };
  }
  return out;
}

/**
 * The caller of the running call. Precondition: nothing is allowed outside a
 * call — an operation reached without a caller (a handler called directly,
 * not through Kms.invoke or invokeAs) is refused, never let through.
 */
export function callerOf(call: CallState | undefined, action: string, resource: string): Caller {
  if (!call)
    throw new KmsError(
      'AccessDeniedException',
      `No caller is authenticated for ${action} on resource: ${resource}. Run KMS operations through Kms.invoke or Kms.invokeAs, which name the caller.`,
    );
  return call.caller;
}

/** The registry's facts, for a rule of the running call (refused outside a call, as callerOf refuses). */
export function factsOf(call: CallState | undefined, action: string, resource: string): OperationFacts {
  callerOf(call, action, resource);
  return call!.facts;
}

/** The grant on the key that allows `operation` to the principal with this context, if any. */
function findGrant(grants: GrantRow[], principal: string, operation: string, ec: EncryptionContext | undefined): GrantRow | undefined {
  return grants.find(
    (g) =>
      principalMatches(g.grantee_principal, principal) &&
      (JSON.parse(g.operations) as string[]).includes(operation) &&
      constraintsHold(g.constraints ? JSON.parse(g.constraints) : null, ec),
  );
}

/** Allow or refuse `req` on the key for the running call; the grant that allowed it, if a grant did. */
export function authorize(call: CallState | undefined, key: KeyResource, req: AuthRequest): { grant?: GrantRow } {
  const resource = key.arn;
  const caller = callerOf(call, req.action, resource);
  const { principal } = caller;
  const conditions = conditionKeys(call!, req);
  const decision = parsePolicy(key.policy).evaluate({ principal, action: req.action, resource, conditions });
  const record = (effect: 'Allow' | 'Deny', by: string) => call!.decisions.push({ action: req.action, resource, effect, by });
  const statement = `key policy${decision.sid ? ` statement ${decision.sid}` : ''}`;
  if (decision.effect === 'Deny') {
    record('Deny', statement);
    throw accessDenied(principal, req.action, resource, true);
  }
  // Precondition: an explicit Deny in the caller's identity policies wins over the key policy and over grants.
  const identity = evaluateIdentity((call!.identity ?? (() => NO_IDENTITY))(), req.action, resource, conditions);
  if (identity.effect === 'Deny') {
    record('Deny', `IAM policy${identity.sid ? ` statement ${identity.sid}` : ''}`);
    throw accessDenied(principal, req.action, resource, true, 'identity-based');
  }
  if (decision.effect === 'Allow' && decision.via === 'direct') {
    record('Allow', statement);
    return {};
  }
  // Precondition: a statement naming only the account allows a principal whose IAM policy allows it (the root user's always does).
  if (decision.effect === 'Allow' && identity.effect === 'Allow') {
    record('Allow', `${statement} and IAM policy`);
    return {};
  }
  const grant = findGrant(key.grants(), principal, req.action.slice(4), req.encryptionContext);
  if (grant) {
    record('Allow', `grant ${grant.grant_id}`);
    return { grant };
  }
  record('Deny', decision.effect === 'Allow' ? `${statement}, but no IAM policy` : 'no policy or grant');
  throw accessDenied(principal, req.action, resource, false, decision.effect === 'Allow' ? 'identity-based' : 'resource-based');
}

/**
 * Actions that IAM policies alone control (CreateKey, ListKeys, ListAliases,
 * GenerateRandom, ListRetirableGrants): allowed to principals with IAM
 * permission, refused to others. `resource` is the region's arn:aws:kms:<region>:<account>:*.
 */
export function authorizeIamOnly(call: CallState | undefined, action: string, resource: string): void {
  const caller = callerOf(call, action, resource);
  const identity = (call!.identity ?? (() => NO_IDENTITY))();
  const d = evaluateIdentity(identity, action, resource, conditionKeys(call!, { action }));
  if (d.effect === 'Allow') {
    call!.decisions.push({ action, resource, effect: 'Allow', by: 'IAM' });
    return;
  }
  call!.decisions.push({ action, resource, effect: 'Deny', by: 'IAM' });
  throw accessDenied(caller.principal, action, resource, d.effect === 'Deny', 'identity-based');
}

/**
 * RetireGrant's own rule: the grant's retiring principal, its grantee when the
 * grant allows RetireGrant, or the account that issued it.
 */
export function authorizeRetire(call: CallState | undefined, g: GrantRow, resource: string): void {
  const who = callerOf(call, 'kms:RetireGrant', resource).principal;
  const by =
    g.retiring_principal && principalMatches(g.retiring_principal, who)
      ? 'retiring principal'
      : principalMatches(g.grantee_principal, who) && (JSON.parse(g.operations) as string[]).includes('RetireGrant')
        ? 'grantee with RetireGrant'
        : who === g.issuing_account
          ? 'issuing account'
          : undefined;
  call!.decisions.push({
    action: 'kms:RetireGrant',
    resource,
    effect: by ? 'Allow' : 'Deny',
    by: by ? `grant ${g.grant_id} (${by})` : `grant ${g.grant_id}: not its retiring principal, grantee or account`,
  });
  if (!by) throw accessDenied(who, 'kms:RetireGrant', resource, false);
}

/**
 * Check a new key policy: valid (MalformedPolicyDocumentException otherwise)
 * and, unless the caller bypasses it, passing the lockout safety check — the
 * caller must still be allowed to change the policy afterwards, or nobody may
 * ever manage the key again.
 */
export function checkNewPolicy(call: CallState | undefined, policy: string, keyArn: string, bypass: boolean | undefined): void {
  const parsed = parsePolicy(policy);
  if (bypass) return;
  const { principal } = callerOf(call, 'kms:PutKeyPolicy', keyArn);
  const decision = parsed.evaluate({ principal, action: 'kms:PutKeyPolicy', resource: keyArn, conditions: {} });
  if (decision.effect !== 'Allow') {
    throw new KmsError(
      'MalformedPolicyDocumentException',
      `The new key policy will not allow you to update the key policy in the future: it does not allow ${principal} kms:PutKeyPolicy. Add a statement that allows it, or set BypassPolicyLockoutSafetyCheck if you really mean to lock yourself out.`,
    );
  }
}
