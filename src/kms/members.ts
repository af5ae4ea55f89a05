import { KmsError } from './errors.js';

/**
 * The request members of each operation, as AWS's KMS model (botocore's and
 * the JavaScript SDK's) lists them, sorted into those kmsvol honours and those
 * it refuses the way AWS refuses them where the feature is unavailable. No
 * member AWS honours is ignored: test/unit/kms/members.test.ts compares this
 * table with both models, so a new field shows up as a failing test.
 */

/** Operations that take DryRun: the call is checked as the real one would be, then fails with DryRunOperationException and changes nothing. */
export const DRY_RUN_OPERATIONS = new Set([
  'CreateGrant',
  'Decrypt',
  'DeriveSharedSecret',
  'Encrypt',
  'GenerateDataKey',
  'GenerateDataKeyPair',
  'GenerateDataKeyPairWithoutPlaintext',
  'GenerateDataKeyWithoutPlaintext',
  'GenerateMac',
  'ReEncrypt',
  'RetireGrant',
  'RevokeGrant',
  'Sign',
  'Verify',
  'VerifyMac',
  'Encapsulate',
  'Decapsulate',
]);

export const dryRunSucceeded = () => new KmsError('DryRunOperationException', 'The request would have succeeded, but the DryRun option is set.', 412);

/** A request value in a message: strings as they are, anything else as JSON (never through a toString the caller chose). */
const shown = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

const noCustomKeyStore = (id: unknown) =>
  new KmsError(
    'CustomKeyStoreNotFoundException',
    `Custom key store ID ${shown(id)} does not exist in this account and Region: kmsvol has no custom key stores (AWS CloudHSM or external). Omit CustomKeyStoreId.`,
  );
const noAttestation = () =>
  new KmsError(
    'ValidationException',
    'The Recipient attestation document cannot be verified: this KMS has no Nitro Enclaves attestation. Omit Recipient to receive the plaintext in the response.',
  );
const unsupported = (member: string, what: string) => () =>
  new KmsError('UnsupportedOperationException', `${member} is not supported by kmsvol: ${what}. Omit it.`);

/** Members whose feature kmsvol does not have: present (and not null), they fail the call with AWS's error for it. */
export const UNSUPPORTED: Record<string, Record<string, (value: unknown) => KmsError>> = {
  CreateKey: {
    CustomKeyStoreId: noCustomKeyStore,
    XksKeyId: () => new KmsError('XksKeyNotFoundException', 'XksKeyId names a key in an external key store; kmsvol has no external key stores. Omit XksKeyId.'),
  },
  GenerateRandom: { CustomKeyStoreId: noCustomKeyStore, Recipient: noAttestation },
  Decrypt: { Recipient: noAttestation, DryRunModifiers: unsupported('DryRunModifiers', 'a DryRun here always checks the ciphertext') },
  ReEncrypt: { DryRunModifiers: unsupported('DryRunModifiers', 'a DryRun here always checks the ciphertext') },
  GenerateDataKey: { Recipient: noAttestation },
  GenerateDataKeyPair: { Recipient: noAttestation },
  DeriveSharedSecret: { Recipient: noAttestation },
  CreateGrant: {
    GranteeServicePrincipal: unsupported('GranteeServicePrincipal', 'grants name IAM principals (GranteePrincipal)'),
    RetiringServicePrincipal: unsupported('RetiringServicePrincipal', 'grants name IAM principals (RetiringPrincipal)'),
  },
  ListGrants: { GranteeServicePrincipal: unsupported('GranteeServicePrincipal', 'grants name IAM principals (GranteePrincipal)') },
  ListRetirableGrants: { RetiringServicePrincipal: unsupported('RetiringServicePrincipal', 'grants name IAM principals (RetiringPrincipal)') },
  ImportKeyMaterial: {
    ImportType: unsupported('ImportType', 'a key holds one imported material, re-imported as a whole'),
    KeyMaterialDescription: unsupported('KeyMaterialDescription', 'a key holds one imported material'),
    KeyMaterialId: unsupported('KeyMaterialId', 'a key holds one imported material'),
  },
  DeleteImportedKeyMaterial: { KeyMaterialId: unsupported('KeyMaterialId', "a key holds one imported material; omit it to delete the key's material") },
  ListKeyRotations: { IncludeKeyMaterial: unsupported('IncludeKeyMaterial', 'rotations list the key material of every rotation') },
};

/** Members each operation honours (GrantTokens and DryRun are checked for every operation that has them). */
export const HONOURED: Record<string, readonly string[]> = {
  CancelKeyDeletion: ['KeyId'],
  CreateAlias: ['AliasName', 'TargetKeyId'],
  CreateGrant: ['KeyId', 'GranteePrincipal', 'RetiringPrincipal', 'Operations', 'Constraints', 'GrantTokens', 'Name', 'DryRun'],
  CreateKey: ['Policy', 'Description', 'KeyUsage', 'CustomerMasterKeySpec', 'KeySpec', 'Origin', 'BypassPolicyLockoutSafetyCheck', 'Tags', 'MultiRegion'],
  Decrypt: ['CiphertextBlob', 'EncryptionContext', 'GrantTokens', 'KeyId', 'EncryptionAlgorithm', 'DryRun'],
  DeleteAlias: ['AliasName'],
  DeleteImportedKeyMaterial: ['KeyId'],
  DescribeKey: ['KeyId', 'GrantTokens'],
  DisableKey: ['KeyId'],
  DisableKeyRotation: ['KeyId'],
  EnableKey: ['KeyId'],
  EnableKeyRotation: ['KeyId', 'RotationPeriodInDays'],
  Encrypt: ['KeyId', 'Plaintext', 'EncryptionContext', 'GrantTokens', 'EncryptionAlgorithm', 'DryRun'],
  GenerateDataKey: ['KeyId', 'EncryptionContext', 'NumberOfBytes', 'KeySpec', 'GrantTokens', 'DryRun'],
  GenerateDataKeyWithoutPlaintext: ['KeyId', 'EncryptionContext', 'KeySpec', 'NumberOfBytes', 'GrantTokens', 'DryRun'],
  GenerateRandom: ['NumberOfBytes'],
  GetKeyPolicy: ['KeyId', 'PolicyName'],
  GetKeyRotationStatus: ['KeyId'],
  GetParametersForImport: ['KeyId', 'WrappingAlgorithm', 'WrappingKeySpec'],
  ImportKeyMaterial: ['KeyId', 'ImportToken', 'EncryptedKeyMaterial', 'ValidTo', 'ExpirationModel'],
  ListAliases: ['KeyId', 'Limit', 'Marker'],
  ListGrants: ['Limit', 'Marker', 'KeyId', 'GrantId', 'GranteePrincipal'],
  ListKeyPolicies: ['KeyId', 'Limit', 'Marker'],
  ListKeyRotations: ['KeyId', 'Limit', 'Marker'],
  ListKeys: ['Limit', 'Marker'],
  ListResourceTags: ['KeyId', 'Limit', 'Marker'],
  ListRetirableGrants: ['Limit', 'Marker', 'RetiringPrincipal'],
  PutKeyPolicy: ['KeyId', 'PolicyName', 'Policy', 'BypassPolicyLockoutSafetyCheck'],
  ReEncrypt: [
    'CiphertextBlob',
    'SourceEncryptionContext',
    'SourceKeyId',
    'DestinationKeyId',
    'DestinationEncryptionContext',
    'SourceEncryptionAlgorithm',
    'DestinationEncryptionAlgorithm',
    'GrantTokens',
    'DryRun',
  ],
  ReplicateKey: ['KeyId', 'ReplicaRegion', 'Policy', 'BypassPolicyLockoutSafetyCheck', 'Description', 'Tags'],
  RetireGrant: ['GrantToken', 'KeyId', 'GrantId', 'DryRun'],
  RevokeGrant: ['KeyId', 'GrantId', 'DryRun'],
  RotateKeyOnDemand: ['KeyId'],
  ScheduleKeyDeletion: ['KeyId', 'PendingWindowInDays'],
  TagResource: ['KeyId', 'Tags'],
  UntagResource: ['KeyId', 'TagKeys'],
  UpdateAlias: ['AliasName', 'TargetKeyId'],
  UpdateKeyDescription: ['KeyId', 'Description'],
  UpdatePrimaryRegion: ['KeyId', 'PrimaryRegion'],
  Sign: ['KeyId', 'Message', 'MessageType', 'GrantTokens', 'SigningAlgorithm', 'DryRun'],
  Verify: ['KeyId', 'Message', 'MessageType', 'Signature', 'SigningAlgorithm', 'GrantTokens', 'DryRun'],
  GetPublicKey: ['KeyId', 'GrantTokens'],
  GenerateMac: ['Message', 'KeyId', 'MacAlgorithm', 'GrantTokens', 'DryRun'],
  VerifyMac: ['Message', 'KeyId', 'MacAlgorithm', 'Mac', 'GrantTokens', 'DryRun'],
  GenerateDataKeyPair: ['EncryptionContext', 'KeyId', 'KeyPairSpec', 'GrantTokens', 'DryRun'],
  GenerateDataKeyPairWithoutPlaintext: ['EncryptionContext', 'KeyId', 'KeyPairSpec', 'GrantTokens', 'DryRun'],
  DeriveSharedSecret: ['KeyId', 'KeyAgreementAlgorithm', 'PublicKey', 'GrantTokens', 'DryRun'],
  GetKeyLastUsage: ['KeyId'],
  DescribeCustomKeyStores: ['CustomKeyStoreId', 'CustomKeyStoreName', 'Limit', 'Marker'],
  CreateCustomKeyStore: [
    'CustomKeyStoreName',
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
  ConnectCustomKeyStore: ['CustomKeyStoreId'],
  DisconnectCustomKeyStore: ['CustomKeyStoreId'],
  DeleteCustomKeyStore: ['CustomKeyStoreId'],
  UpdateCustomKeyStore: [
    'CustomKeyStoreId',
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
  Encapsulate: ['KeyId', 'EncapsulationAlgorithm', 'GrantTokens', 'DryRun'],
  Decapsulate: ['KeyId', 'SharedSecretCiphertextBlob', 'EncapsulationAlgorithm', 'GrantTokens', 'DryRun'],
};

/** Refuse a request that uses a member whose feature kmsvol lacks; returns whether it is a DryRun. */
export function checkMembers(op: string, req: Record<string, unknown>): boolean {
  const refused = UNSUPPORTED[op];
  if (refused) for (const [member, error] of Object.entries(refused)) if (req[member] !== undefined && req[member] !== null) throw error(req[member]);
  const dry = req.DryRun;
  if (dry === undefined || dry === null || !DRY_RUN_OPERATIONS.has(op)) return false;
  if (typeof dry !== 'boolean')
    throw new KmsError(
      'ValidationException',
      `1 validation error detected: Value '${shown(dry)}' at 'dryRun' failed to satisfy constraint: Member must be a boolean`,
    );
  return dry;
}
