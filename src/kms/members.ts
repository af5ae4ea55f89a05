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

/**
 * Members each operation honours, in the order the CLI lists them; a trailing "!" marks
 * one AWS requires (the CLI checks it, exit 252, as the AWS CLI does). DryRun is listed
 * where the operation has it; GrantTokens are checked for every operation that has them.
 */
export const HONOURED: Record<string, readonly string[]> = {
  CreateKey: ['Description', 'KeyUsage', 'KeySpec', 'CustomerMasterKeySpec', 'Origin', 'Tags', 'MultiRegion', 'Policy', 'BypassPolicyLockoutSafetyCheck'],
  DescribeKey: ['KeyId!', 'GrantTokens'],
  ListKeys: ['Limit', 'Marker'],
  UpdateKeyDescription: ['KeyId!', 'Description!'],
  TagResource: ['KeyId!', 'Tags!'],
  UntagResource: ['KeyId!', 'TagKeys!'],
  ListResourceTags: ['KeyId!', 'Limit', 'Marker'],
  Encrypt: ['KeyId!', 'Plaintext!', 'EncryptionContext', 'GrantTokens', 'EncryptionAlgorithm'],
  Decrypt: ['CiphertextBlob!', 'EncryptionContext', 'GrantTokens', 'KeyId', 'EncryptionAlgorithm'],
  ReEncrypt: [
    'CiphertextBlob!',
    'SourceEncryptionContext',
    'SourceKeyId',
    'DestinationKeyId!',
    'DestinationEncryptionContext',
    'SourceEncryptionAlgorithm',
    'DestinationEncryptionAlgorithm',
    'GrantTokens',
  ],
  GenerateDataKey: ['KeyId!', 'EncryptionContext', 'NumberOfBytes', 'KeySpec', 'GrantTokens'],
  GenerateDataKeyWithoutPlaintext: ['KeyId!', 'EncryptionContext', 'NumberOfBytes', 'KeySpec', 'GrantTokens'],
  GenerateRandom: ['NumberOfBytes'],
  EnableKey: ['KeyId!'],
  DisableKey: ['KeyId!'],
  ScheduleKeyDeletion: ['KeyId!', 'PendingWindowInDays'],
  CancelKeyDeletion: ['KeyId!'],
  EnableKeyRotation: ['KeyId!', 'RotationPeriodInDays'],
  DisableKeyRotation: ['KeyId!'],
  GetKeyRotationStatus: ['KeyId!'],
  RotateKeyOnDemand: ['KeyId!'],
  ListKeyRotations: ['KeyId!', 'Limit', 'Marker'],
  CreateAlias: ['AliasName!', 'TargetKeyId!'],
  UpdateAlias: ['AliasName!', 'TargetKeyId!'],
  DeleteAlias: ['AliasName!'],
  ListAliases: ['KeyId', 'Limit', 'Marker'],
  ReplicateKey: ['KeyId!', 'ReplicaRegion!', 'Description', 'Policy', 'Tags', 'BypassPolicyLockoutSafetyCheck'],
  UpdatePrimaryRegion: ['KeyId!', 'PrimaryRegion!'],
  GetKeyPolicy: ['KeyId!', 'PolicyName'],
  PutKeyPolicy: ['KeyId!', 'Policy!', 'PolicyName', 'BypassPolicyLockoutSafetyCheck'],
  ListKeyPolicies: ['KeyId!', 'Limit', 'Marker'],
  CreateGrant: ['KeyId!', 'GranteePrincipal!', 'Operations!', 'RetiringPrincipal', 'Constraints', 'GrantTokens', 'Name'],
  ListGrants: ['KeyId!', 'GrantId', 'GranteePrincipal', 'Limit', 'Marker'],
  ListRetirableGrants: ['RetiringPrincipal!', 'Limit', 'Marker'],
  RetireGrant: ['GrantToken', 'KeyId', 'GrantId'],
  RevokeGrant: ['KeyId!', 'GrantId!'],
  GetParametersForImport: ['KeyId!', 'WrappingAlgorithm!', 'WrappingKeySpec!'],
  ImportKeyMaterial: ['KeyId!', 'ImportToken!', 'EncryptedKeyMaterial!', 'ValidTo', 'ExpirationModel'],
  DeleteImportedKeyMaterial: ['KeyId!'],
  Sign: ['KeyId!', 'Message!', 'MessageType', 'GrantTokens', 'SigningAlgorithm!'],
  Verify: ['KeyId!', 'Message!', 'MessageType', 'Signature!', 'SigningAlgorithm!', 'GrantTokens'],
  GetPublicKey: ['KeyId!', 'GrantTokens'],
  GenerateMac: ['Message!', 'KeyId!', 'MacAlgorithm!', 'GrantTokens'],
  VerifyMac: ['Message!', 'KeyId!', 'MacAlgorithm!', 'Mac!', 'GrantTokens'],
  GenerateDataKeyPair: ['EncryptionContext', 'KeyId!', 'KeyPairSpec!', 'GrantTokens'],
  GenerateDataKeyPairWithoutPlaintext: ['EncryptionContext', 'KeyId!', 'KeyPairSpec!', 'GrantTokens'],
  DeriveSharedSecret: ['KeyId!', 'KeyAgreementAlgorithm!', 'PublicKey!', 'GrantTokens'],
  GetKeyLastUsage: ['KeyId!'],
  DescribeCustomKeyStores: ['CustomKeyStoreId', 'CustomKeyStoreName', 'Limit', 'Marker'],
  CreateCustomKeyStore: [
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
  ConnectCustomKeyStore: ['CustomKeyStoreId!'],
  DisconnectCustomKeyStore: ['CustomKeyStoreId!'],
  DeleteCustomKeyStore: ['CustomKeyStoreId!'],
  UpdateCustomKeyStore: [
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
  Encapsulate: ['KeyId!', 'EncapsulationAlgorithm!', 'GrantTokens'],
  Decapsulate: ['KeyId!', 'SharedSecretCiphertextBlob!', 'EncapsulationAlgorithm!', 'GrantTokens'],
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
