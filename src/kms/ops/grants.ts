import crypto from 'node:crypto';
import type { GrantConstraints } from '../authz.js';
import { accessDenied, authorizeRetire, constraintsHold, factsOf } from '../authz.js';
import type { KmsContext } from '../context.js';
import { KmsErrors } from '../errors.js';
import { grantKeyClass } from '../keyspec.js';
import { checkGrantTokens, grantIdOfToken, grantToken } from '../rules/grants.js';
import type { GrantRow } from '../store.js';
import { context, LIMITS, paginate, reqStr, str, strList } from '../validate.js';

/**
 * Grants: revocable permissions on one key for one grantee principal, limited
 * to some operations and optionally to encryption contexts. They take effect
 * at once (kmsvol has no eventual consistency), so GrantTokens are checked
 * for form and otherwise only accepted.
 */
type Req = Record<string, unknown>;
const NAME_RE = /^[a-zA-Z0-9:/_-]+$/;

function constraints(req: Req): GrantConstraints | undefined {
  const v = req.Constraints;
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v))
    throw KmsErrors.validation('Constraints must be an object with EncryptionContextSubset or EncryptionContextEquals.');
  const c = v as Req;
  if (c.SourceArn !== undefined && c.SourceArn !== null)
    throw KmsErrors.unsupported(
      'The SourceArn grant constraint is not supported by kmsvol: its callers carry no aws:SourceArn to match. Use EncryptionContextSubset or EncryptionContextEquals.',
    );
  const unknown = Object.keys(c).filter((x) => x !== 'EncryptionContextSubset' && x !== 'EncryptionContextEquals' && x !== 'SourceArn');
  if (unknown.length)
    throw KmsErrors.validation(`Constraints has unknown fields ${unknown.join(', ')}; use EncryptionContextSubset or EncryptionContextEquals.`);
  const subset = context(c, 'EncryptionContextSubset');
  const equals = context(c, 'EncryptionContextEquals');
  return { ...(subset ? { EncryptionContextSubset: subset } : {}), ...(equals ? { EncryptionContextEquals: equals } : {}) };
}

function principal(req: Req, field: string, required: boolean): string | undefined {
  const p = str(req, field, { required, max: 256 });
  // Precondition: a grant names one principal; "*" (everyone) and wildcards are not principals.
  if (p !== undefined && (!/^(\d{12}|arn:aws:(iam|sts)::\d{12}:.+|[a-z0-9.-]+\.amazonaws\.com)$/.test(p) || p.includes('*'))) {
    throw KmsErrors.validation(
      `${field} ${p} is not a principal: use an ARN such as arn:aws:iam::111122223333:user/alice or arn:aws:iam::111122223333:role/name, an account id, or a service principal (no wildcards).`,
    );
  }
  return p;
}

function entry(k: KmsContext, g: GrantRow) {
  return {
    KeyId: k.keyArn(g.key_id, g.region),
    GrantId: g.grant_id,
    ...(g.name ? { Name: g.name } : {}),
    CreationDate: new Date(g.creation_date),
    GranteePrincipal: g.grantee_principal,
    ...(g.retiring_principal ? { RetiringPrincipal: g.retiring_principal } : {}),
    IssuingAccount: g.issuing_account,
    Operations: JSON.parse(g.operations) as string[],
    ...(g.constraints ? { Constraints: JSON.parse(g.constraints) as GrantConstraints } : {}),
  };
}

/** Is `child` at least as strict as `parent`? (A grant made through a grant can only narrow it.) */
function narrows(parent: GrantConstraints | null, child: GrantConstraints | undefined): boolean {
  if (!parent) return true;
  const need = { ...parent.EncryptionContextSubset, ...parent.EncryptionContextEquals };
  const have = { ...child?.EncryptionContextSubset, ...child?.EncryptionContextEquals };
  if (parent.EncryptionContextEquals && JSON.stringify(child?.EncryptionContextEquals ?? null) !== JSON.stringify(parent.EncryptionContextEquals)) return false;
  // Every pair the parent requires, the child requires too, keys compared without case as constraints compare them.
  return constraintsHold({ EncryptionContextSubset: need }, have);
}

export function createGrant(k: KmsContext, req: Req) {
  const ref = reqStr(req, 'KeyId');
  const grantee = principal(req, 'GranteePrincipal', true)!;
  const retiring = principal(req, 'RetiringPrincipal', false);
  const ops = strList(req, 'Operations', { required: true })!;
  if (ops.length === 0) throw KmsErrors.validation('Operations must name at least one operation.');
  const facts = factsOf(k.call, 'kms:CreateGrant', ref);
  for (const op of ops) {
    if (!facts.grantOperations.includes(op))
      throw KmsErrors.validation(`Operations contains ${op}, which is not a grant operation; use ${facts.grantOperations.join(', ')}.`);
  }
  const cons = constraints(req);
  if (cons && ops.some((op) => !facts.constrainable.has(op))) {
    throw KmsErrors.validation(
      `Grant constraints apply only to operations that take an encryption context; ${ops.filter((op) => !facts.constrainable.has(op)).join(', ')} do not. Make a separate grant for them without Constraints.`,
    );
  }
  const name = str(req, 'Name', { max: 256 });
  if (name !== undefined && !NAME_RE.test(name)) throw KmsErrors.validation(`Name ${name} is not valid: use letters, digits and :/_-.`);
  checkGrantTokens(req);
  const sorted = [...new Set(ops)].sort();
  return k.store.write(() => {
    const row = k.key(ref, null);
    // Precondition: a grant names only operations the key's spec and usage can perform.
    const valid = facts.grantOperationsFor(grantKeyClass(row.key_spec, row.key_usage));
    const invalid = sorted.filter((op) => !valid.includes(op));
    if (invalid.length)
      throw KmsErrors.validation(
        `Grant operations ${invalid.join(', ')} are not valid for ${k.keyArn(row.key_id)} (KeySpec ${row.key_spec}, KeyUsage ${row.key_usage}); it allows ${valid.join(', ')}.`,
      );
    const caller = k.caller('kms:CreateGrant', k.keyArn(row.key_id));
    const { grant: parent } = k.authorize(row, {
      action: 'kms:CreateGrant',
      // For CreateGrant, encryption-context conditions (and a parent grant's constraints) apply to the new grant's constraints.
      encryptionContext: { ...cons?.EncryptionContextSubset, ...cons?.EncryptionContextEquals },
      conditions: {
        'kms:grantoperations': sorted,
        'kms:granteeprincipal': grantee,
        ...(retiring ? { 'kms:retiringprincipal': retiring } : {}),
        'kms:grantisforawsresource': caller.viaService !== undefined ? 'true' : 'false',
      },
    });
    if (parent) {
      const allowed = JSON.parse(parent.operations) as string[];
      if (!sorted.every((op) => allowed.includes(op)) || !narrows(parent.constraints ? JSON.parse(parent.constraints) : null, cons)) {
        throw accessDenied(caller.principal, 'kms:CreateGrant', k.keyArn(row.key_id), false);
      }
    }
    if (row.key_state === 'PendingDeletion') throw KmsErrors.invalidState(k.keyArn(row.key_id), row.key_state);
    const fields = {
      grantee_principal: grantee,
      retiring_principal: retiring ?? null,
      operations: JSON.stringify(sorted),
      constraints: cons ? JSON.stringify(cons) : null,
    };
    // A repeated CreateGrant with the same Name and parameters returns the same grant (with a new token).
    if (name !== undefined) {
      const same = k.store
        .grants(row.region, row.key_id)
        .find(
          (g) =>
            g.name === name &&
            g.grantee_principal === fields.grantee_principal &&
            g.retiring_principal === fields.retiring_principal &&
            g.operations === fields.operations &&
            g.constraints === fields.constraints,
        );
      if (same) return { GrantToken: grantToken(same.grant_id), GrantId: same.grant_id };
    }
    const grantId = crypto.randomBytes(32).toString('hex');
    const g: GrantRow = {
      region: row.region,
      key_id: row.key_id,
      grant_id: grantId,
      name: name ?? null,
      issuing_account: `arn:aws:iam::${k.account}:root`,
      creation_date: k.now(),
      ...fields,
    };
    k.store.insertGrant(g);
    return { GrantToken: grantToken(grantId), GrantId: grantId };
  });
}

export function listGrants(k: KmsContext, req: Req) {
  const row = k.key(reqStr(req, 'KeyId'), 'kms:ListGrants');
  const grantId = str(req, 'GrantId', { max: 128 });
  const grantee = str(req, 'GranteePrincipal', { max: 256 });
  const rows = k.store
    .grants(row.region, row.key_id)
    .filter((g) => (grantId === undefined || g.grant_id === grantId) && (grantee === undefined || g.grantee_principal === grantee));
  const { page, ...more } = paginate(req, rows, LIMITS.ListGrants, 'ListGrants', (g) => [g.creation_date, g.grant_id]);
  return { Grants: page.map((g) => entry(k, g)), ...more };
}

export function listRetirableGrants(k: KmsContext, req: Req) {
  const retiring = principal(req, 'RetiringPrincipal', true)!;
  k.authorizeIamOnly('kms:ListRetirableGrants');
  const rows = k.store.retirableGrants(k.region, retiring);
  const { page, ...more } = paginate(req, rows, LIMITS.ListRetirableGrants, 'ListRetirableGrants', (g) => [g.creation_date, g.grant_id]);
  return { Grants: page.map((g) => entry(k, g)), ...more };
}

function grantById(k: KmsContext, keyId: string, grantId: string): GrantRow {
  const g = k.store.grant(k.region, keyId, grantId);
  if (!g) throw KmsErrors.notFound(`Grant ${grantId} does not exist on ${k.keyArn(keyId)}; it may have been retired or revoked already.`);
  return g;
}

/**
 * RetireGrant: by the grant's retiring principal, by its grantee when the
 * grant allows RetireGrant, or by the account that issued it.
 */
export function retireGrant(k: KmsContext, req: Req) {
  const token = str(req, 'GrantToken', { max: 8192 });
  const keyRef = str(req, 'KeyId', { max: 2048 });
  const grantIdArg = str(req, 'GrantId', { max: 128 });
  if (token === undefined && (keyRef === undefined || grantIdArg === undefined))
    throw KmsErrors.validation('RetireGrant needs a GrantToken, or both KeyId and GrantId.');
  const grantId = token !== undefined ? grantIdOfToken(token) : grantIdArg!;
  return k.store.write(() => {
    let g: GrantRow | undefined;
    if (keyRef !== undefined) g = grantById(k, k.key(keyRef, null, 'keyOnly').key_id, grantId);
    else {
      g = k.store.grantInRegion(k.region, grantId);
      if (!g) throw KmsErrors.notFound(`The grant of this token does not exist; it may have been retired or revoked already.`);
    }
    authorizeRetire(k.call, g, k.keyArn(g.key_id, g.region));
    k.store.deleteGrant(g.region, g.grant_id);
    return {};
  });
}

export function revokeGrant(k: KmsContext, req: Req) {
  const ref = reqStr(req, 'KeyId');
  const grantId = reqStr(req, 'GrantId', 128);
  return k.store.write(() => {
    const row = k.key(ref, 'kms:RevokeGrant');
    const g = grantById(k, row.key_id, grantId);
    k.store.deleteGrant(g.region, g.grant_id);
    return {};
  });
}
