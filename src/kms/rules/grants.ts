import crypto from 'node:crypto';
import { KmsError } from '../errors.js';
import { strList } from '../validate.js';

/**
 * Grant tokens: what CreateGrant hands out and any request may carry in
 * GrantTokens (or RetireGrant in GrantToken). A token names its grant's id
 * and carries random bytes; grants take effect at once here, so a token is
 * checked for form and otherwise only accepted.
 */
type Req = Record<string, unknown>;
const TOKEN_PREFIX = 'kmsvolgt1.';

export function grantToken(grantId: string): string {
  return TOKEN_PREFIX + Buffer.concat([Buffer.from(grantId, 'hex'), crypto.randomBytes(24)]).toString('base64url');
}

/** The grant id a token names; InvalidGrantTokenException when it is not a grant token. */
export function grantIdOfToken(token: string): string {
  const raw = token.startsWith(TOKEN_PREFIX) ? Buffer.from(token.slice(TOKEN_PREFIX.length), 'base64url') : Buffer.alloc(0);
  if (raw.length !== 56)
    throw new KmsError('InvalidGrantTokenException', 'The grant token is not valid: pass the GrantToken that CreateGrant returned, unchanged.');
  return raw.subarray(0, 32).toString('hex');
}

/** GrantTokens of any request: at most 10, each a grant token. */
export function checkGrantTokens(req: Req): void {
  for (const t of strList(req, 'GrantTokens', { max: 10 }) ?? []) grantIdOfToken(t);
}
