import { ServiceError } from '../errors.js';
import type { XksErrorName } from './wire.js';

/**
 * What AWS KMS answers when its external key store proxy fails: the
 * specification's "KMS Considerations" table under Error codes, checked
 * against botocore's KMS model (every exception named here is a shape there).
 * One failure gives a different exception depending on the KMS operation that
 * met it, and the same message whatever the operation:
 * - the key store operations (Create/Update/ConnectCustomKeyStore) answer
 *   XksProxy*Exception, and ConnectCustomKeyStore's FAILED state carries the
 *   ConnectionErrorCode;
 * - CreateKey answers XksKey*Exception or CustomKeyStoreInvalidStateException;
 * - every other operation (Encrypt, Decrypt, GenerateDataKey, ReEncrypt,
 *   DescribeKey, ...) answers KMSInvalidStateException.
 * The phase is read from requestMetadata.kmsOperation, which the KMS sets on
 * every call anyway.
 */
export type XksFailure =
  | XksErrorName
  /** TCP connection refused, host not found, connection reset before an answer. */
  | 'ConnectFailed'
  /** The TLS handshake failed (certificate, protocol). */
  | 'TlsFailed'
  /** No complete answer within the client's timeout. */
  | 'Timeout'
  /** Not JSON, not the specification's shape, a status and body that do not agree, an unknown errorName. */
  | 'MalformedResponse'
  /** GetHealthStatus answered, but every external key manager is UNAVAILABLE. */
  | 'AllKeyManagersUnavailable'
  /** GetKeyMetadata answered a key KMS cannot use (not AES_256, not ENCRYPT and DECRYPT, not ENABLED). */
  | 'KeyNotUsable';

export type XksPhase = 'keyStore' | 'createKey' | 'crypto';

export const phaseOf = (kmsOperation: string): XksPhase =>
  ['CreateCustomKeyStore', 'UpdateCustomKeyStore', 'ConnectCustomKeyStore'].includes(kmsOperation)
    ? 'keyStore'
    : kmsOperation === 'CreateKey'
      ? 'createKey'
      : 'crypto';

interface Row {
  keyStore: string;
  createKey: string;
  connectionErrorCode: string;
  message: string;
}

const UNREACHABLE = 'XksProxyUriUnreachableException';
const INVALID_RESPONSE = 'XksProxyInvalidResponseException';
const STORE_STATE = 'CustomKeyStoreInvalidStateException';
const KEY_CONFIG = 'XksKeyInvalidConfigurationException';
const CANNOT_INTERPRET =
  'AWS KMS cannot interpret the response from the external key store proxy. If this happens again, report it to the administrator of the external key store proxy.';

/** The crypto phase is KMSInvalidStateException for every row. */
const TABLE: Record<XksFailure, Row> = {
  ValidationException: { keyStore: INVALID_RESPONSE, createKey: STORE_STATE, connectionErrorCode: 'XKS_PROXY_INVALID_RESPONSE', message: CANNOT_INTERPRET },
  MalformedResponse: { keyStore: INVALID_RESPONSE, createKey: STORE_STATE, connectionErrorCode: 'XKS_PROXY_INVALID_RESPONSE', message: CANNOT_INTERPRET },
  InvalidStateException: {
    keyStore: UNREACHABLE,
    createKey: KEY_CONFIG,
    connectionErrorCode: 'XKS_PROXY_NOT_REACHABLE',
    message:
      'The external key of this KMS key is not enabled in the external key manager (or the proxy reports its key store disabled). Enable it with the key manager’s own tools and retry.',
  },
  InvalidCiphertextException: {
    keyStore: INVALID_RESPONSE,
    createKey: STORE_STATE,
    connectionErrorCode: 'XKS_PROXY_INVALID_RESPONSE',
    message: 'The external key store proxy rejected the request: the ciphertext or the encryption context is corrupted, missing, or otherwise invalid.',
  },
  InvalidKeyUsageException: {
    keyStore: INVALID_RESPONSE,
    createKey: KEY_CONFIG,
    connectionErrorCode: 'XKS_PROXY_INVALID_RESPONSE',
    message:
      'The external key of this KMS key does not support the requested operation. Enable the operation on the key in the external key manager and try again.',
  },
  AuthenticationFailedException: {
    keyStore: 'XksProxyIncorrectAuthenticationCredentialException',
    createKey: STORE_STATE,
    connectionErrorCode: 'INVALID_CREDENTIALS',
    message:
      'The external key store proxy could not authenticate AWS KMS. Check the proxy authentication credential of the external key store (UpdateCustomKeyStore) against the one the proxy holds.',
  },
  AccessDeniedException: {
    keyStore: INVALID_RESPONSE,
    createKey: 'KMSInvalidStateException',
    connectionErrorCode: 'XKS_PROXY_ACCESS_DENIED',
    message:
      'The external key store proxy denied access to the operation. Check that its authorization rules allow this caller and this external key, and retry.',
  },
  KeyNotFoundException: {
    keyStore: INVALID_RESPONSE,
    createKey: 'XksKeyNotFoundException',
    connectionErrorCode: 'XKS_PROXY_INVALID_RESPONSE',
    message:
      'The external key of this KMS key was not found in the external key manager. If the XksKeyId is wrong, create a new KMS key with the right external key ID.',
  },
  InvalidUriPathException: {
    keyStore: 'XksProxyInvalidConfigurationException',
    createKey: STORE_STATE,
    connectionErrorCode: 'XKS_PROXY_INVALID_CONFIGURATION',
    message: 'The external key store proxy rejected the URI path. Check the XksProxyUriPath of the external key store and update it if needed.',
  },
  // The specification names "XksKeyInvalidResponseException" for CreateKey here; botocore's model has no such
  // shape, and of CreateKey's modelled errors XksKeyInvalidConfigurationException is the one that says the same.
  UnsupportedOperationException: {
    keyStore: INVALID_RESPONSE,
    createKey: KEY_CONFIG,
    connectionErrorCode: 'XKS_PROXY_INVALID_RESPONSE',
    message:
      'The external key store proxy does not support the requested operation. If this happens again, report it to the administrator of the external key store proxy.',
  },
  DependencyTimeoutException: {
    keyStore: UNREACHABLE,
    createKey: STORE_STATE,
    connectionErrorCode: 'XKS_PROXY_TIMED_OUT',
    message: 'The external key store proxy did not get an answer from its key manager in time. Retry; if this happens again, report it to its administrator.',
  },
  ThrottlingException: {
    keyStore: UNREACHABLE,
    createKey: STORE_STATE,
    connectionErrorCode: 'XKS_PROXY_NOT_REACHABLE',
    message: 'The external key store proxy rejected the request because of a very high request rate. Call with the keys of this external key store less often.',
  },
  InternalException: {
    keyStore: INVALID_RESPONSE,
    createKey: STORE_STATE,
    connectionErrorCode: 'XKS_PROXY_NOT_REACHABLE',
    message:
      'The external key store proxy cannot communicate with its external key manager. Check the proxy configuration and that the key manager is available.',
  },
  ConnectFailed: {
    keyStore: UNREACHABLE,
    createKey: STORE_STATE,
    connectionErrorCode: 'XKS_PROXY_NOT_REACHABLE',
    message:
      'AWS KMS cannot communicate with the external key store proxy. Check that the proxy is running and reachable, and that XksProxyUriEndpoint names it.',
  },
  TlsFailed: {
    keyStore: UNREACHABLE,
    createKey: STORE_STATE,
    connectionErrorCode: 'XKS_PROXY_INVALID_TLS_CONFIGURATION',
    message: 'AWS KMS cannot establish a TLS connection to the external key store proxy. Check its TLS configuration, including its certificate.',
  },
  Timeout: {
    keyStore: UNREACHABLE,
    createKey: STORE_STATE,
    connectionErrorCode: 'XKS_PROXY_TIMED_OUT',
    message: 'The external key store proxy did not respond in time. Retry; if this happens again, report it to the administrator of the proxy.',
  },
  AllKeyManagersUnavailable: {
    keyStore: UNREACHABLE,
    createKey: STORE_STATE,
    connectionErrorCode: 'XKS_PROXY_NOT_REACHABLE',
    message: 'The external key store proxy reports every external key manager UNAVAILABLE. Check the key managers behind the proxy.',
  },
  KeyNotUsable: {
    keyStore: INVALID_RESPONSE,
    createKey: KEY_CONFIG,
    connectionErrorCode: 'XKS_PROXY_INVALID_RESPONSE',
    message: 'The external key must be an AES_256 key that is ENABLED and supports ENCRYPT and DECRYPT in the external key manager.',
  },
};

/**
 * A failure of the external key store proxy, as AWS KMS reports it: `code`
 * (and `name`) is the KMS exception for the KMS operation that met it.
 * `failure` is what happened at the proxy (its errorName, or the transport or
 * shape fault); `connectionErrorCode` is what ConnectCustomKeyStore's FAILED
 * state reports for it; `proxyStatus` and `proxyMessage` are the proxy's HTTP
 * status and errorMessage when it answered (AWS logs the latter, never shows it
 * to the KMS caller).
 */
export class XksError extends ServiceError {
  readonly failure: XksFailure;
  readonly connectionErrorCode: string;
  readonly proxyStatus: number | undefined;
  readonly proxyMessage: string | undefined;
  /** What exactly was wrong, when the client could tell (also at the end of the message). */
  readonly why: string | undefined;
  /** The KMS operation the call was made for (requestMetadata.kmsOperation), which chose `code`. */
  readonly kmsOperation: string;

  constructor(failure: XksFailure, kmsOperation: string, detail: { proxyStatus?: number; proxyMessage?: string; why?: string } = {}) {
    const row = TABLE[failure];
    const phase = phaseOf(kmsOperation);
    const code = phase === 'keyStore' ? row.keyStore : phase === 'createKey' ? row.createKey : 'KMSInvalidStateException';
    super(code, detail.why ? `${row.message} (${detail.why})` : row.message, 400);
    this.failure = failure;
    this.connectionErrorCode = row.connectionErrorCode;
    this.proxyStatus = detail.proxyStatus;
    this.proxyMessage = detail.proxyMessage;
    this.why = detail.why;
    this.kmsOperation = kmsOperation;
  }
}
