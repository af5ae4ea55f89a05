import { KmsError } from './errors.js';

/**
 * Key policies: the AWS policy language subset KMS key policies use, parsed
 * once (MalformedPolicyDocumentException names what is wrong) and evaluated
 * per request. Evaluation follows AWS: an explicit Deny wins, then any Allow,
 * else the request is implicitly denied.
 *
 * Principals. `"*"` matches everyone, directly. An account (`"111122223333"`
 * or `arn:aws:iam::111122223333:root`) matches every principal of that
 * account, but only by delegation: the key policy lets the account's IAM
 * policies decide (authz.ts asks the caller's identity policies, identity.ts).
 * A principal named by its ARN matches directly; a role ARN matches its
 * sessions (arn:aws:sts::…:assumed-role/…).
 *
 * The same language, without Principal, is an IAM identity policy
 * (PutUserPolicy, PutRolePolicy): `KeyPolicy.parse(text, 'identity')`.
 */
export type ConditionValue = string | string[] | boolean | undefined | EitherOf;

/**
 * A single-valued condition key that the request gives more than one value:
 * IAM condition key names are not case sensitive, so an encryption context
 * with both "Dept" and "dept" gives kms:EncryptionContext:dept two values.
 * AWS advises against such contexts and says nothing of how it reads them;
 * here the reading that denies wins: an Allow's condition must hold for every
 * value, a Deny's for any one. So adding a "dept" pair can neither satisfy an
 * Allow written for "Dept" nor slip past a Deny written for it.
 */
export interface EitherOf {
  eitherOf: string[];
}

/** What a policy is asked: who, what, on which key, with which condition keys (lower-case names). */
export interface PolicyRequest {
  principal: string;
  action: string;
  resource: string;
  conditions: Record<string, ConditionValue>;
}

export interface Decision {
  effect: 'Allow' | 'Deny' | 'ImplicitDeny';
  sid?: string;
  /** For an Allow: 'direct' when a statement names the caller (or "*"), 'account' when only the caller's account is named (the IAM policies must allow too). */
  via?: 'direct' | 'account';
}

/** What kind of policy a document is: a key policy (a resource policy, with Principal) or an IAM identity policy (no Principal, any service's actions). */
export type PolicyKind = 'key' | 'identity';

interface Statement {
  sid?: string;
  effect: 'Allow' | 'Deny';
  principals: string[];
  notPrincipals?: string[];
  actions?: string[];
  notActions?: string[];
  resources?: string[];
  notResources?: string[];
  conditions: Condition[];
}

interface Condition {
  op: string;
  qualifier?: 'ForAnyValue' | 'ForAllValues';
  ifExists: boolean;
  key: string;
  values: string[];
}

const OPERATORS = new Set([
  'StringEquals',
  'StringNotEquals',
  'StringEqualsIgnoreCase',
  'StringNotEqualsIgnoreCase',
  'StringLike',
  'StringNotLike',
  'Bool',
  'Null',
  'ArnEquals',
  'ArnLike',
  'ArnNotEquals',
  'ArnNotLike',
]);
const NEGATED = new Set(['StringNotEquals', 'StringNotEqualsIgnoreCase', 'StringNotLike', 'ArnNotEquals', 'ArnNotLike']);

export const MAX_POLICY_BYTES = 32768;

/**
 * The global aws:* condition keys kmsvol puts in a request's context
 * (identity.ts, globalConditionKeys; docs/iam.md lists them). AWS sets many
 * more (aws:SourceIp, aws:PrincipalTag/..., aws:MultiFactorAuthPresent ...);
 * here such a key would be missing, so a Deny conditioned on it would never
 * apply where AWS's would. A policy naming one is refused when it is put.
 */
export const PROVIDED_GLOBAL_KEYS: ReadonlySet<string> = new Set([
  'aws:principalarn',
  'aws:principalaccount',
  'aws:principaltype',
  'aws:username',
  'aws:userid',
  'aws:requestedregion',
  'aws:currenttime',
  'aws:epochtime',
  'aws:securetransport',
  'aws:viaawsservice',
]);

function malformed(why: string, kind: PolicyKind = 'key'): KmsError {
  return new KmsError('MalformedPolicyDocumentException', `The ${kind === 'key' ? 'key ' : ''}policy is malformed: ${why}. Fix the policy document and retry.`);
}

function stringList(v: unknown, where: string): string[] {
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0 || list.some((x) => typeof x !== 'string' || x === '')) throw malformed(`${where} must be a non-empty string or list of strings`);
  return list as string[];
}

function principalList(v: unknown, where: string): string[] {
  if (v === '*') return ['*'];
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw malformed(`${where} must be "*" or an object such as {"AWS": "arn:aws:iam::111122223333:root"}`);
  const out: string[] = [];
  for (const [type, val] of Object.entries(v)) {
    if (type !== 'AWS' && type !== 'Service') throw malformed(`${where} type ${type} is not supported in key policies (use AWS or Service)`);
    out.push(...stringList(val, `${where}.${type}`));
  }
  if (out.length === 0) throw malformed(`${where} names no principal`);
  return out;
}

function parseConditions(v: unknown, where: string): Condition[] {
  if (v === undefined) return [];
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw malformed(`${where} must be an object of operators`);
  const out: Condition[] = [];
  for (const [full, block] of Object.entries(v)) {
    const m = /^(?:(ForAnyValue|ForAllValues):)?(\w+?)(IfExists)?$/.exec(full);
    if (!m || !OPERATORS.has(m[2]!)) throw malformed(`the condition operator ${full} is not supported`);
    if (!block || typeof block !== 'object' || Array.isArray(block)) throw malformed(`${where}.${full} must map condition keys to values`);
    for (const [key, raw] of Object.entries(block)) {
      if (/^aws:/i.test(key) && !PROVIDED_GLOBAL_KEYS.has(key.toLowerCase()))
        throw malformed(
          `the condition key ${key} is not in kmsvol's request context (it provides ${[...PROVIDED_GLOBAL_KEYS].join(', ')}), so a condition on it could never hold as it would in AWS`,
        );
      const list = (Array.isArray(raw) ? raw : [raw]).map((x) => (typeof x === 'boolean' || typeof x === 'number' ? String(x) : x));
      if (list.some((x) => typeof x !== 'string')) throw malformed(`the values of ${full} ${key} must be strings`);
      out.push({ op: m[2]!, qualifier: m[1] as Condition['qualifier'], ifExists: m[3] !== undefined, key: key.toLowerCase(), values: list as string[] });
    }
  }
  return out;
}

function malformedOf(why: string, kind: PolicyKind): KmsError {
  return malformed(why, kind);
}

export class KeyPolicy {
  private constructor(
    readonly statements: Statement[],
    readonly kind: PolicyKind = 'key',
  ) {}

  /** Parse and validate a policy document; throws MalformedPolicyDocumentException. */
  static parse(text: string, kind: PolicyKind = 'key'): KeyPolicy {
    const malformed = (why: string) => malformedOf(why, kind);
    if (Buffer.byteLength(text) > MAX_POLICY_BYTES) throw malformed(`it is larger than ${MAX_POLICY_BYTES} bytes`);
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw malformed('it is not valid JSON');
    }
    if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw malformed('it must be a JSON object with a Statement');
    const d = doc as Record<string, unknown>;
    if (d.Version !== undefined && d.Version !== '2012-10-17' && d.Version !== '2008-10-17')
      throw malformed(`Version ${String(d.Version)} is not a policy language version (use "2012-10-17")`);
    const raw = Array.isArray(d.Statement) ? d.Statement : d.Statement === undefined ? [] : [d.Statement];
    if (raw.length === 0) throw malformed('it has no Statement');
    const statements = raw.map((s: unknown, i: number): Statement => {
      const where = `Statement[${i}]`;
      if (!s || typeof s !== 'object' || Array.isArray(s)) throw malformed(`${where} must be an object`);
      const st = s as Record<string, unknown>;
      if (st.Effect !== 'Allow' && st.Effect !== 'Deny') throw malformed(`${where}.Effect must be "Allow" or "Deny"`);
      if (kind === 'identity' && (st.Principal !== undefined || st.NotPrincipal !== undefined))
        throw malformed(`${where} has a Principal: an identity policy applies to the user or role it is attached to, and names none`);
      if (kind === 'identity' && st.Resource === undefined && st.NotResource === undefined) throw malformed(`${where} needs a Resource (such as "*")`);
      if (kind === 'key' && (st.Principal === undefined) === (st.NotPrincipal === undefined))
        throw malformed(`${where} must have exactly one of Principal and NotPrincipal (key policies name who they apply to)`);
      if ((st.Action === undefined) === (st.NotAction === undefined)) throw malformed(`${where} must have exactly one of Action and NotAction`);
      if (st.Resource !== undefined && st.NotResource !== undefined) throw malformed(`${where} cannot have both Resource and NotResource`);
      const actions = st.Action === undefined ? undefined : stringList(st.Action, `${where}.Action`);
      const notActions = st.NotAction === undefined ? undefined : stringList(st.NotAction, `${where}.NotAction`);
      for (const a of [...(actions ?? []), ...(notActions ?? [])]) {
        if (kind === 'key' && a !== '*' && !/^kms:[A-Za-z*?]+$/.test(a))
          throw malformed(`${where} names the action ${a}, which is not a KMS action (kms:<Operation>, wildcards allowed)`);
        if (kind === 'identity' && a !== '*' && !/^[a-z0-9-]+:[A-Za-z0-9*?]+$/.test(a))
          throw malformed(`${where} names the action ${a}, which is not an action (<service>:<Operation>, wildcards allowed)`);
      }
      return {
        sid: typeof st.Sid === 'string' ? st.Sid : undefined,
        effect: st.Effect,
        principals: st.Principal === undefined ? [] : principalList(st.Principal, `${where}.Principal`),
        notPrincipals: st.NotPrincipal === undefined ? undefined : principalList(st.NotPrincipal, `${where}.NotPrincipal`),
        actions,
        notActions,
        resources: st.Resource === undefined ? undefined : stringList(st.Resource, `${where}.Resource`),
        notResources: st.NotResource === undefined ? undefined : stringList(st.NotResource, `${where}.NotResource`),
        conditions: parseConditions(st.Condition, `${where}.Condition`),
      };
    });
    return new KeyPolicy(statements, kind);
  }

  /** An explicit Deny wins; then an Allow that names the caller, then one that names only its account; else ImplicitDeny. */
  evaluate(req: PolicyRequest): Decision {
    let direct: Statement | undefined;
    let account: Statement | undefined;
    for (const s of this.statements) {
      const hit = statementApplies(s, req, this.kind);
      if (!hit) continue;
      if (s.effect === 'Deny') return { effect: 'Deny', sid: s.sid };
      if (hit === 'direct') direct ??= s;
      else account ??= s;
    }
    if (direct) return { effect: 'Allow', sid: direct.sid, via: 'direct' };
    return account ? { effect: 'Allow', sid: account.sid, via: 'account' } : { effect: 'ImplicitDeny' };
  }
}

/** How a policy principal names the caller: directly (its ARN, its role, "*"), through its account only, or not at all. */
export function principalMatch(pattern: string, caller: string): 'direct' | 'account' | false {
  if (pattern === '*' || pattern === caller) return 'direct';
  const account = /^(\d{12})$/.exec(pattern)?.[1] ?? /^arn:aws:iam::(\d{12}):root$/.exec(pattern)?.[1];
  if (account) return accountOf(caller) === account ? 'account' : false;
  return principalMatches(pattern, caller) ? 'direct' : false;
}

function statementApplies(s: Statement, req: PolicyRequest, kind: PolicyKind): 'direct' | 'account' | false {
  // An identity policy applies to the principal it is attached to.
  let principalHit: 'direct' | 'account' | false = 'direct';
  if (kind === 'key' && s.notPrincipals) principalHit = s.notPrincipals.some((p) => principalMatch(p, req.principal)) ? false : 'direct';
  else if (kind === 'key') {
    const hits = s.principals.map((p) => principalMatch(p, req.principal));
    principalHit = hits.includes('direct') ? 'direct' : hits.includes('account') ? 'account' : false;
  }
  if (!principalHit) return false;
  const action = req.action.toLowerCase();
  if (s.actions && !s.actions.some((a) => wildcard(a.toLowerCase(), action))) return false;
  if (s.notActions?.some((a) => wildcard(a.toLowerCase(), action))) return false;
  if (s.resources && !s.resources.some((r) => wildcard(r, req.resource))) return false;
  if (s.notResources?.some((r) => wildcard(r, req.resource))) return false;
  return s.conditions.every((c) => conditionHolds(c, req.conditions[c.key], s.effect)) ? principalHit : false;
}

/** The account of a principal ARN (or of a bare account id). */
export function accountOf(principal: string): string | undefined {
  return /^arn:aws:(?:iam|sts)::(\d{12}):/.exec(principal)?.[1] ?? (/^\d{12}$/.test(principal) ? principal : undefined);
}

/**
 * Principals with local IAM permission for KMS (so statements that name their
 * account apply to them): the account root and IAM users. Role sessions, such
 * as a card's, have none.
 */
export function hasIamPermissions(principal: string): boolean {
  return /^arn:aws:iam::\d{12}:(root|user\/.+)$/.test(principal);
}

/** Does a policy or grant principal (pattern) match the caller? */
export function principalMatches(pattern: string, caller: string): boolean {
  if (pattern === '*' || pattern === caller) return true;
  const account = /^(\d{12})$/.exec(pattern)?.[1] ?? /^arn:aws:iam::(\d{12}):root$/.exec(pattern)?.[1];
  if (account) return accountOf(caller) === account && hasIamPermissions(caller);
  const role = /^arn:aws:iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/.exec(pattern);
  if (role) return new RegExp(`^arn:aws:sts::${role[1]}:assumed-role/${escapeRegExp(role[2]!)}/[^/]+$`).test(caller);
  return false;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * IAM wildcards: * any run, ? one character. Matched in O(pattern x value)
 * by the greedy two-pointer method (backtrack only to the last *), never by a
 * regular expression, whose backtracking a policy author could make take
 * exponential time (a policy is caller input: PutKeyPolicy, CreateKey).
 */
export function wildcard(pattern: string, value: string): boolean {
  if (pattern === '*') return true;
  if (!pattern.includes('*') && !pattern.includes('?')) return pattern === value;
  let p = 0;
  let v = 0;
  let star = -1;
  let resume = 0;
  while (v < value.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === value[v])) {
      p++;
      v++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      resume = v;
    } else if (star >= 0) {
      p = star + 1;
      v = ++resume;
    } else return false;
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

function matchOne(op: string, pattern: string, value: string): boolean {
  switch (op) {
    case 'StringEquals':
    case 'StringNotEquals':
    case 'ArnEquals':
    case 'ArnNotEquals':
      return pattern === value;
    case 'StringEqualsIgnoreCase':
    case 'StringNotEqualsIgnoreCase':
      return pattern.toLowerCase() === value.toLowerCase();
    case 'Bool':
      return pattern.toLowerCase() === value.toLowerCase();
    default: // StringLike, StringNotLike, ArnLike, ArnNotLike
      return wildcard(pattern, value);
  }
}

function conditionHolds(c: Condition, raw: ConditionValue, effect: 'Allow' | 'Deny'): boolean {
  if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
    const each = raw.eitherOf.map((v) => conditionHolds(c, v, effect));
    return effect === 'Allow' ? each.every(Boolean) : each.some(Boolean);
  }
  const values = raw === undefined ? [] : (Array.isArray(raw) ? raw : [raw]).map(String);
  if (c.op === 'Null') return c.values.some((v) => (v.toLowerCase() === 'true') === (values.length === 0));
  const negated = NEGATED.has(c.op);
  const hit = (v: string) => c.values.some((p) => matchOne(c.op, p, v));
  // ForAllValues: every value in the request must match (vacuously true for none).
  if (c.qualifier === 'ForAllValues') return values.every((v) => (negated ? !hit(v) : hit(v)));
  // A key the request does not have: true only for IfExists and negated operators.
  if (values.length === 0) return c.ifExists || negated;
  if (c.qualifier === 'ForAnyValue') return values.some((v) => (negated ? !hit(v) : hit(v)));
  return negated ? !values.some(hit) : values.some(hit);
}
