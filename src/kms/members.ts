import { KmsError } from './errors.js';

/**
 * Request members by name, across every KMS operation: the type each has on
 * the wire and in the CLI, and whether the audit log records it. Which
 * members each operation honours or refuses is its entry in the registry
 * (operations.ts); test/unit/kms/members.test.ts and registry.test.ts compare
 * both with AWS's models, so a new member shows up as a failing test.
 */
export type MemberType = 'string' | 'blob' | 'map' | 'int' | 'bool' | 'list' | 'structs' | 'struct' | 'timestamp';

/**
 * Every member an operation honours, with its type and its audit decision:
 * `audit: true` puts it in the audit log's requestParameters. Blobs (plaintext,
 * ciphertext, key material), passwords, credentials, grant tokens, policies and
 * paging state are never recorded.
 */
export const MEMBERS: Readonly<Record<string, { type: MemberType; audit: boolean }>> = {
  KeyId: { type: 'string', audit: true },
  SourceKeyId: { type: 'string', audit: true },
  DestinationKeyId: { type: 'string', audit: true },
  TargetKeyId: { type: 'string', audit: true },
  AliasName: { type: 'string', audit: true },
  EncryptionContext: { type: 'map', audit: true },
  SourceEncryptionContext: { type: 'map', audit: true },
  DestinationEncryptionContext: { type: 'map', audit: true },
  KeySpec: { type: 'string', audit: true },
  NumberOfBytes: { type: 'int', audit: true },
  KeyUsage: { type: 'string', audit: true },
  Origin: { type: 'string', audit: true },
  Description: { type: 'string', audit: true },
  PendingWindowInDays: { type: 'int', audit: true },
  RotationPeriodInDays: { type: 'int', audit: true },
  MultiRegion: { type: 'bool', audit: true },
  TagKeys: { type: 'list', audit: true },
  EncryptionAlgorithm: { type: 'string', audit: true },
  SourceEncryptionAlgorithm: { type: 'string', audit: true },
  DestinationEncryptionAlgorithm: { type: 'string', audit: true },
  GranteePrincipal: { type: 'string', audit: true },
  RetiringPrincipal: { type: 'string', audit: true },
  Operations: { type: 'list', audit: true },
  Constraints: { type: 'struct', audit: true },
  Name: { type: 'string', audit: true },
  GrantId: { type: 'string', audit: true },
  ReplicaRegion: { type: 'string', audit: true },
  PrimaryRegion: { type: 'string', audit: true },
  PolicyName: { type: 'string', audit: true },
  BypassPolicyLockoutSafetyCheck: { type: 'bool', audit: true },
  WrappingAlgorithm: { type: 'string', audit: true },
  WrappingKeySpec: { type: 'string', audit: true },
  ExpirationModel: { type: 'string', audit: true },
  ValidTo: { type: 'timestamp', audit: true },
  DryRun: { type: 'bool', audit: true },
  SigningAlgorithm: { type: 'string', audit: true },
  MessageType: { type: 'string', audit: true },
  MacAlgorithm: { type: 'string', audit: true },
  KeyPairSpec: { type: 'string', audit: true },
  KeyAgreementAlgorithm: { type: 'string', audit: true },
  EncapsulationAlgorithm: { type: 'string', audit: true },
  CustomKeyStoreId: { type: 'string', audit: true },
  XksKeyId: { type: 'string', audit: true },
  CustomKeyStoreName: { type: 'string', audit: true },
  DryRunModifiers: { type: 'list', audit: true },
  IncludeKeyMaterial: { type: 'string', audit: true },
  ImportType: { type: 'string', audit: true },
  KeyMaterialId: { type: 'string', audit: true },
  KeyMaterialDescription: { type: 'string', audit: true },
  CustomerMasterKeySpec: { type: 'string', audit: false },
  Tags: { type: 'structs', audit: false },
  Policy: { type: 'string', audit: false },
  GrantTokens: { type: 'list', audit: false },
  GrantToken: { type: 'string', audit: false },
  Limit: { type: 'int', audit: false },
  Marker: { type: 'string', audit: false },
  Plaintext: { type: 'blob', audit: false },
  CiphertextBlob: { type: 'blob', audit: false },
  ImportToken: { type: 'blob', audit: false },
  EncryptedKeyMaterial: { type: 'blob', audit: false },
  Message: { type: 'blob', audit: false },
  Signature: { type: 'blob', audit: false },
  Mac: { type: 'blob', audit: false },
  PublicKey: { type: 'blob', audit: false },
  SharedSecretCiphertextBlob: { type: 'blob', audit: false },
  CloudHsmClusterId: { type: 'string', audit: false },
  TrustAnchorCertificate: { type: 'string', audit: false },
  KeyStorePassword: { type: 'string', audit: false },
  CustomKeyStoreType: { type: 'string', audit: false },
  NewCustomKeyStoreName: { type: 'string', audit: false },
  XksProxyUriEndpoint: { type: 'string', audit: false },
  XksProxyUriPath: { type: 'string', audit: false },
  XksProxyVpcEndpointServiceName: { type: 'string', audit: false },
  XksProxyVpcEndpointServiceOwner: { type: 'string', audit: false },
  XksProxyAuthenticationCredential: { type: 'struct', audit: false },
  XksProxyConnectivity: { type: 'string', audit: false },
};

/** Response fields the audit log records in responseElements (KeyMetadata is recorded as its KeyId and KeyState only). */
export const AUDITED_RESPONSE_FIELDS = [
  'KeyId',
  'SourceKeyId',
  'KeyState',
  'DeletionDate',
  'GrantId',
  'KeyMaterialId',
  'ParametersValidTo',
  'SigningAlgorithm',
  'SignatureValid',
  'MacValid',
  'KeyPairSpec',
  'KeyAgreementAlgorithm',
] as const;

/** The members the audit log records in requestParameters. */
export const AUDITED_REQUEST_MEMBERS: readonly string[] = Object.entries(MEMBERS)
  .filter(([, m]) => m.audit)
  .map(([name]) => name);

export const dryRunSucceeded = () => new KmsError('DryRunOperationException', 'The request would have succeeded, but the DryRun option is set.', 412);

/** A request value in a message: strings as they are, anything else as JSON (never through a toString the caller chose). */
const shown = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

/** Errors for members whose feature kmsvol does not have (operations.ts lists which operation refuses which). */
export const noCustomKeyStore = (id: unknown) =>
  new KmsError(
    'CustomKeyStoreNotFoundException',
    `Custom key store ID ${shown(id)} does not exist in this account and Region: kmsvol has no custom key stores (AWS CloudHSM or external). Omit CustomKeyStoreId.`,
  );
export const noAttestation = () =>
  new KmsError(
    'ValidationException',
    'The Recipient attestation document cannot be verified: this KMS has no Nitro Enclaves attestation. Omit Recipient to receive the plaintext in the response.',
  );
export const unsupported = (member: string, what: string) => () =>
  new KmsError('UnsupportedOperationException', `${member} is not supported by kmsvol: ${what}. Omit it.`);

/** What checkMembers needs of an operation's registry entry. */
export interface MemberRules {
  dryRun?: boolean;
  unsupported?: Readonly<Record<string, (value: unknown) => KmsError>>;
}

/** Refuse a request that uses a member whose feature kmsvol lacks; returns whether it is a DryRun. */
export function checkMembers(spec: MemberRules, req: Record<string, unknown>): boolean {
  for (const [member, error] of Object.entries(spec.unsupported ?? {})) if (req[member] !== undefined && req[member] !== null) throw error(req[member]);
  const dry = req.DryRun;
  if (dry === undefined || dry === null || !spec.dryRun) return false;
  if (typeof dry !== 'boolean')
    throw new KmsError(
      'ValidationException',
      `1 validation error detected: Value '${shown(dry)}' at 'dryRun' failed to satisfy constraint: Member must be a boolean`,
    );
  return dry;
}
