import { checkNewPolicy } from '../authz.js';
import type { KmsContext } from '../context.js';
import { KmsErrors } from '../errors.js';
import { checkSpecUsage, KEY_SPECS, KEY_USAGES, newMaterialFor } from '../keyspec.js';
import { attachCustomKey, planCustomKey } from '../keystores/keys.js';
import { insertKey, keyMetadata } from '../rules/keys.js';
import { tags } from '../rules/tags.js';
import type { KeyRow } from '../store.js';
import { bool, LIMITS, oneOf, paginate, reqStr, str } from '../validate.js';

/** CreateKey, DescribeKey, ListKeys and UpdateKeyDescription. */
type Req = Record<string, unknown>;

export function createKey(k: KmsContext, req: Req) {
  const description = str(req, 'Description', { max: 8192 });
  const usage = oneOf(req, 'KeyUsage', KEY_USAGES);
  const keySpec = oneOf(req, 'KeySpec', KEY_SPECS);
  const cmkSpec = oneOf(req, 'CustomerMasterKeySpec', KEY_SPECS);
  if (keySpec && cmkSpec)
    throw KmsErrors.validation('You cannot specify both KeySpec and CustomerMasterKeySpec; use KeySpec (CustomerMasterKeySpec is deprecated).');
  const spec = keySpec ?? cmkSpec ?? 'SYMMETRIC_DEFAULT';
  const origin = oneOf(req, 'Origin', ['AWS_KMS', 'EXTERNAL', 'AWS_CLOUDHSM', 'EXTERNAL_KEY_STORE'] as const);
  const policy = str(req, 'Policy', { max: 32768 });
  const bypass = bool(req, 'BypassPolicyLockoutSafetyCheck');
  const multiRegion = bool(req, 'MultiRegion');
  const tagList = tags(req, 'Tags');
  const keyUsage = checkSpecUsage(spec, usage);
  const storeId = str(req, 'CustomKeyStoreId', { min: 1, max: 64 });
  const xksKeyId = str(req, 'XksKeyId', { min: 1, max: 128 });
  k.authorizeIamOnly('kms:CreateKey');
  const custom = planCustomKey(k, { origin, storeId, xksKeyId, spec, usage: keyUsage, multiRegion });
  const generated = origin === 'EXTERNAL' || spec === 'SYMMETRIC_DEFAULT' ? undefined : newMaterialFor(spec);
  let row: KeyRow;
  try {
    row = k.store.write(() => {
      const created = insertKey(k, {
        description,
        origin: custom ? custom.origin : (origin as 'AWS_KMS' | 'EXTERNAL' | undefined),
        multiRegion,
        policy,
        tags: tagList,
        keySpec: spec,
        keyUsage,
        generated,
      });
      if (policy !== undefined) checkNewPolicy(k.call, policy, k.keyArn(created.key_id), bypass);
      // Last, so that a refused policy leaves no key behind in the token.
      if (custom) attachCustomKey(k, custom, created.key_id);
      return created;
    });
  } finally {
    generated?.fill(0);
  }
  return { KeyMetadata: keyMetadata(k, row) };
}

export function describeKey(k: KmsContext, req: Req) {
  const row = k.key(reqStr(req, 'KeyId'), 'kms:DescribeKey');
  return { KeyMetadata: keyMetadata(k, row) };
}

export function listKeys(k: KmsContext, req: Req) {
  k.authorizeIamOnly('kms:ListKeys');
  const rows = k.store.listKeys(k.region).filter((r) => k.settle(r) !== undefined);
  const { page, ...more } = paginate(req, rows, LIMITS.ListKeys, 'ListKeys', (r) => [r.creation_date, r.key_id]);
  return { Keys: page.map((r) => ({ KeyId: r.key_id, KeyArn: k.keyArn(r.key_id) })), ...more };
}

export function updateKeyDescription(k: KmsContext, req: Req) {
  const ref = reqStr(req, 'KeyId');
  const description = str(req, 'Description', { required: true, min: 0, max: 8192 })!;
  k.store.write(() => {
    const row = k.key(ref, 'kms:UpdateKeyDescription', 'keyOnly');
    k.store.updateKey(row.region, row.key_id, { description });
  });
  return {};
}
