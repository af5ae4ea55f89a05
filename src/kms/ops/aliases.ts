import type { KmsContext } from '../context.js';
import { KmsErrors } from '../errors.js';
import { LIMITS, paginate, reqStr, str } from '../validate.js';

type Req = Record<string, unknown>;
const ALIAS_RE = /^alias\/[a-zA-Z0-9/_-]+$/;

/** Precondition: alias names start with alias/, use [a-zA-Z0-9/_-], and alias/aws/ is reserved. */
function aliasName(req: Req, allowReserved = false): string {
  const name = reqStr(req, 'AliasName', 256);
  if (!ALIAS_RE.test(name)) {
    throw KmsErrors.invalidAliasName(`Alias name ${name} is not valid: it must begin with alias/ followed by letters, digits, /, _ or -.`);
  }
  if (!allowReserved && name.startsWith('alias/aws/')) {
    throw KmsErrors.invalidAliasName(
      `Alias names that begin with alias/aws/ are reserved for AWS managed keys; ${name} cannot be created, changed or deleted. Choose another name.`,
    );
  }
  return name;
}

function targetKey(k: KmsContext, req: Req, action: string): string {
  const row = k.key(reqStr(req, 'TargetKeyId'), action, 'keyOnly');
  if (row.key_manager === 'AWS') throw KmsErrors.unsupported(`${k.keyArn(row.key_id)} is an AWS managed key; aliases can only point at customer managed keys.`);
  if (row.key_state === 'PendingDeletion') throw KmsErrors.invalidState(k.keyArn(row.key_id), row.key_state);
  return row.key_id;
}

export function createAlias(k: KmsContext, req: Req) {
  const name = aliasName(req);
  return k.store.write(() => {
    const target = targetKey(k, req, 'kms:CreateAlias');
    if (k.store.getAlias(k.region, name))
      throw KmsErrors.alreadyExists(`An alias with the name ${k.aliasArn(name)} already exists. Use UpdateAlias to point it at another key.`);
    k.store.insertAlias(k.region, name, target, k.now());
    return {};
  });
}

export function updateAlias(k: KmsContext, req: Req) {
  const name = aliasName(req);
  return k.store.write(() => {
    const target = targetKey(k, req, 'kms:UpdateAlias');
    const alias = k.store.getAlias(k.region, name);
    if (!alias) throw KmsErrors.notFound(`Alias ${k.aliasArn(name)} is not found.`);
    // UpdateAlias needs permission on the key the alias leaves as well as on the one it joins.
    k.key(alias.target_key_id, 'kms:UpdateAlias', 'keyOnly');
    k.store.updateAlias(k.region, name, target, k.now());
    return {};
  });
}

export function deleteAlias(k: KmsContext, req: Req) {
  const name = aliasName(req);
  return k.store.write(() => {
    const alias = k.store.getAlias(k.region, name);
    if (!alias) throw KmsErrors.notFound(`Alias ${k.aliasArn(name)} is not found.`);
    k.key(alias.target_key_id, 'kms:DeleteAlias', 'keyOnly');
    k.store.deleteAlias(k.region, name);
    return {};
  });
}

export function listAliases(k: KmsContext, req: Req) {
  const ref = str(req, 'KeyId', { max: 2048 });
  k.authorizeIamOnly('kms:ListAliases');
  const keyId = ref === undefined ? undefined : k.key(ref, null, 'keyOnly').key_id;
  const rows = k.store.listAliases(k.region, keyId);
  const { page, ...more } = paginate(req, rows, LIMITS.ListAliases, 'ListAliases', (a) => [a.alias_name]);
  return {
    Aliases: page.map((a) => ({
      AliasName: a.alias_name,
      AliasArn: k.aliasArn(a.alias_name),
      TargetKeyId: a.target_key_id,
      CreationDate: new Date(a.creation_date),
      LastUpdatedDate: new Date(a.last_updated_date),
    })),
    ...more,
  };
}
