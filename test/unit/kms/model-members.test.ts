import crypto from 'node:crypto';
import * as sdk from '@aws-sdk/client-kms';
import { describe, expect, it } from 'vitest';
import type { KmsOperation, OperationSpec } from '../../../src/kms/operations.js';
import { membersOf, KMS_REGISTRY as OPERATIONS } from '../../../src/kms/operations.js';
import { testKms } from '../../helpers/home.js';

/**
 * Every member of every implemented KMS operation, as AWS's current model has
 * it, is implemented or listed here with the reason it is not. The model is
 * the schema that @aws-sdk/client-kms is generated with (its exported
 * `<Shape>$` schemas: the current KMS model, newer than Debian's botocore).
 *
 * Inputs: each request member is honoured (the operation's `members` in
 * src/kms/operations.ts), refused with AWS's error for it (`unsupported`,
 * whose message says why), or listed in IGNORED_INPUTS.
 * Outputs: a scenario calls every operation (those that can succeed here,
 * succeed) and records which members its responses carry, down through every
 * structure inside them; each member of the model's response, and of every
 * structure in it, is seen in some response or listed in ABSENT_OUTPUTS.
 */
/** Request members accepted and not acted on, with the reason. None today. */
const IGNORED_INPUTS: Record<string, string> = {};

/** Response members kmsvol never gives, with the reason. */
const ABSENT_OUTPUTS: Record<string, string> = {
  'Decrypt.CiphertextForRecipient': 'Recipient (Nitro Enclaves attestation) is refused, so there is never a ciphertext for a recipient',
  'GenerateDataKey.CiphertextForRecipient': 'Recipient is refused (no Nitro Enclaves attestation)',
  'GenerateDataKeyPair.CiphertextForRecipient': 'Recipient is refused (no Nitro Enclaves attestation)',
  'GenerateRandom.CiphertextForRecipient': 'Recipient is refused (no Nitro Enclaves attestation)',
  'DeriveSharedSecret.CiphertextForRecipient': 'Recipient is refused (no Nitro Enclaves attestation)',
  'KeyMetadata.CloudHsmClusterId': 'no key is in an AWS CloudHSM key store',
  'KeyMetadata.CustomKeyStoreId': 'no key is in a custom key store',
  'KeyMetadata.XksKeyConfiguration': 'no key is in an external key store',
  'KeyMetadata.PendingDeletionWindowInDays':
    'given by AWS only for multi-Region primary keys waiting for their replicas to be deleted; kmsvol deletes a primary with its replicas',
  'XksKeyConfigurationType.Id': 'no key is in an external key store',
  'GrantConstraints.SourceArn':
    "CreateGrant refuses a SourceArn constraint (UnsupportedOperationException): kmsvol's callers carry no aws:SourceArn for it to match",
  'KeyMetadata.EncapsulationAlgorithms': 'only ML-KEM keys have them, and ML-KEM key specs are refused',
  'GetPublicKey.EncapsulationAlgorithms': 'only ML-KEM keys have them, and ML-KEM key specs are refused',
  'CustomKeyStoresListEntry.ConnectionState': 'DescribeCustomKeyStores lists no key stores: kmsvol has no custom key stores',
  'CustomKeyStoresListEntry.ConnectionErrorCode': 'DescribeCustomKeyStores lists no key stores',
  'CustomKeyStoresListEntry.XksProxyConfiguration': 'DescribeCustomKeyStores lists no key stores',
  'XksProxyConfigurationType.Connectivity': 'DescribeCustomKeyStores lists no key stores',
  'XksProxyConfigurationType.UriEndpoint': 'DescribeCustomKeyStores lists no key stores',
  'XksProxyConfigurationType.UriPath': 'DescribeCustomKeyStores lists no key stores',
  'XksProxyConfigurationType.VpcEndpointServiceName': 'DescribeCustomKeyStores lists no key stores',
  'XksProxyConfigurationType.VpcEndpointServiceOwner': 'DescribeCustomKeyStores lists no key stores',
  'CreateCustomKeyStore.CustomKeyStoreId': 'CreateCustomKeyStore is refused: kmsvol has no custom key stores',
  'DescribeCustomKeyStores.NextMarker': 'DescribeCustomKeyStores lists no key stores, so never a next page',
  'CustomKeyStoresListEntry.CustomKeyStoreId': 'DescribeCustomKeyStores lists no key stores',
  'CustomKeyStoresListEntry.CustomKeyStoreName': 'DescribeCustomKeyStores lists no key stores',
  'CustomKeyStoresListEntry.CloudHsmClusterId': 'DescribeCustomKeyStores lists no key stores',
  'CustomKeyStoresListEntry.TrustAnchorCertificate': 'DescribeCustomKeyStores lists no key stores',
  'CustomKeyStoresListEntry.CreationDate': 'DescribeCustomKeyStores lists no key stores',
  'CustomKeyStoresListEntry.CustomKeyStoreType': 'DescribeCustomKeyStores lists no key stores',
  'Encapsulate.KeyId': 'Encapsulate works only with ML-KEM keys, which are refused',
  'Encapsulate.SharedSecretCiphertextBlob': 'Encapsulate works only with ML-KEM keys, which are refused',
  'Encapsulate.SharedSecret': 'Encapsulate works only with ML-KEM keys, which are refused',
  'Encapsulate.EncapsulationAlgorithm': 'Encapsulate works only with ML-KEM keys, which are refused',
  'Decapsulate.KeyId': 'Decapsulate works only with ML-KEM keys, which are refused',
  'Decapsulate.SharedSecret': 'Decapsulate works only with ML-KEM keys, which are refused',
  'Decapsulate.EncapsulationAlgorithm': 'Decapsulate works only with ML-KEM keys, which are refused',
  'ListKeyPolicies.NextMarker': 'a key has one policy (default), so there is never a next page',
  'GrantListEntry.GranteeServicePrincipal': 'CreateGrant refuses GranteeServicePrincipal: grants name IAM principals',
  'GrantListEntry.RetiringServicePrincipal': 'CreateGrant refuses RetiringServicePrincipal: grants name IAM principals',
  'XksProxyConfigurationType.AccessKeyId': 'DescribeCustomKeyStores lists no key stores',
};

type Schema = unknown;
const model = sdk as unknown as Record<string, Schema>;

function resolve(s: Schema): Schema {
  let r = s;
  while (typeof r === 'function') r = (r as () => Schema)();
  if (Array.isArray(r) && typeof r[0] === 'function') return resolve(r[0]);
  return r;
}
/** A structure schema is [3, namespace, name, traits, memberNames, memberSchemas]. */
function struct(s: Schema): { name: string; members: [string, Schema][] } | undefined {
  const r = resolve(s);
  if (!Array.isArray(r) || r[0] !== 3) return undefined;
  return { name: r[2] as string, members: (r[4] as string[]).map((m, i) => [m, (r[5] as Schema[])[i]]) };
}
/** The structures a member holds: itself, or the members of its list (1) or map (2). */
function structuresIn(s: Schema): Schema[] {
  const r = resolve(s);
  if (!Array.isArray(r)) return [];
  if (r[0] === 3) return [r];
  if (r[0] === 1) return structuresIn(r[4]);
  if (r[0] === 2) return structuresIn(r[5]);
  return [];
}
function operation(op: string): { input: Schema; output: Schema } {
  const o = model[`${op}$`] as Schema[] | undefined;
  if (!o) throw new Error(`the SDK's model has no operation ${op}`);
  return { input: o[4], output: o[5] };
}

/** Every (structure, member) reachable from an operation's response, named "Op.Member" at the top and "Structure.Member" below. */
function outputMembers(op: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const walk = (s: Schema, prefix?: string) => {
    const st = struct(s);
    if (!st || seen.has(st.name)) return;
    seen.add(st.name);
    for (const [m, ms] of st.members) {
      out.push(`${prefix ?? st.name}.${m}`);
      for (const inner of structuresIn(ms)) walk(inner);
    }
  };
  walk(operation(op).output, op);
  return out;
}

const OPS = Object.keys(OPERATIONS) as KmsOperation[];

describe("AWS's current KMS model, member by member", () => {
  it('the model was read: every registry operation is in it, with the newest members', () => {
    for (const op of OPS) expect(() => operation(op), op).not.toThrow();
    expect(struct(operation('Decrypt').input)!.members.map(([m]) => m)).toContain('DryRunModifiers');
    expect(outputMembers('ListKeyRotations')).toContain('RotationsListEntry.KeyMaterialState');
    expect(outputMembers('DescribeKey')).toContain('KeyMetadata.CurrentKeyMaterialId');
  });

  it('every input member of every implemented operation is honoured, refused with a reason, or listed with one', () => {
    const missing: string[] = [];
    for (const op of OPS) {
      const spec: OperationSpec = OPERATIONS[op];
      const honoured = new Set(membersOf(op));
      const refused = new Set(Object.keys(spec.unsupported ?? {}));
      for (const [m] of struct(operation(op).input)?.members ?? [])
        if (!honoured.has(m) && !refused.has(m) && !IGNORED_INPUTS[`${op}.${m}`]) missing.push(`${op}.${m}`);
    }
    expect(missing).toEqual([]);
  });

  it('no operation honours or refuses a member the model does not have', () => {
    const extra: string[] = [];
    for (const op of OPS) {
      const model = new Set((struct(operation(op).input)?.members ?? []).map(([m]) => m));
      const spec: OperationSpec = OPERATIONS[op];
      for (const m of [...membersOf(op), ...Object.keys(spec.unsupported ?? {})]) if (!model.has(m)) extra.push(`${op}.${m}`);
    }
    expect(extra).toEqual([]);
  });

  it('every output member (and every member of the structures inside) is in some response of the scenario, or listed with a reason', () => {
    const seen = scenario();
    const ran = new Set([...seen].map((m) => m.split('.')[0]));
    expect([...ran].length).toBeGreaterThanOrEqual(45);
    const missing = [...new Set(OPS.flatMap(outputMembers))].filter((m) => !ABSENT_OUTPUTS[m] && !seen.has(m));
    expect(missing).toEqual([]);
  });

  it('every listed reason is still needed: a member listed as absent is in the model', () => {
    const all = new Set(OPS.flatMap(outputMembers));
    expect(Object.keys(ABSENT_OUTPUTS).filter((m) => !all.has(m))).toEqual([]);
  });
});

/** The members present in a response, walked with its schema: "Op.Member" at the top, "Structure.Member" below. */
function record(seen: Set<string>, schema: Schema, value: unknown, prefix?: string): void {
  const st = struct(schema);
  if (!st || value === null || typeof value !== 'object') return;
  for (const [m, ms] of st.members) {
    const v = (value as Record<string, unknown>)[m];
    if (v === undefined) continue;
    seen.add(`${prefix ?? st.name}.${m}`);
    const r = resolve(ms);
    if (Array.isArray(r) && r[0] === 1) for (const e of v as unknown[]) record(seen, r[4], e);
    else if (Array.isArray(r) && r[0] === 2) for (const e of Object.values(v as object)) record(seen, r[5], e);
    else record(seen, ms, v);
  }
}

/** Every operation, called so that each optional member it can give appears at least once. */
function scenario(): Set<string> {
  const { kms, clock } = testKms();
  const seen = new Set<string>();
  const call = (op: KmsOperation, req: Record<string, unknown> = {}) => {
    const res = kms.invoke(op, req) as unknown;
    record(seen, operation(op).output, res, op);
    return res as Record<string, any>;
  };
  const tryCall = (op: KmsOperation, req: Record<string, unknown> = {}) => {
    try {
      call(op, req);
    } catch {
      // Refused here; its members are listed in ABSENT_OUTPUTS.
    }
  };
  const ROLE = 'arn:aws:iam::000000000000:role/r';
  const create = (req: Record<string, unknown> = {}) => call('CreateKey', req).KeyMetadata.KeyId as string;
  const sym = create({ Description: 'd', Tags: [{ TagKey: 'a', TagValue: 'b' }] });
  const sym2 = create();
  call('DescribeKey', { KeyId: sym });
  call('ListKeys', { Limit: 1 });
  call('UpdateKeyDescription', { KeyId: sym, Description: 'e' });
  call('TagResource', { KeyId: sym, Tags: [{ TagKey: 'c', TagValue: 'd' }] });
  call('ListResourceTags', { KeyId: sym, Limit: 1 });
  call('UntagResource', { KeyId: sym, TagKeys: ['c'] });
  const ct = call('Encrypt', { KeyId: sym, Plaintext: Buffer.from('x') }).CiphertextBlob;
  call('Decrypt', { CiphertextBlob: ct });
  call('ReEncrypt', { CiphertextBlob: ct, DestinationKeyId: sym2 });
  call('GenerateDataKey', { KeyId: sym, KeySpec: 'AES_256' });
  call('GenerateDataKeyWithoutPlaintext', { KeyId: sym, NumberOfBytes: 16 });
  call('GenerateDataKeyPair', { KeyId: sym, KeyPairSpec: 'ECC_NIST_P256' });
  call('GenerateDataKeyPairWithoutPlaintext', { KeyId: sym, KeyPairSpec: 'ECC_NIST_P256' });
  call('GenerateRandom', { NumberOfBytes: 8 });
  call('GetKeyLastUsage', { KeyId: sym });
  call('EnableKeyRotation', { KeyId: sym, RotationPeriodInDays: 90 });
  call('RotateKeyOnDemand', { KeyId: sym });
  clock.advance(1000);
  call('RotateKeyOnDemand', { KeyId: sym });
  call('GetKeyRotationStatus', { KeyId: sym });
  call('ListKeyRotations', { KeyId: sym, Limit: 1 });
  call('DisableKeyRotation', { KeyId: sym });
  call('CreateAlias', { AliasName: 'alias/x', TargetKeyId: sym });
  call('CreateAlias', { AliasName: 'alias/y', TargetKeyId: sym });
  call('UpdateAlias', { AliasName: 'alias/x', TargetKeyId: sym2 });
  call('ListAliases', { Limit: 1 });
  call('DeleteAlias', { AliasName: 'alias/y' });
  const mr = create({ MultiRegion: true });
  call('ReplicateKey', { KeyId: mr, ReplicaRegion: 'us-west-2' });
  call('DescribeKey', { KeyId: mr });
  call('UpdatePrimaryRegion', { KeyId: mr, PrimaryRegion: 'us-west-2' });
  const policy = call('GetKeyPolicy', { KeyId: sym }).Policy;
  call('PutKeyPolicy', { KeyId: sym, Policy: policy });
  call('ListKeyPolicies', { KeyId: sym, Limit: 1 });
  const grant = { KeyId: sym, GranteePrincipal: ROLE, RetiringPrincipal: ROLE, Operations: ['Decrypt'], Constraints: { EncryptionContextSubset: { a: 'b' } } };
  const g1 = call('CreateGrant', { ...grant, Name: 'g' }).GrantId;
  const g2 = call('CreateGrant', { ...grant, Constraints: { EncryptionContextEquals: { a: 'b' } } }).GrantId;
  call('ListGrants', { KeyId: sym, Limit: 1 });
  call('ListGrants', { KeyId: sym });
  call('ListRetirableGrants', { RetiringPrincipal: ROLE, Limit: 1 });
  call('RetireGrant', { KeyId: sym, GrantId: g1 });
  call('RevokeGrant', { KeyId: sym, GrantId: g2 });
  const ext = create({ Origin: 'EXTERNAL' });
  const params = call('GetParametersForImport', { KeyId: ext, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' });
  const wrappingKey = crypto.createPublicKey({ key: Buffer.from(params.PublicKey), format: 'der', type: 'spki' });
  const wrapped = crypto.publicEncrypt({ key: wrappingKey, oaepHash: 'sha256' }, crypto.randomBytes(32));
  const validTo = new Date(clock.now().getTime() + 86_400_000);
  call('ImportKeyMaterial', { KeyId: ext, ImportToken: params.ImportToken, EncryptedKeyMaterial: wrapped, ValidTo: validTo, KeyMaterialDescription: 'first' });
  call('DescribeKey', { KeyId: ext });
  call('ListKeyRotations', { KeyId: ext, IncludeKeyMaterial: 'ALL_KEY_MATERIAL' });
  call('DeleteImportedKeyMaterial', { KeyId: ext });
  const signer = create({ KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' });
  const sig = call('Sign', { KeyId: signer, Message: Buffer.from('m'), SigningAlgorithm: 'RSASSA_PSS_SHA_256' }).Signature;
  call('Verify', { KeyId: signer, Message: Buffer.from('m'), Signature: sig, SigningAlgorithm: 'RSASSA_PSS_SHA_256' });
  call('GetPublicKey', { KeyId: signer });
  call('GetPublicKey', { KeyId: create({ KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' }) });
  const hmac = create({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
  const mac = call('GenerateMac', { KeyId: hmac, Message: Buffer.from('m'), MacAlgorithm: 'HMAC_SHA_256' }).Mac;
  call('VerifyMac', { KeyId: hmac, Message: Buffer.from('m'), Mac: mac, MacAlgorithm: 'HMAC_SHA_256' });
  call('DescribeKey', { KeyId: hmac });
  const ecdh = create({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'KEY_AGREEMENT' });
  const peer = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'der' });
  call('DeriveSharedSecret', { KeyId: ecdh, KeyAgreementAlgorithm: 'ECDH', PublicKey: peer });
  call('GetPublicKey', { KeyId: ecdh });
  call('DescribeKey', { KeyId: ecdh });
  call('DescribeCustomKeyStores', {});
  call('ScheduleKeyDeletion', { KeyId: sym2, PendingWindowInDays: 7 });
  call('DescribeKey', { KeyId: sym2 });
  call('CancelKeyDeletion', { KeyId: sym2 });
  call('DisableKey', { KeyId: sym2 });
  call('EnableKey', { KeyId: sym2 });
  for (const op of ['CreateCustomKeyStore', 'ConnectCustomKeyStore', 'DisconnectCustomKeyStore', 'DeleteCustomKeyStore', 'UpdateCustomKeyStore'] as const)
    tryCall(op, { CustomKeyStoreName: 'n', CustomKeyStoreId: 'cks-1234567890abcdef0' });
  tryCall('Encapsulate', { KeyId: sym, EncapsulationAlgorithm: 'ML_KEM' });
  tryCall('Decapsulate', { KeyId: sym, EncapsulationAlgorithm: 'ML_KEM', SharedSecretCiphertextBlob: Buffer.alloc(8) });
  return seen;
}
