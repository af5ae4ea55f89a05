/**
 * Typed errors. Every error a user can meet carries a stable `name`, which is
 * AWS's exception name wherever AWS has one (DisabledException, VolumeInUse, ...).
 * They are translated in exactly two places: to errno at the FUSE edge, and to
 * the AWS CLI's message and exit code in src/cli/.
 */
export class ServiceError extends Error {
  /** HTTP status AWS uses for this error (400 for client faults, 500 for internal ones). */
  readonly httpStatus: number;

  constructor(name: string, message: string, httpStatus = 400) {
    super(message);
    this.name = name;
    this.httpStatus = httpStatus;
  }

  /** The AWS error code (same as `name`), for callers that think in AWS terms. */
  get code(): string {
    return this.name;
  }
}

/** A usage error in the AWS CLI sense (bad arguments); exit code 252. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ParamValidation';
  }
}

export function isServiceError(e: unknown, name?: string): e is ServiceError {
  return e instanceof ServiceError && (name === undefined || e.name === name);
}
