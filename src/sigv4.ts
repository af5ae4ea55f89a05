import crypto from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import type { HeaderBag, HttpRequest, QueryParameterBag } from '@smithy/types';

/**
 * SigV4 verification, to the letter of AWS's specification. The canonical
 * request is built from the request exactly as received (raw path, raw query,
 * every raw header line the client signed); the payload hash is computed from
 * the body, never taken from a header; the credential scope must name the
 * called service, a region this endpoint serves and the day of X-Amz-Date.
 * The signature math (canonical request layout, string to sign, signing-key
 * derivation, HMAC) is @smithy/signature-v4's; nothing is re-signed or added
 * on the client's behalf, so a request verifies only if the client signed
 * exactly what arrived.
 */
export const MAX_SKEW_MS = 5 * 60 * 1000;
export const ALGORITHM = 'AWS4-HMAC-SHA256';

/**
 * What was wrong with a request's authentication, whatever the service: each
 * service's codec names it in its own words (KMS: the JSON exceptions this
 * file's codes are; EC2: AuthFailure, SignatureDoesNotMatch, RequestExpired…;
 * STS: InvalidClientTokenId, SignatureDoesNotMatch, ExpiredToken…).
 */
export type AuthFailure =
  /** No Authorization header. */
  | 'missing'
  /** An Authorization header or X-Amz-Date that is not SigV4's form. */
  | 'incomplete'
  /** The signature, the scope or the signed headers are not what the request needs. */
  | 'signature'
  /** X-Amz-Date is outside the service's allowed clock skew (past or future). */
  | 'skew'
  /** The access key is not known here. */
  | 'unknown-key'
  /** A session token that is not the session's (or one where none belongs). */
  | 'invalid-token'
  /** The session's credentials have expired. */
  | 'expired-token';

const FAILURE_OF: Record<string, AuthFailure> = {
  MissingAuthenticationTokenException: 'missing',
  IncompleteSignatureException: 'incomplete',
  InvalidSignatureException: 'signature',
  UnrecognizedClientException: 'unknown-key',
  ExpiredTokenException: 'expired-token',
};

/** A refusal in AWS's words (KMS's names as `code`); the HTTP layer sends it in the called service's shape and names. */
export class SigV4Error extends Error {
  /** What kind of failure, for the services that name failures differently (undefined: not an authentication failure). */
  readonly failure: AuthFailure | undefined;
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
    failure?: AuthFailure,
  ) {
    super(message);
    this.name = code;
    this.failure = failure ?? FAILURE_OF[code];
  }
}

export interface ReceivedRequest {
  method: string;
  /** The request target as received: path and query, still percent-encoded. */
  url: string;
  /** Header lines as received, name and value alternating (node's `rawHeaders`). */
  rawHeaders: string[];
  body: Buffer;
}

export interface Credential {
  accessKeyId: string;
  /** YYYYMMDD */
  date: string;
  region: string;
  service: string;
}

export interface ParsedAuth {
  credential: Credential;
  signedHeaders: string[];
  signature: string;
  /** Set when SigV4 came in the query string (a presigned URL) rather than the Authorization header. */
  query?: PresignedParams;
}

/** A presigned URL's own members (X-Amz-Date, X-Amz-Expires, X-Amz-Security-Token), as received. */
export interface PresignedParams {
  amzDate: string;
  expiresSeconds: number;
  securityToken?: string;
}

/** The longest X-Amz-Expires AWS accepts: seven days, the life of a signing key. */
export const MAX_PRESIGNED_SECONDS = 604_800;

const incomplete = (m: string) => new SigV4Error('IncompleteSignatureException', m);

/** `<AccessKeyId>/<YYYYMMDD>/<region>/<service>/aws4_request`, from the header's Credential= or the query's X-Amz-Credential. */
function parseCredential(value: string): Credential {
  const cred = value.split('/');
  if (cred.length !== 5 || cred[4] !== 'aws4_request' || !/^\d{8}$/.test(cred[1]!)) {
    throw incomplete(`Credential must have the form <AccessKeyId>/<YYYYMMDD>/<region>/<service>/aws4_request; got '${value}'.`);
  }
  return { accessKeyId: cred[0]!, date: cred[1]!, region: cred[2]!, service: cred[3]! };
}

function parseSignature(value: string): string {
  if (!/^[0-9a-f]{64}$/.test(value)) throw incomplete('Signature must be 64 lower-case hex digits.');
  return value;
}

/** The SigV4 members a presigned URL carries in its query string. */
const QUERY_AUTH = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature'] as const;
/** Every query parameter that is a presigned URL's authentication, not the operation's: the services never see them. */
export const PRESIGNED_PARAMS: readonly string[] = [...QUERY_AUTH, 'X-Amz-Security-Token'];

/**
 * The request's SigV4 authentication, from the Authorization header or, for a
 * presigned URL, from the query string (X-Amz-Algorithm, X-Amz-Credential,
 * X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders, X-Amz-Signature and
 * X-Amz-Security-Token); a request that carries both is refused.
 */
export function parseAuth(url: string, rawHeaders: string[]): ParsedAuth {
  const q = url.indexOf('?');
  const bag = queryBag(q < 0 ? '' : url.slice(q + 1));
  if (!QUERY_AUTH.some((name) => name in bag)) return parseAuthorization(rawHeaders);
  if (headerValues(rawHeaders, 'authorization').length)
    throw incomplete('Only one authentication mechanism is allowed: sign in the Authorization header or in the query string (X-Amz-Signature), not both.');
  const one = (name: string): string | undefined => {
    const v = bag[name];
    if (Array.isArray(v)) throw incomplete(`The query string names ${name} more than once.`);
    return v ?? undefined;
  };
  const missing = QUERY_AUTH.filter((name) => !one(name));
  if (missing.length) throw incomplete(`AWS query-string parameters missing or empty: '${missing.join("', '")}'. A presigned URL needs them all.`);
  if (one('X-Amz-Algorithm') !== ALGORITHM) throw incomplete(`X-Amz-Algorithm must be ${ALGORITHM}; got '${one('X-Amz-Algorithm')}'.`);
  const expires = one('X-Amz-Expires')!;
  if (!/^\d{1,7}$/.test(expires) || +expires < 1 || +expires > MAX_PRESIGNED_SECONDS)
    throw incomplete(`X-Amz-Expires must be a whole number of seconds from 1 to ${MAX_PRESIGNED_SECONDS} (seven days); got '${expires}'.`);
  const token = one('X-Amz-Security-Token');
  return {
    credential: parseCredential(one('X-Amz-Credential')!),
    signedHeaders: one('X-Amz-SignedHeaders')!.split(';'),
    signature: parseSignature(one('X-Amz-Signature')!),
    query: { amzDate: one('X-Amz-Date')!.trim(), expiresSeconds: +expires, ...(token !== undefined ? { securityToken: token } : {}) },
  };
}

/** The session tokens a request carries: X-Amz-Security-Token headers, or a presigned URL's X-Amz-Security-Token. */
export function sessionTokens(req: ReceivedRequest, auth: ParsedAuth): string[] {
  const headers = headerValues(req.rawHeaders, 'x-amz-security-token');
  return auth.query?.securityToken !== undefined ? [...headers, auth.query.securityToken] : headers;
}

/** The parts of the Authorization header, or the AWS error for a header that is missing or malformed. */
export function parseAuthorization(rawHeaders: string[]): ParsedAuth {
  const values = headerValues(rawHeaders, 'authorization');
  if (values.length === 0)
    throw new SigV4Error(
      'MissingAuthenticationTokenException',
      'Missing Authentication Token: sign the request with SigV4 (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from `kmsvol iam create-access-key`).',
    );
  if (values.length > 1) throw new SigV4Error('IncompleteSignatureException', 'The request carries more than one Authorization header.');
  const auth = values[0]!.trim();
  if (!auth.startsWith(`${ALGORITHM} `))
    throw new SigV4Error('IncompleteSignatureException', `Authorization header requires the ${ALGORITHM} algorithm; got '${auth.split(' ')[0]}'.`);
  const fields = new Map<string, string>();
  for (const part of auth.slice(ALGORITHM.length).split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (fields.has(name)) throw new SigV4Error('IncompleteSignatureException', `The Authorization header names ${name} more than once.`);
    fields.set(name, part.slice(eq + 1).trim());
  }
  const missing = ['Credential', 'SignedHeaders', 'Signature'].filter((f) => !fields.get(f));
  if (missing.length)
    throw new SigV4Error(
      'IncompleteSignatureException',
      `Authorization header requires '${missing.join("', '")}' parameter(s). Authorization=${auth.split(',')[0]}`,
    );
  const credential = parseCredential(fields.get('Credential')!);
  const signature = parseSignature(fields.get('Signature')!);
  const signedHeaders = fields.get('SignedHeaders')!.split(';');
  return { credential, signedHeaders, signature };
}

/** Every value of a header (case-insensitive name), in the order received. */
export function headerValues(rawHeaders: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === name) out.push(rawHeaders[i + 1]!);
  return out;
}

/** AWS's canonical header value: each value trimmed with inner runs of spaces folded to one; repeated headers joined by commas. */
function canonicalHeaderValue(values: string[]): string {
  return values.map((v) => v.trim().replace(/\s+/g, ' ')).join(',');
}

/** YYYYMMDD'T'HHMMSS'Z' to epoch ms, or undefined. */
function parseAmzDate(s: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return undefined;
  const t = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  return Number.isNaN(t) ? undefined : t;
}

const amz = (ms: number) => new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, '');

/** Decode a query string into the bag @smithy's canonical query takes (values decoded; it re-encodes them strictly). */
function queryBag(rawQuery: string): QueryParameterBag {
  const bag: Record<string, string | string[]> = {};
  if (!rawQuery) return bag;
  for (const pair of rawQuery.split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const [k, v] = eq < 0 ? [pair, ''] : [pair.slice(0, eq), pair.slice(eq + 1)];
    const key = decode(k);
    const value = decode(v);
    const prev = bag[key];
    bag[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return bag;
}

/** A query value as the services read it (URLSearchParams: '+' is a space), so what is verified is what is used. */
function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, '%20'));
  } catch {
    throw new SigV4Error('InvalidQueryParameter', `The query string has an invalid percent-encoding: '${s}'.`);
  }
}

/** The signer, used only for its canonical-request, string-to-sign and signing-key math. */
class Verifier extends SignatureV4 {
  canonicalRequest(req: HttpRequest, headers: HeaderBag, payloadHash: string): string {
    return this.createCanonicalRequest(req, headers, payloadHash);
  }
  stringToSign(longDate: string, scope: string, canonicalRequest: string): Promise<string> {
    return this.createStringToSign(longDate, scope, canonicalRequest, ALGORITHM);
  }
}

/** SHA-256 and HMAC-SHA256 on node:crypto, in the shape @smithy/signature-v4 asks for (its own is slower). */
export class Sha256 {
  private readonly h: crypto.Hash | crypto.Hmac;
  constructor(secret?: string | Uint8Array) {
    this.h = secret ? crypto.createHmac('sha256', secret) : crypto.createHash('sha256');
  }
  update(data: string | Uint8Array): void {
    this.h.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
  reset(): void {}
}

/** One verifier per secret (each caches its derived signing keys, so a busy caller costs one HMAC chain a day). */
const verifiers = new Map<string, Verifier>();
function verifierFor(accessKeyId: string, secret: string): Verifier {
  const id = `${accessKeyId}\0${secret}`;
  let v = verifiers.get(id);
  if (!v) {
    v = new Verifier({
      credentials: { accessKeyId, secretAccessKey: secret },
      region: 'unused',
      service: 'unused',
      sha256: Sha256 as never,
      uriEscapePath: true,
      applyChecksum: false,
    });
    if (verifiers.size >= 1024) verifiers.clear();
    verifiers.set(id, v);
  }
  return v;
}

export interface VerifyOptions {
  /** The service the request reached (from X-Amz-Target or the Query API's shape); the scope must name it. */
  service: string;
  /** Headers that must be signed when present (the JSON protocols' X-Amz-Target picks the operation). */
  mustSign?: string[];
  /** Whether the endpoint serves this region (a server started with --region serves only that one). */
  regionAllowed(region: string): boolean;
  now: number;
  /** How far X-Amz-Date may be from now, either way (default MAX_SKEW_MS, KMS's 5 minutes; EC2 and STS allow 15). */
  maxSkewMs?: number;
  /**
   * Accept x-amz-content-sha256: UNSIGNED-PAYLOAD (the signature then covers that literal, not the body), provided
   * the request signs these headers, which then protect the body (a checksum of it).
   */
  allowUnsignedPayload?: { mustSign: readonly string[] };
}

/**
 * Check every rule that does not need the secret: the scope, the date, the
 * signed headers, the payload hash. Throws SigV4Error in AWS's words.
 */
export function checkRequest(req: ReceivedRequest, auth: ParsedAuth, opts: VerifyOptions): { payloadHash: string; amzDate: string } {
  const { credential } = auth;
  if (credential.service !== opts.service)
    throw new SigV4Error('InvalidSignatureException', `Credential should be scoped to correct service: '${opts.service}'. `);
  if (!/^[a-z0-9-]{1,40}$/.test(credential.region) || !opts.regionAllowed(credential.region)) {
    throw new SigV4Error('InvalidSignatureException', `Credential should be scoped to a valid region, not '${credential.region}'. `);
  }
  const present = (opts.mustSign ?? []).filter((h) => headerValues(req.rawHeaders, h).length > 0);
  // A presigned URL's date is X-Amz-Date in the query (signed as part of it), not a header.
  for (const required of ['host', ...(auth.query ? [] : ['x-amz-date']), ...present]) {
    if (!auth.signedHeaders.includes(required))
      throw new SigV4Error('InvalidSignatureException', `'${required}' must be a 'SignedHeader' in the AWS Authorization.`);
  }
  const dates = auth.query ? [auth.query.amzDate] : headerValues(req.rawHeaders, 'x-amz-date');
  const amzDate = dates.length === 1 ? dates[0]!.trim() : '';
  const when = parseAmzDate(amzDate);
  if (when === undefined)
    throw new SigV4Error(
      'IncompleteSignatureException',
      auth.query ? 'X-Amz-Date must be in the form YYYYMMDDTHHMMSSZ.' : 'The request must carry one X-Amz-Date header in the form YYYYMMDDTHHMMSSZ.',
    );
  if (amzDate.slice(0, 8) !== credential.date) {
    throw new SigV4Error(
      'InvalidSignatureException',
      `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${credential.date}' != '${amzDate.slice(0, 8)}', from '${amzDate}'.`,
    );
  }
  const skew = opts.maxSkewMs ?? MAX_SKEW_MS;
  const minutes = `${Math.round(skew / 60_000)} min.`;
  // Precondition: a presigned URL is good from X-Amz-Date for X-Amz-Expires seconds, not for the clock skew.
  if (auth.query && when + auth.query.expiresSeconds * 1000 < opts.now)
    throw new SigV4Error(
      'InvalidSignatureException',
      `Signature expired: ${amzDate} + ${auth.query.expiresSeconds} s (X-Amz-Expires) is now earlier than ${amz(opts.now)}. Presign the URL again.`,
      400,
      'skew',
    );
  if (!auth.query && when < opts.now - skew)
    throw new SigV4Error(
      'InvalidSignatureException',
      `Signature expired: ${amzDate} is now earlier than ${amz(opts.now - skew)} (${amz(opts.now)} - ${minutes})`,
      400,
      'skew',
    );
  if (when > opts.now + skew)
    throw new SigV4Error(
      'InvalidSignatureException',
      `Signature not yet current: ${amzDate} is still later than ${amz(opts.now + skew)} (${amz(opts.now)} + ${minutes})`,
      400,
      'skew',
    );
  for (const h of auth.signedHeaders) {
    if (h !== h.toLowerCase() || h === '')
      throw new SigV4Error('InvalidSignatureException', `SignedHeaders must be lower-case header names separated by ';'; got '${h}'.`);
    if (headerValues(req.rawHeaders, h).length === 0)
      throw new SigV4Error(
        'InvalidSignatureException',
        `The request signature we calculated does not match the signature you provided: the signed header '${h}' is missing from the request.`,
      );
  }
  const payloadHash = crypto.createHash('sha256').update(req.body).digest('hex');
  const declared = headerValues(req.rawHeaders, 'x-amz-content-sha256');
  if (declared.length) {
    const d = declared.join(',').trim();
    // UNSIGNED-PAYLOAD: the signature covers that literal instead of the body's hash, where the service allows it.
    if (d === 'UNSIGNED-PAYLOAD' && opts.allowUnsignedPayload) {
      const unsigned = opts.allowUnsignedPayload.mustSign.filter((h) => !auth.signedHeaders.includes(h));
      if (unsigned.length)
        throw new SigV4Error(
          'InvalidSignatureException',
          `With x-amz-content-sha256 UNSIGNED-PAYLOAD the body is protected by its checksum headers: sign ${unsigned.join(', ')} too.`,
        );
      return { payloadHash: d, amzDate };
    }
    if (d === 'UNSIGNED-PAYLOAD' || d.startsWith('STREAMING-'))
      throw new SigV4Error('InvalidSignatureException', `x-amz-content-sha256 '${d}' is not supported by this service: sign the payload (its SHA-256 in hex).`);
    if (d !== payloadHash) throw new SigV4Error('InvalidSignatureException', "The provided 'x-amz-content-sha256' header does not match what was computed.");
  }
  return { payloadHash, amzDate };
}

/** The signature the client should have sent, computed over the request as received. */
export async function expectedSignature(req: ReceivedRequest, auth: ParsedAuth, secret: string, payloadHash: string, amzDate: string): Promise<string> {
  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  const query = queryBag(q < 0 ? '' : req.url.slice(q + 1));
  // The canonical query of a presigned URL is every parameter but the signature itself.
  delete query['X-Amz-Signature'];
  const headers: HeaderBag = {};
  for (const h of auth.signedHeaders) headers[h] = canonicalHeaderValue(headerValues(req.rawHeaders, h));
  const { credential } = auth;
  const v = verifierFor(credential.accessKeyId, secret);
  const canonical = v.canonicalRequest({ method: req.method.toUpperCase(), path: path || '/', query, headers } as HttpRequest, headers, payloadHash);
  const scope = `${credential.date}/${credential.region}/${credential.service}/aws4_request`;
  const sts = await v.stringToSign(amzDate, scope, canonical);
  return v.sign(sts, { signingDate: new Date(parseAmzDate(amzDate)!), signingRegion: credential.region, signingService: credential.service });
}

/** Throws InvalidSignatureException unless `auth.signature` is what `secret` gives for this request. */
export async function verifySignature(
  req: ReceivedRequest,
  auth: ParsedAuth,
  secret: string,
  checked: { payloadHash: string; amzDate: string },
): Promise<void> {
  const expected = Buffer.from(await expectedSignature(req, auth, secret, checked.payloadHash, checked.amzDate), 'hex');
  const given = Buffer.from(auth.signature, 'hex');
  if (expected.length !== given.length || !crypto.timingSafeEqual(expected, given)) {
    throw new SigV4Error(
      'InvalidSignatureException',
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
    );
  }
}

/** The access key is not one this endpoint knows. */
export const unknownAccessKey = () => new SigV4Error('UnrecognizedClientException', 'The security token included in the request is invalid.');

/** A session token that is not the session's, or a token where no session is. */
export const invalidSessionToken = () =>
  new SigV4Error('UnrecognizedClientException', 'The security token included in the request is invalid.', 400, 'invalid-token');

export const expiredSessionToken = () => new SigV4Error('ExpiredTokenException', 'The security token included in the request is expired');
