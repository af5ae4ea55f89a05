import { ServiceError } from '../errors.js';

/**
 * AWS KMS exceptions, named and worded as AWS names and words them.
 * Messages never contain key bytes; they name the key by ARN or id only.
 */
export class KmsError extends ServiceError {}

const err =
  (name: string, status = 400) =>
  (message: string) =>
    new KmsError(name, message, status);

export const KmsErrors = {
  notFound: err('NotFoundException'),
  disabled: (arn: string) => new KmsError('DisabledException', `${arn} is disabled.`),
  /** KMSInvalidStateException worded per state: "<arn> is pending deletion." */
  invalidState: (arn: string, state: string) => new KmsError('KMSInvalidStateException', `${arn} is ${describeState(state)}.`),
  invalidStateMsg: err('KMSInvalidStateException'),
  validation: err('ValidationException'),
  invalidCiphertext: () =>
    new KmsError(
      'InvalidCiphertextException',
      'The ciphertext is invalid: it was not produced by this KMS, it was changed, or the encryption context differs from the one used to encrypt it. Pass the exact blob and encryption context.',
    ),
  incorrectKey: () =>
    new KmsError(
      'IncorrectKeyException',
      'The key ID in the request does not identify a KMS key that can perform this operation. The ciphertext was encrypted under a different KMS key; omit KeyId or name that key.',
    ),
  alreadyExists: err('AlreadyExistsException'),
  limitExceeded: err('LimitExceededException'),
  unsupported: err('UnsupportedOperationException'),
  invalidAliasName: err('InvalidAliasNameException'),
  invalidMarker: err('InvalidMarkerException'),
  tag: err('TagException'),
  invalidKeyUsage: err('InvalidKeyUsageException'),
  internal: err('KMSInternalException', 500),
};

function describeState(state: string): string {
  switch (state) {
    case 'PendingDeletion':
      return 'pending deletion';
    case 'PendingImport':
      return 'pending import';
    case 'Disabled':
      return 'disabled';
    default:
      return `in state ${state}`;
  }
}

/** AWS's "1 validation error detected" wording for a field constraint. */
export function fieldError(field: string, value: unknown, constraint: string): KmsError {
  const shown = typeof value === 'string' || typeof value === 'number' ? `'${value}'` : 'null';
  return KmsErrors.validation(`1 validation error detected: Value ${shown} at '${lowerFirst(field)}' failed to satisfy constraint: ${constraint}`);
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}
