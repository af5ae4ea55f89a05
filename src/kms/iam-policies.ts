import { ServiceError } from '../errors.js';
import type { KmsContext } from './context.js';
import { canonicalRoleName, canonicalUserName, noSuchRole, noSuchUser, requireModifiableRole, roleRow } from './iam.js';
import { parseIdentityPolicy } from './identity.js';

/**
 * Inline identity policies of IAM users and roles (PutUserPolicy,
 * PutRolePolicy and their Get, Delete and List): what a principal's own
 * policies allow (identity.ts evaluates them). A document is checked when it
 * is put (MalformedPolicyDocument), in IAM's limits: policy names of 1-128 of
 * [\w+=,.@-], at most 2,048 characters of inline policies per user and 10,240
 * per role ("IAM and AWS STS quotas"), whitespace not counted.
 */
export type PolicyOwner = 'user' | 'role';

const MAX_INLINE_CHARS: Record<PolicyOwner, number> = { user: 2048, role: 10240 };

const iamError = (name: string, message: string, status = 400) => new ServiceError(name, message, status);

/** The owner's name as it was created (IAM names are not distinguished by case); NoSuchEntity when there is none. */
function requireOwner(k: KmsContext, kind: PolicyOwner, asked: string): string {
  const name = kind === 'user' ? canonicalUserName(k, asked) : canonicalRoleName(k, asked);
  if (kind === 'user' ? !k.store.user(name) : !roleRow(k, name)) throw kind === 'user' ? noSuchUser(asked) : noSuchRole(asked);
  return name;
}

function checkPolicyName(name: string): void {
  if (!/^[\w+=,.@-]{1,128}$/.test(name))
    throw iamError(
      'ValidationError',
      `1 validation error detected: Value '${name}' at 'policyName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+ and have length 1-128`,
    );
}

const size = (doc: string) => doc.replace(/\s/g, '').length;

export function putPolicy(k: KmsContext, kind: PolicyOwner, asked: string, policyName: string, document: string): Record<string, never> {
  checkPolicyName(policyName);
  if (kind === 'role') requireModifiableRole(asked);
  try {
    parseIdentityPolicy(document);
  } catch (e) {
    throw iamError('MalformedPolicyDocument', (e as Error).message.replace(/^The (key )?policy is malformed: /, 'Syntax errors in policy: '));
  }
  k.store.write(() => {
    const owner = requireOwner(k, kind, asked);
    const others = k.store.identityPolicies(kind, owner).filter((p) => p.policy_name !== policyName);
    const total = others.reduce((n, p) => n + size(p.document), size(document));
    if (total > MAX_INLINE_CHARS[kind])
      throw iamError(
        'LimitExceeded',
        `Maximum policy size of ${MAX_INLINE_CHARS[kind]} bytes exceeded for ${kind} ${owner}: its inline policies would total ${total} characters (whitespace not counted).`,
        409,
      );
    k.store.putIdentityPolicy({ kind, owner, policy_name: policyName, document });
  });
  return {};
}

export function getPolicy(k: KmsContext, kind: PolicyOwner, asked: string, policyName: string) {
  const owner = requireOwner(k, kind, asked);
  const p = k.store.identityPolicies(kind, owner).find((r) => r.policy_name === policyName);
  if (!p) throw iamError('NoSuchEntity', `The ${kind} policy with name ${policyName} cannot be found.`, 404);
  return { [kind === 'user' ? 'UserName' : 'RoleName']: owner, PolicyName: policyName, PolicyDocument: p.document };
}

export function deletePolicy(k: KmsContext, kind: PolicyOwner, asked: string, policyName: string): Record<string, never> {
  if (kind === 'role') requireModifiableRole(asked);
  k.store.write(() => {
    const owner = requireOwner(k, kind, asked);
    if (!k.store.deleteIdentityPolicy(kind, owner, policyName))
      throw iamError('NoSuchEntity', `The ${kind} policy with name ${policyName} cannot be found.`, 404);
  });
  return {};
}

/** ListUserPolicies / ListRolePolicies, paged by Marker (the last name of the previous page) and MaxItems (1-1000, default 100). */
export function listPolicies(k: KmsContext, kind: PolicyOwner, asked: string, marker?: string, maxItems = 100) {
  if (!Number.isInteger(maxItems) || maxItems < 1 || maxItems > 1000)
    throw iamError(
      'ValidationError',
      `1 validation error detected: Value '${maxItems}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000`,
    );
  const owner = requireOwner(k, kind, asked);
  const names = k.store
    .identityPolicies(kind, owner)
    .map((p) => p.policy_name)
    .filter((n) => marker === undefined || n > marker);
  const page = names.slice(0, maxItems);
  const truncated = names.length > page.length;
  return { PolicyNames: page, IsTruncated: truncated, ...(truncated ? { Marker: page[page.length - 1] } : {}) };
}
