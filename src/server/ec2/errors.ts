import { ServiceError } from '../../errors.js';
import { KmsError } from '../../kms/errors.js';
import type { WireError } from '../service.js';

/**
 * Errors on the EC2 wire. The volume layer already names its errors with
 * EC2's codes (InvalidVolume.NotFound, VolumeInUse, IncorrectState,
 * InvalidParameterValue, MissingParameter…); a KMS refusal met while EC2
 * answers is given EC2's InvalidKMSKey codes, with the KMS's own words kept
 * in the message. Attach failures after `attaching` never come here: they are
 * recorded as EBS Volume Notification events (the KMS's exception as cause).
 */
export const unauthorized = (detail: string) => new ServiceError('UnauthorizedOperation', `You are not authorized to perform this operation. ${detail}`, 403);

export const invalidAction = (action: string) =>
  new ServiceError(
    'InvalidAction',
    `The action ${action || '(none)'} is not valid for this web service. kmsvol's EC2 answers the EBS volume, snapshot, tag, encryption-by-default and DescribeInstances actions.`,
  );

export function toWireError(e: unknown): { code: string; message: string; status: number } {
  if (e instanceof KmsError) {
    if (e.name === 'NotFoundException') return { code: 'InvalidKMSKey.NotFound', message: `The KMS key provided does not exist: ${e.message}`, status: 400 };
    if (e.name === 'AccessDeniedException')
      return { code: 'UnauthorizedOperation', message: `You are not authorized to use the KMS key: ${e.message}`, status: 403 };
    return { code: 'InvalidKMSKey.InvalidState', message: `The KMS key provided is in an incorrect state (${e.name}: ${e.message})`, status: 400 };
  }
  if (e instanceof ServiceError) return { code: e.name, message: e.message, status: Math.min(e.httpStatus, 500) };
  if (e instanceof Error && e.name === 'ParamValidation') return { code: 'InvalidParameterValue', message: e.message, status: 400 };
  return { code: 'InternalError', message: "An internal error has occurred. The details are in the endpoint's log.", status: 500 };
}

/** EC2's own answer to a failed authentication: its codes and HTTP statuses (API reference, Error codes), never the JSON services' exception names. */
const AUTH: Record<NonNullable<WireError['failure']>, (detail: string) => WireError> = {
  missing: (d) => ({
    name: 'MissingAuthenticationToken',
    message: `The request must contain either a valid (registered) AWS access key ID or X.509 certificate. ${d}`,
    status: 401,
  }),
  incomplete: (d) => ({ name: 'IncompleteSignature', message: d, status: 400 }),
  signature: (d) => ({ name: 'SignatureDoesNotMatch', message: d, status: 403 }),
  // EC2 allows 15 minutes either way; past them (early or late) the request has expired.
  skew: (d) => ({ name: 'RequestExpired', message: `Request has expired. ${d}`, status: 400 }),
  'unknown-key': () => ({
    name: 'AuthFailure',
    message:
      'AWS was not able to validate the provided access credentials: the access key is not known to this endpoint (create one with `kmsvol iam create-access-key`).',
    status: 401,
  }),
  'invalid-token': () => ({
    name: 'AuthFailure',
    message: 'AWS was not able to validate the provided access credentials: the session token is not the one issued with this access key.',
    status: 401,
  }),
  'expired-token': () => ({
    name: 'RequestExpired',
    message: 'Request has expired. The security token included in the request is expired: assume the role again for new credentials.',
    status: 400,
  }),
};

/** An error raised before EC2 ran, in EC2's words: authentication failures get EC2's codes; the rest keep theirs. */
export function ec2AuthError(e: WireError): WireError {
  return e.failure ? AUTH[e.failure](e.message) : e;
}
