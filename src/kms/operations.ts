import type { KmsError } from './errors.js';
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
}

export const OPERATIONS = {
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
  DescribeKey: { handler: describeKey, members: ['KeyId!', 'GrantTokens'] },
  ListKeys: { handler: listKeys, members: ['Limit', 'Marker'], pages: 'Keys' },
  UpdateKeyDescription: { handler: updateKeyDescription, members: ['KeyId!', 'Description!'] },
  TagResource: { handler: tagResource, members: ['KeyId!', 'Tags!'] },
  UntagResource: { handler: untagResource, members: ['KeyId!', 'TagKeys!'] },
  ListResourceTags: { handler: listResourceTags, members: ['KeyId!', 'Limit', 'Marker'], pages: 'Tags' },
  Encrypt: { handler: encrypt, members: ['KeyId!', 'Plaintext!', 'EncryptionContext', 'GrantTokens', 'EncryptionAlgorithm'], dryRun: true },
  Decrypt: {
    handler: decrypt,
    members: ['CiphertextBlob!', 'EncryptionContext', 'GrantTokens', 'KeyId', 'EncryptionAlgorithm', 'DryRunModifiers'],
    dryRun: true,
    unsupported: { Recipient: noAttestation },
  },
  ReEncrypt: {
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
    handler: generateDataKey,
    members: ['KeyId!', 'EncryptionContext', 'NumberOfBytes', 'KeySpec', 'GrantTokens'],
    dryRun: true,
    unsupported: { Recipient: noAttestation },
  },
  GenerateDataKeyWithoutPlaintext: {
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
  RetireGrant: { handler: retireGrant, members: ['GrantToken', 'KeyId', 'GrantId'], dryRun: true },
  RevokeGrant: { handler: revokeGrant, members: ['KeyId!', 'GrantId!'], dryRun: true },
  GetParametersForImport: { handler: getParametersForImport, members: ['KeyId!', 'WrappingAlgorithm!', 'WrappingKeySpec!'] },
  ImportKeyMaterial: {
    handler: importKeyMaterial,
    members: ['KeyId!', 'ImportToken!', 'EncryptedKeyMaterial!', 'ValidTo', 'ExpirationModel', 'ImportType', 'KeyMaterialId'],
    unsupported: {
      KeyMaterialDescription: unsupported('KeyMaterialDescription', 'a key holds one imported material, with no description'),
    },
  },
  DeleteImportedKeyMaterial: {
    handler: deleteImportedKeyMaterial,
    members: ['KeyId!', 'KeyMaterialId'],
  },
  Sign: { handler: sign, members: ['KeyId!', 'Message!', 'MessageType', 'GrantTokens', 'SigningAlgorithm!'], dryRun: true },
  Verify: { handler: verify, members: ['KeyId!', 'Message!', 'MessageType', 'Signature!', 'SigningAlgorithm!', 'GrantTokens'], dryRun: true },
  GetPublicKey: { handler: getPublicKey, members: ['KeyId!', 'GrantTokens'] },
  GenerateMac: { handler: generateMac, members: ['Message!', 'KeyId!', 'MacAlgorithm!', 'GrantTokens'], dryRun: true },
  VerifyMac: { handler: verifyMac, members: ['Message!', 'KeyId!', 'MacAlgorithm!', 'Mac!', 'GrantTokens'], dryRun: true },
  GenerateDataKeyPair: {
    handler: generateDataKeyPair,
    members: ['EncryptionContext', 'KeyId!', 'KeyPairSpec!', 'GrantTokens'],
    dryRun: true,
    unsupported: { Recipient: noAttestation },
  },
  GenerateDataKeyPairWithoutPlaintext: {
    handler: generateDataKeyPairWithoutPlaintext,
    members: ['EncryptionContext', 'KeyId!', 'KeyPairSpec!', 'GrantTokens'],
    dryRun: true,
  },
  DeriveSharedSecret: {
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

export type KmsOperation = keyof typeof OPERATIONS;

export function isKmsOperation(op: string): op is KmsOperation {
  return Object.hasOwn(OPERATIONS, op);
}

/** An operation's request members, without the "!" marks, DryRun included where it has it. */
export function membersOf(op: KmsOperation): string[] {
  const spec: OperationSpec = OPERATIONS[op];
  return [...spec.members.map((m) => m.replace(/!$/, '')), ...(spec.dryRun ? ['DryRun'] : [])];
}
