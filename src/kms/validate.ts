import type { PageKey } from '../paging.js';
import { decodePosition, encodePosition, pageAfter } from '../paging.js';
import type { EncryptionContext } from './blob.js';
import { LONE_SURROGATE } from './blob.js';
import type { KmsError } from './errors.js';
import { fieldError, KmsErrors } from './errors.js';

/**
 * Request validation with AWS's constraint wording. The KMS trusts nothing that
 * arrives over the wire or the CLI: every field is checked here before use.
 * Values of secret fields (Plaintext, CiphertextBlob) are never echoed.
 */
type Req = Record<string, unknown>;

export function str(req: Req, field: string, opts: { required?: boolean; min?: number; max?: number } = {}): string | undefined {
  const v = req[field];
  if (v === undefined || v === null) {
    if (opts.required) throw fieldError(field, null, 'Member must not be null');
    return undefined;
  }
  if (typeof v !== 'string') throw KmsErrors.validation(`${field} must be a string.`);
  const min = opts.min ?? (opts.required ? 1 : 0);
  if (v.length < min) throw fieldError(field, v, `Member must have length greater than or equal to ${min}`);
  if (opts.max !== undefined && v.length > opts.max) throw fieldError(field, v.slice(0, 64), `Member must have length less than or equal to ${opts.max}`);
  return v;
}

export function reqStr(req: Req, field: string, max = 2048): string {
  return str(req, field, { required: true, max })!;
}

export function int(req: Req, field: string, min: number, max: number): number | undefined {
  const v = req[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw KmsErrors.validation(`${field} must be an integer.`);
  if (v < min) throw fieldError(field, v, `Member must have value greater than or equal to ${min}`);
  if (v > max) throw fieldError(field, v, `Member must have value less than or equal to ${max}`);
  return v;
}

export function bool(req: Req, field: string): boolean | undefined {
  const v = req[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw KmsErrors.validation(`${field} must be a boolean.`);
  return v;
}

export function oneOf<T extends string>(req: Req, field: string, values: readonly T[]): T | undefined {
  const v = str(req, field);
  if (v === undefined) return undefined;
  if (!values.includes(v as T)) throw fieldError(field, v, `Member must satisfy enum value set: [${values.join(', ')}]`);
  return v as T;
}

/** A secret or binary field: length-checked, never echoed in the error. */
export function blob(req: Req, field: string, min: number, max: number): Buffer {
  const v = req[field];
  if (v === undefined || v === null) throw fieldError(field, null, 'Member must not be null');
  if (!(v instanceof Uint8Array)) throw KmsErrors.validation(`${field} must be binary data.`);
  if (v.byteLength < min)
    throw KmsErrors.validation(
      `1 validation error detected: Value at '${lower(field)}' failed to satisfy constraint: Member must have length greater than or equal to ${min}`,
    );
  if (v.byteLength > max)
    throw KmsErrors.validation(
      `1 validation error detected: Value at '${lower(field)}' failed to satisfy constraint: Member must have length less than or equal to ${max}`,
    );
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

export function context(req: Req, field: string): EncryptionContext | undefined {
  const v = req[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw KmsErrors.validation(`${field} must be a map of strings to strings.`);
  let size = 0;
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') throw KmsErrors.validation(`${field} value for key "${k}" must be a string.`);
    if (k.length === 0) throw KmsErrors.validation(`${field} keys must not be empty.`);
    size += Buffer.byteLength(k) + Buffer.byteLength(val);
  }
  if (size > 8192) throw KmsErrors.validation(`${field} is ${size} bytes; the limit is 8192.`);
  return v as EncryptionContext;
}

/** Deeper than any KMS request nests (the endpoint refuses past 16); bounds the walk over a library caller's object. */
const MAX_TEXT_DEPTH = 32;

/**
 * Precondition: every string of a request is well-formed Unicode text. A lone
 * UTF-16 surrogate ("\ud800" in JSON, or what the AWS CLI sends for a byte
 * that is not UTF-8 in an argument) is no character: UTF-8 cannot carry it,
 * so two different ones would become the same bytes in a ciphertext's
 * encryption context, a stored name or the audit log. Refused, in AWS's
 * validation wording, before any operation reads the request; the value is
 * not echoed. Returns the request.
 */
export function wellFormedText(req: Req): Req {
  const stack: [unknown, string, number][] = Object.entries(req).map(([k, v]) => [v, lower(k), 1]);
  // Member names are checked too: a request's keys reach maps (EncryptionContext) unchanged.
  for (const k of Object.keys(req)) if (LONE_SURROGATE.test(k)) throw notText('request', k);
  while (stack.length) {
    const [v, at, depth] = stack.pop()!;
    if (depth > MAX_TEXT_DEPTH) throw KmsErrors.validation(`The request nests deeper than ${MAX_TEXT_DEPTH} levels at '${at}'; no KMS request does.`);
    if (typeof v === 'string') {
      if (LONE_SURROGATE.test(v)) throw notText(at, v);
    } else if (Array.isArray(v)) {
      for (const [i, x] of v.entries()) stack.push([x, `${at}.${i + 1}.member`, depth + 1]);
    } else if (v && typeof v === 'object' && !(v instanceof Uint8Array) && !(v instanceof Date)) {
      for (const [k, x] of Object.entries(v)) {
        if (LONE_SURROGATE.test(k)) throw notText(at, k);
        stack.push([x, at, depth + 1]);
      }
    }
  }
  return req;
}

function notText(at: string, s: string): KmsError {
  const i = LONE_SURROGATE.exec(s)!.index;
  return KmsErrors.validation(
    `1 validation error detected: Value at '${at}' failed to satisfy constraint: Member must be valid Unicode text; it holds an unpaired UTF-16 surrogate (\\u${s.charCodeAt(i).toString(16)} at UTF-16 offset ${i}), which is no character. Send text as UTF-8 (a character outside the BMP as its surrogate pair).`,
  );
}

export function strList(req: Req, field: string, opts: { required?: boolean; max?: number } = {}): string[] | undefined {
  const v = req[field];
  if (v === undefined || v === null) {
    if (opts.required) throw fieldError(field, null, 'Member must not be null');
    return undefined;
  }
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw KmsErrors.validation(`${field} must be a list of strings.`);
  if (opts.max !== undefined && v.length > opts.max) throw fieldError(field, null, `Member must have length less than or equal to ${opts.max}`);
  return v as string[];
}

/**
 * Limit of each paged KMS operation: the range its documentation in
 * botocore's model states ("it must be between 1 and 100, inclusive. If you
 * do not include a value, it defaults to 50"), else the model's LimitType
 * (1 to 1000). test/unit/kms/limits holds this table against the model.
 */
export const LIMITS = {
  ListKeys: { max: 1000, default: 100 },
  ListAliases: { max: 100, default: 50 },
  ListGrants: { max: 100, default: 50 },
  ListRetirableGrants: { max: 100, default: 50 },
  ListKeyPolicies: { max: 1000, default: 100 },
  ListResourceTags: { max: 50, default: 50 },
  ListKeyRotations: { max: 1000, default: 100 },
  DescribeCustomKeyStores: { max: 1000, default: 100 },
} as const satisfies Record<string, { max: number; default: number }>;

/** Precondition: Limit, when given, is 1 to the operation's maximum (ValidationException in AWS's words otherwise); checked before the handler runs. */
export function checkLimit(op: string, req: Req): void {
  const limits = (LIMITS as Record<string, { max: number }>)[op];
  if (limits) int(req, 'Limit', 1, limits.max);
}

/**
 * Limit/Marker pagination as AWS does it: Truncated, NextMarker; `limits` is
 * the operation's entry in LIMITS, `list` names the list and `keyOf` gives its
 * order (the last value an id). The marker is a stable position
 * (src/paging.ts): the next page starts after the last item given.
 */
export function paginate<T>(
  req: Req,
  items: T[],
  limits: { max: number; default: number },
  list: string,
  keyOf: (t: T) => PageKey,
): { page: T[]; Truncated: boolean; NextMarker?: string } {
  const limit = int(req, 'Limit', 1, limits.max) ?? limits.default;
  const marker = str(req, 'Marker', { max: 1024 });
  const after = marker === undefined ? undefined : decodePosition(marker, list);
  if (marker !== undefined && !after)
    throw KmsErrors.invalidMarker(
      'The marker that specifies where pagination should next begin is not valid. Pass the NextMarker of the previous response unchanged.',
    );
  const { page, last } = pageAfter(items, keyOf, after, limit);
  return last ? { page, Truncated: true, NextMarker: encodePosition(list, last) } : { page, Truncated: false };
}

function lower(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}
