import crypto from 'node:crypto';

/**
 * The External Key Store (XKS) Proxy API, version 1, as AWS publishes it
 * (github.com/aws/aws-kms-xksproxy-api-spec, xks_proxy_api_spec.md): the
 * shapes, limits and error names that both sides of kmsvol share, the KMS's
 * XKS client (client.ts) and the `kmsvol xks-proxy` server (proxy.ts). Each
 * constant names the section of the specification it comes from.
 */

/** Appendix A: the service name in the SigV4 credential scope. */
export const XKS_SERVICE = 'kms-xks-proxy';

/** "API operations": the one encryption algorithm of v1. */
export const AES_GCM = 'AES_GCM';
/** Encrypt, ciphertextDataIntegrityValueAlgorithm: the one CDIV algorithm of v1. */
export const SHA_256 = 'SHA_256';

/** Encrypt/Decrypt: the plaintext and ciphertext sizes every proxy MUST support. */
export const MAX_PLAINTEXT = 4300;
/** Encrypt/Decrypt: the AAD size every proxy MUST support. */
export const MAX_AAD = 8192;
/** Encrypt: ciphertextMetadata is at most 20 bytes (before base64). */
export const MAX_CIPHERTEXT_METADATA = 20;
/** Encrypt/Decrypt: the IV is 12 or 16 bytes; the tag is 16. */
export const IV_LENGTHS = [12, 16] as const;
export const TAG_LENGTH = 16;
/** "API operations": XksKeyId and externalKeyId, at most 128 of these characters. */
export const KEY_ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;
/** "API operations": XksProxyUriPath, at most 128 characters, ending in /kms/xks/v1 (botocore's XksProxyUriPathType). */
export const URI_PATH_PATTERN = /^(\/[a-zA-Z0-9/_-]+)?\/kms\/xks\/v1$/;
export const MAX_URI_PATH = 128;
/** Error codes: errorMessage is under 512 printable ASCII characters. */
export const MAX_ERROR_MESSAGE = 511;

/** Error codes: every errorName a v1 proxy may answer, with its HTTP status. */
export const XKS_ERRORS = {
  ValidationException: 400,
  InvalidStateException: 400,
  InvalidCiphertextException: 400,
  InvalidKeyUsageException: 400,
  AuthenticationFailedException: 401,
  AccessDeniedException: 403,
  KeyNotFoundException: 404,
  InvalidUriPathException: 404,
  ThrottlingException: 429,
  InternalException: 500,
  UnsupportedOperationException: 501,
  DependencyTimeoutException: 503,
} as const;
export type XksErrorName = keyof typeof XKS_ERRORS;

export const isXksErrorName = (s: unknown): s is XksErrorName => typeof s === 'string' && Object.hasOwn(XKS_ERRORS, s);

/** requestMetadata (each operation's "Request Payload Parameters", Appendix B). Fields KMS may add later pass through. */
export interface XksRequestMetadata {
  /** REQUIRED for metadata, encrypt and decrypt; absent from health. */
  awsPrincipalArn?: string;
  awsSourceVpc?: string;
  awsSourceVpce?: string;
  /** REQUIRED for encrypt and decrypt. */
  kmsKeyArn?: string;
  /** REQUIRED: the KMS operation that led to the call (CreateKey, Decrypt, KmsHealthCheck, ...). */
  kmsOperation: string;
  /** REQUIRED: opaque, never validated for structure. */
  kmsRequestId: string;
  kmsViaService?: string;
  [extra: string]: unknown;
}

/** GetHealthStatus's response. */
export interface XksHealthStatus {
  xksProxyFleetSize: number;
  xksProxyVendor: string;
  xksProxyModel: string;
  ekmVendor: string;
  ekmFleetDetails: { id: string; model: string; healthStatus: 'ACTIVE' | 'DEGRADED' | 'UNAVAILABLE' }[];
}

export const EKM_HEALTH = ['ACTIVE', 'DEGRADED', 'UNAVAILABLE'] as const;
export const KEY_STATUS = ['ENABLED', 'DISABLED'] as const;
/** GetKeyMetadata: at most ten keyUsage values. */
export const MAX_KEY_USAGES = 10;

/**
 * Canonical base64 (RFC 4648 section 4, with padding), decoded, or undefined.
 * Node's decoder skips what it does not understand; the wire must not, so the
 * text is re-encoded and compared.
 */
export function strictBase64(s: unknown): Buffer | undefined {
  if (typeof s !== 'string' || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return undefined;
  const b = Buffer.from(s, 'base64');
  return b.toString('base64') === s ? b : undefined;
}

/**
 * Encrypt, ciphertextMetadata: the AAD a proxy hands its key manager,
 * 2-byte big-endian length of the AAD || AAD || 1-byte length of the
 * ciphertextMetadata || ciphertextMetadata, so that neither can stand in for
 * the other. Absent fields count as empty.
 */
export function keyManagerAad(aad: Buffer | undefined, ciphertextMetadata: Buffer | undefined): Buffer {
  const a = aad ?? Buffer.alloc(0);
  const m = ciphertextMetadata ?? Buffer.alloc(0);
  if (a.length > 0xffff || m.length > 0xff) throw new RangeError(`AAD of ${a.length} bytes or ciphertextMetadata of ${m.length} bytes is too long to frame.`);
  const head = Buffer.alloc(2);
  head.writeUInt16BE(a.length);
  return Buffer.concat([head, a, Buffer.from([m.length]), m]);
}

/** Appendix C: the CDIV, SHA-256 over AAD || ciphertextMetadata || IV || ciphertext || tag (absent fields empty, no lengths). */
export function cdiv(
  aad: Buffer | undefined,
  out: { ciphertextMetadata?: Buffer | undefined; initializationVector: Buffer; ciphertext: Buffer; authenticationTag: Buffer },
): Buffer {
  const h = crypto.createHash('sha256');
  for (const part of [aad, out.ciphertextMetadata, out.initializationVector, out.ciphertext, out.authenticationTag]) if (part) h.update(part);
  return h.digest();
}

/** The URI of an operation under a proxy's base: `{uriPath}/health` or `{uriPath}/keys/{keyId}/{metadata|encrypt|decrypt}`. */
export function operationPath(uriPath: string, op: 'health' | 'metadata' | 'encrypt' | 'decrypt', keyId?: string): string {
  return op === 'health' ? `${uriPath}/health` : `${uriPath}/keys/${keyId}/${op}`;
}
