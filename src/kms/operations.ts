import type { OperationFacts } from './authz.js';
import type { KmsError } from './errors.js';
import type { GrantKeyClass } from './keyspec.js';
import type { MemberRules } from './members.js';
import { noAttestation, unsupported } from './members.js';
import { deriveSharedSecret } from './ops/agreement.js';
import { createAlias, deleteAlias, listAliases, updateAlias } from './ops/aliases.js';
import { getPublicKey, sign, verify } from './ops/asymmetric.js';
import { decrypt, encrypt, generateDataKey, generateDataKeyWithoutPlaintext, generateRandom, reEncrypt } from './ops/crypto.js';
import { createGrant, listGrants, listRetirableGrants, retireGrant, revokeGrant } from './ops/grants.js';
import { deleteImportedKeyMaterial, getParametersForImport, importKeyMaterial } from './ops/imports.js';
import { decapsulate, encapsulate } from './ops/kem.js';
import { generateDataKeyPair, generateDataKeyPairWithoutPlaintext } from './ops/keypairs.js';
import { createKey, describeKey, listKeys, updateKeyDescription } from './ops/keys.js';
import {
  connectCustomKeyStore,
  createCustomKeyStore,
  deleteCustomKeyStore,
  describeCustomKeyStores,
  disconnectCustomKeyStore,
  updateCustomKeyStore,
} from './ops/keystores.js';
import { generateMac, verifyMac } from './ops/mac.js';
import { replicateKey, updatePrimaryRegion } from './ops/multiregion.js';
import { getKeyPolicy, listKeyPolicies, putKeyPolicy } from './ops/policies.js';
import { disableKeyRotation, enableKeyRotation, getKeyRotationStatus, listKeyRotations, rotateKeyOnDemand } from './ops/rotation.js';
import { cancelKeyDeletion, disableKey, enableKey, scheduleKeyDeletion } from './ops/state.js';
import { listResourceTags, tagResource, untagResource } from './ops/tags.js';
import { getKeyLastUsage } from './ops/usage.js';

/**
 * The operation registry: one declaration per KMS operation, from which
 * everything else about it is derived — the library's table (kms.ts), the
 * `kmsvol kms` commands and their parameters (cli/kms.ts), the members the
 * endpoint decodes from base64 (server/kms.ts), and what the audit log records
 * (audit.ts, through each member's decision in members.ts). A new operation
 * is its entry here, its handler in ops/, and its tests.
 */
export interface OperationSpec extends MemberRules {
  /** The handler: validates, authorizes (explicitly, through KmsContext) and runs. */
  handler: (...args: never[]) => unknown;
  /**
   * The request members the operation honours, in the order the CLI lists
   * them; a trailing "!" marks one AWS requires (the CLI checks it, exit 252,
   * as the AWS CLI does). Each has a type and an audit decision in MEMBERS.
   * GrantTokens are checked for every operation that has them.
   */
  members: readonly string[];
  /** DryRun: the call is checked as the real one would be, then fails with DryRunOperationException and changes nothing. */
  dryRun?: boolean;
  /** Members whose feature kmsvol does not have: present (and not null), they fail the call with AWS's error for it. */
  unsupported?: Readonly<Record<string, (value: unknown) => KmsError>>;
  /** The list the AWS CLI pages through (its paginator's result key). */
  pages?: string;
  /**
   * The operations of this one a grant may allow (its own name; ReEncrypt's
   * two halves), each with the keys it makes sense for (keyspec.ts,
   * grantKeyClass): CreateGrant refuses the others, as AWS does.
   */
  grants?: Readonly<Record<string, readonly GrantKeyClass[]>>;
  /** Its grants may carry encryption-context constraints (it takes an encryption context). */
  constrainable?: boolean;
  /** A successful call is a use of the key, recorded for GetKeyLastUsage. */
  tracked?: boolean;
}

/** Keys a grant for these operations makes sense for. */
const ENCRYPTING: readonly GrantKeyClass[] = ['symmetric', 'asymmetric-encrypt'];
const SYMMETRIC: readonly GrantKeyClass[] = ['symmetric'];
const EVERY_KEY: readonly GrantKeyClass[] = ['symmetric', 'asymmetric-encrypt', 'sign', 'mac', 'agreement'];

export const KMS_REGISTRY = {
  CreateKey: {
    handler: createKey,
    members: [
      'Description',
      'KeyUsage',
      'KeySpec',
      'CustomerMasterKeySpec',
      'Origin',
      'CustomKeyStoreId',
      'XksKeyId',
      'Tags',
      'MultiRegion',
      'Policy',
      'BypassPolicyLockoutSafetyCheck',
    ],
  },
  DescribeKey: { grants: { DescribeKey: EVERY_KEY }, handler: describeKey, members: ['KeyId!', 'GrantTokens'] },
  ListKeys: { handler: listKeys, members: ['Limit', 'Marker'], pages: 'Keys' },
  UpdateKeyDescription: { handler: updateKeyDescription, members: ['KeyId!', 'Description!'] },
  TagResource: { handler: tagResource, members: ['KeyId!', 'Tags!'] },
  UntagResource: { handler: untagResource, members: ['KeyId!', 'TagKeys!'] },
  ListResourceTags: { handler: listResourceTags, members: ['KeyId!', 'Limit', 'Marker'], pages: 'Tags' },
  Encrypt: {
    grants: { Encrypt: ENCRYPTING },
    constrainable: true,
    tracked: true,
    handler: encrypt,
    members: ['KeyId!', 'Plaintext!', 'EncryptionContext', 'GrantTokens', 'EncryptionAlgorithm'],
    dryRun: true,
  },
  Decrypt: {
    grants: { Decrypt: ENCRYPTING },
    constrainable: true,
    tracked: true,
    handler: decrypt,
    members: ['CiphertextBlob!', 'EncryptionContext', 'GrantTokens', 'KeyId', 'EncryptionAlgorithm', 'DryRunModifiers'],
    dryRun: true,
    unsupported: { Recipient: noAttestation },
  },
  ReEncrypt: {
    grants: { ReEncryptFrom: ENCRYPTING, ReEncryptTo: ENCRYPTING },
    constrainable: true,
    tracked: true,
    handler: reEncrypt,
    members: [
      'CiphertextBlob!',
      'SourceEncryptionContext',
      'SourceKeyId',
      'DestinationKeyId!',
      'DestinationEncryptionContext',
      'SourceEncryptionAlgorithm',
      'DestinationEncryptionAlgorithm',
      'GrantTokens',
      'DryRunModifiers',
    ],
    dryRun: true,
  },
  GenerateDataKey: {
    grants: { GenerateDataKey: SYMMETRIC },
    constrainable: true,
    tracked: true,
    handler: generateDataKey,
    members: ['KeyId!', 'EncryptionContext', 'NumberOfBytes', 'KeySpec', 'GrantTokens'],
    dryRun: true,
    unsupported: { Recipient: noAttestation },
  },
  GenerateDataKeyWithoutPlaintext: {
    grants: { GenerateDataKeyWithoutPlaintext: SYMMETRIC },
    constrainable: true,
    tracked: true,
    handler: generateDataKeyWithoutPlaintext,
    members: ['KeyId!', 'EncryptionContext', 'NumberOfBytes', 'KeySpec', 'GrantTokens'],
    dryRun: true,
  },
  GenerateRandom: { handler: generateRandom, members: ['NumberOfBytes', 'CustomKeyStoreId'], unsupported: { Recipient: noAttestation } },
  EnableKey: { handler: enableKey, members: ['KeyId!'] },
  DisableKey: { handler: disableKey, members: ['KeyId!'] },
  ScheduleKeyDeletion: { handler: scheduleKeyDeletion, members: ['KeyId!', 'PendingWindowInDays'] },
  CancelKeyDeletion: { handler: cancelKeyDeletion, members: ['KeyId!'] },
  EnableKeyRotation: { handler: enableKeyRotation, members: ['KeyId!', 'RotationPeriodInDays'] },
  DisableKeyRotation: { handler: disableKeyRotation, members: ['KeyId!'] },
  GetKeyRotationStatus: { handler: getKeyRotationStatus, members: ['KeyId!'] },
  RotateKeyOnDemand: { handler: rotateKeyOnDemand, members: ['KeyId!'] },
  ListKeyRotations: {
    handler: listKeyRotations,
    members: ['KeyId!', 'IncludeKeyMaterial', 'Limit', 'Marker'],
    pages: 'Rotations',
  },
  CreateAlias: { handler: createAlias, members: ['AliasName!', 'TargetKeyId!'] },
  UpdateAlias: { handler: updateAlias, members: ['AliasName!', 'TargetKeyId!'] },
  DeleteAlias: { handler: deleteAlias, members: ['AliasName!'] },
  ListAliases: { handler: listAliases, members: ['KeyId', 'Limit', 'Marker'], pages: 'Aliases' },
  ReplicateKey: { handler: replicateKey, members: ['KeyId!', 'ReplicaRegion!', 'Description', 'Policy', 'Tags', 'BypassPolicyLockoutSafetyCheck'] },
  UpdatePrimaryRegion: { handler: updatePrimaryRegion, members: ['KeyId!', 'PrimaryRegion!'] },
  GetKeyPolicy: { handler: getKeyPolicy, members: ['KeyId!', 'PolicyName'] },
  PutKeyPolicy: { handler: putKeyPolicy, members: ['KeyId!', 'Policy!', 'PolicyName', 'BypassPolicyLockoutSafetyCheck'] },
  ListKeyPolicies: { handler: listKeyPolicies, members: ['KeyId!', 'Limit', 'Marker'], pages: 'PolicyNames' },
  CreateGrant: {
    grants: { CreateGrant: EVERY_KEY },
    constrainable: true,
    handler: createGrant,
    members: ['KeyId!', 'GranteePrincipal!', 'Operations!', 'RetiringPrincipal', 'Constraints', 'GrantTokens', 'Name'],
    dryRun: true,
    unsupported: {
      GranteeServicePrincipal: unsupported('GranteeServicePrincipal', 'grants name IAM principals (GranteePrincipal)'),
      RetiringServicePrincipal: unsupported('RetiringServicePrincipal', 'grants name IAM principals (RetiringPrincipal)'),
    },
  },
  ListGrants: {
    handler: listGrants,
    members: ['KeyId!', 'GrantId', 'GranteePrincipal', 'Limit', 'Marker'],
    pages: 'Grants',
    unsupported: { GranteeServicePrincipal: unsupported('GranteeServicePrincipal', 'grants name IAM principals (GranteePrincipal)') },
  },
  ListRetirableGrants: {
    handler: listRetirableGrants,
    members: ['RetiringPrincipal!', 'Limit', 'Marker'],
    pages: 'Grants',
    unsupported: { RetiringServicePrincipal: unsupported('RetiringServicePrincipal', 'grants name IAM principals (RetiringPrincipal)') },
  },
  RetireGrant: { grants: { RetireGrant: EVERY_KEY }, handler: retireGrant, members: ['GrantToken', 'KeyId', 'GrantId'], dryRun: true },
  RevokeGrant: { handler: revokeGrant, members: ['KeyId!', 'GrantId!'], dryRun: true },
  GetParametersForImport: { handler: getParametersForImport, members: ['KeyId!', 'WrappingAlgorithm!', 'WrappingKeySpec!'] },
  ImportKeyMaterial: {
    handler: importKeyMaterial,
    members: ['KeyId!', 'ImportToken!', 'EncryptedKeyMaterial!', 'ValidTo', 'ExpirationModel', 'ImportType', 'KeyMaterialId', 'KeyMaterialDescription'],
  },
  DeleteImportedKeyMaterial: {
    handler: deleteImportedKeyMaterial,
    members: ['KeyId!', 'KeyMaterialId'],
  },
  Sign: {
    grants: { Sign: ['sign'] },
    tracked: true,
    handler: sign,
    members: ['KeyId!', 'Message!', 'MessageType', 'GrantTokens', 'SigningAlgorithm!'],
    dryRun: true,
  },
  Verify: {
    grants: { Verify: ['sign'] },
    tracked: true,
    handler: verify,
    members: ['KeyId!', 'Message!', 'MessageType', 'Signature!', 'SigningAlgorithm!', 'GrantTokens'],
    dryRun: true,
  },
  GetPublicKey: { grants: { GetPublicKey: ['asymmetric-encrypt', 'sign', 'agreement'] }, handler: getPublicKey, members: ['KeyId!', 'GrantTokens'] },
  GenerateMac: {
    grants: { GenerateMac: ['mac'] },
    tracked: true,
    handler: generateMac,
    members: ['Message!', 'KeyId!', 'MacAlgorithm!', 'GrantTokens'],
    dryRun: true,
  },
  VerifyMac: {
    grants: { VerifyMac: ['mac'] },
    tracked: true,
    handler: verifyMac,
    members: ['Message!', 'KeyId!', 'MacAlgorithm!', 'Mac!', 'GrantTokens'],
    dryRun: true,
  },
  GenerateDataKeyPair: {
    grants: { GenerateDataKeyPair: SYMMETRIC },
    constrainable: true,
    tracked: true,
    handler: generateDataKeyPair,
    members: ['EncryptionContext', 'KeyId!', 'KeyPairSpec!', 'GrantTokens'],
    dryRun: true,
    unsupported: { Recipient: noAttestation },
  },
  GenerateDataKeyPairWithoutPlaintext: {
    grants: { GenerateDataKeyPairWithoutPlaintext: SYMMETRIC },
    constrainable: true,
    tracked: true,
    handler: generateDataKeyPairWithoutPlaintext,
    members: ['EncryptionContext', 'KeyId!', 'KeyPairSpec!', 'GrantTokens'],
    dryRun: true,
  },
  DeriveSharedSecret: {
    grants: { DeriveSharedSecret: ['agreement'] },
    tracked: true,
    handler: deriveSharedSecret,
    members: ['KeyId!', 'KeyAgreementAlgorithm!', 'PublicKey!', 'GrantTokens'],
    dryRun: true,
    unsupported: { Recipient: noAttestation },
  },
  GetKeyLastUsage: { handler: getKeyLastUsage, members: ['KeyId!'] },
  DescribeCustomKeyStores: { handler: describeCustomKeyStores, members: ['CustomKeyStoreId', 'CustomKeyStoreName', 'Limit', 'Marker'] },
  CreateCustomKeyStore: {
    handler: createCustomKeyStore,
    members: [
      'CustomKeyStoreName!',
      'CloudHsmClusterId',
      'TrustAnchorCertificate',
      'KeyStorePassword',
      'CustomKeyStoreType',
      'XksProxyUriEndpoint',
      'XksProxyUriPath',
      'XksProxyVpcEndpointServiceName',
      'XksProxyVpcEndpointServiceOwner',
      'XksProxyAuthenticationCredential',
      'XksProxyConnectivity',
    ],
  },
  ConnectCustomKeyStore: { handler: connectCustomKeyStore, members: ['CustomKeyStoreId!'] },
  DisconnectCustomKeyStore: { handler: disconnectCustomKeyStore, members: ['CustomKeyStoreId!'] },
  DeleteCustomKeyStore: { handler: deleteCustomKeyStore, members: ['CustomKeyStoreId!'] },
  UpdateCustomKeyStore: {
    handler: updateCustomKeyStore,
    members: [
      'CustomKeyStoreId!',
      'NewCustomKeyStoreName',
      'KeyStorePassword',
      'CloudHsmClusterId',
      'XksProxyUriEndpoint',
      'XksProxyUriPath',
      'XksProxyVpcEndpointServiceName',
      'XksProxyVpcEndpointServiceOwner',
      'XksProxyAuthenticationCredential',
      'XksProxyConnectivity',
    ],
  },
  Encapsulate: { handler: encapsulate, members: ['KeyId!', 'EncapsulationAlgorithm!', 'GrantTokens'], dryRun: true },
  Decapsulate: { handler: decapsulate, members: ['KeyId!', 'SharedSecretCiphertextBlob!', 'EncapsulationAlgorithm!', 'GrantTokens'], dryRun: true },
} as const satisfies Record<string, OperationSpec>;

export type KmsOperation = keyof typeof KMS_REGISTRY;

export function isKmsOperation(op: string): op is KmsOperation {
  return Object.hasOwn(KMS_REGISTRY, op);
}

/** An operation's request members, without the "!" marks, DryRun included where it has it. */
export function membersOf(op: KmsOperation): string[] {
  const spec: OperationSpec = KMS_REGISTRY[op];
  return [...spec.members.map((m) => m.replace(/!$/, '')), ...(spec.dryRun ? ['DryRun'] : [])];
}

/**
 * The facts of every operation that the rules below the registry need
 * (authz.ts, ops/grants.ts, usage tracking in kms.ts), derived once from the
 * entries and handed down with each call (CallState.facts), so nothing below
 * imports the registry.
 */
export const OPERATION_FACTS: OperationFacts = (() => {
  const specs = Object.entries(KMS_REGISTRY as Record<string, OperationSpec>);
  const grants = specs.flatMap(([, spec]) => Object.entries(spec.grants ?? {}));
  return {
    grantOperations: grants.map(([op]) => op),
    grantOperationsFor: (keyClass) =>
      grants.filter(([, classes]) => (keyClass === undefined ? classes === EVERY_KEY : classes.includes(keyClass))).map(([op]) => op),
    constrainable: new Set(specs.flatMap(([, spec]) => (spec.constrainable ? Object.keys(spec.grants ?? {}) : []))),
    tracked: new Set(specs.filter(([, spec]) => spec.tracked).map(([op]) => op)),
  };
})();
