/**
 * Typed errors. Every error a user can meet carries a stable `name`, which is
 * AWS's exception name wherever AWS has one (DisabledException, VolumeInUse, ...).
 * Errors are given to the user in two places: as errno at the FUSE edge (the
 * card's C server), and as the AWS CLI's message and exit code (src/cli/errors.ts).
 * Between the parts they change form only at these boundaries:
 * - the KMS's own: anything thrown in an operation leaves Kms.invokeAs as a
 *   KmsError (src/kms/kms.ts; SQLite faults through src/sqlite.ts's sqliteFault);
 * - a remote KMS: the SDK's exceptions become ServiceError with AWS's name
 *   (src/kms/client/remote.ts);
 * - the card: its control socket's {name, message} reply becomes a ServiceError,
 *   and an attach that fails becomes an EBS Volume Notification event with the
 *   error as its cause (`cardError` in src/card/control.ts; src/card/attach.ts);
 * - the endpoint: a ServiceError becomes an HTTP status and its protocol's error
 *   body (src/server/http.ts with each service's `error`), and a KMS error met
 *   while EC2 answers becomes EC2's InvalidKMSKey or UnauthorizedOperation
 *   (src/server/ec2/errors.ts).
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
