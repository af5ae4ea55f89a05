import type { WireError } from './service.js';

/**
 * The answer of AWS's Query services other than EC2 (STS, IAM) to a failed
 * authentication: their codes and statuses (botocore's STS and IAM models,
 * AWS's common errors), never the JSON services' names.
 */
export const QUERY_AUTH: Record<NonNullable<WireError['failure']>, (detail: string) => WireError> = {
  missing: (d) => ({ name: 'MissingAuthenticationToken', message: `Request is missing Authentication Token. ${d}`, status: 403 }),
  incomplete: (d) => ({ name: 'IncompleteSignature', message: d, status: 400 }),
  signature: (d) => ({ name: 'SignatureDoesNotMatch', message: d, status: 403 }),
  // STS, like the other Query services, allows 15 minutes either way; past them the signature does not match ("Signature expired: …").
  skew: (d) => ({ name: 'SignatureDoesNotMatch', message: d, status: 403 }),
  'unknown-key': () => ({ name: 'InvalidClientTokenId', message: 'The security token included in the request is invalid.', status: 403 }),
  'invalid-token': () => ({ name: 'InvalidClientTokenId', message: 'The security token included in the request is invalid.', status: 403 }),
  'expired-token': () => ({ name: 'ExpiredToken', message: 'The security token included in the request is expired', status: 400 }),
};
