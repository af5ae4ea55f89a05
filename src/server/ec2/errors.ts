import { ServiceError } from '../../errors.js';
import { KmsError } from '../../kms/errors.js';

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
