import { ServiceError } from '../errors.js';

/**
 * The EBS direct APIs' errors, as botocore's `ebs` model names them: each
 * carries its Reason from the model's enum, which the codec puts in the body.
 */
export class EbsError extends ServiceError {
  constructor(
    name: string,
    message: string,
    status: number,
    readonly reason?: string,
  ) {
    super(name, message, status);
  }
}

export type ValidationReason =
  | 'INVALID_CUSTOMER_KEY'
  | 'INVALID_PAGE_TOKEN'
  | 'INVALID_BLOCK_TOKEN'
  | 'INVALID_SNAPSHOT_ID'
  | 'UNRELATED_SNAPSHOTS'
  | 'INVALID_BLOCK'
  | 'INVALID_CONTENT_ENCODING'
  | 'INVALID_TAG'
  | 'INVALID_DEPENDENCY_REQUEST'
  | 'INVALID_PARAMETER_VALUE'
  | 'INVALID_VOLUME_SIZE'
  | 'CONFLICTING_BLOCK_UPDATE';

export const EbsErrors = {
  validation: (reason: ValidationReason, message: string) => new EbsError('ValidationException', message, 400, reason),
  notFound: (message: string, reason: 'SNAPSHOT_NOT_FOUND' | 'DEPENDENCY_RESOURCE_NOT_FOUND' = 'SNAPSHOT_NOT_FOUND') =>
    new EbsError('ResourceNotFoundException', message, 404, reason),
  accessDenied: (message: string, reason: 'UNAUTHORIZED_ACCOUNT' | 'DEPENDENCY_ACCESS_DENIED') => new EbsError('AccessDeniedException', message, 403, reason),
  concurrentLimit: (message: string) => new EbsError('ConcurrentLimitExceededException', message, 400),
  throttled: (message: string) => new EbsError('RequestThrottledException', message, 400, 'ACCOUNT_THROTTLED'),
};

/** Run `f`, a call through the KMS: a KMS refusal (a disabled key, a denied grant) is EBS's AccessDeniedException naming the KMS's error. */
export async function viaKms<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof ServiceError && !(e instanceof EbsError) && e.httpStatus < 500 && /Exception$|^AccessDenied/.test(e.name))
      throw EbsErrors.accessDenied(`The KMS refused the snapshot's key: (${e.name}) ${e.message}`, 'DEPENDENCY_ACCESS_DENIED');
    throw e;
  }
}
