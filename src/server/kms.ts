import { VIA_SERVICE_HEADER } from '../kms/client/remote.js';
import { KmsError } from '../kms/errors.js';
import { MEMBERS } from '../kms/members.js';
import type { KmsOperation } from '../kms/operations.js';
import { isKmsOperation, KMS_REGISTRY, membersOf } from '../kms/operations.js';
import { epochSeconds, toWire } from '../wire.js';
import type { Service, ServiceCall, ServiceReply, WireError } from './service.js';

/**
 * The AWS KMS JSON 1.1 protocol: POST / with `X-Amz-Target: TrentService.<Op>`,
 * `application/x-amz-json-1.1` bodies, base64 blobs, epoch-second dates,
 * errors as {"__type","message"}.
 */
const CONTENT_TYPE = 'application/x-amz-json-1.1';
/** Each operation's request members whose wire form is base64 (blob-typed in MEMBERS), from the operation registry. */
export const BLOB_FIELDS: Readonly<Record<string, ReadonlySet<string>>> = Object.fromEntries(
  (Object.keys(KMS_REGISTRY) as KmsOperation[]).map((op) => [op, new Set(membersOf(op).filter((m) => MEMBERS[m]?.type === 'blob'))]),
);

/** Our responses on the wire: Uint8Array as base64, Date as epoch seconds. */
export const toJsonWire = (v: unknown): unknown => toWire(v, epochSeconds);

function fromWire(op: KmsOperation, body: Record<string, unknown>): Record<string, unknown> {
  const blobs = BLOB_FIELDS[op]!;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    if (blobs.has(k) && typeof v === 'string') {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) throw new KmsError('SerializationException', `${k} is not valid base64.`);
      out[k] = Buffer.from(v, 'base64');
    } else out[k] = v;
  }
  return out;
}

/** How deep a request may nest: KMS requests are at most a few levels deep (Constraints.EncryptionContextSubset.key). */
const MAX_DEPTH = 16;

function depthOf(v: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[v, 1]];
  while (stack.length) {
    const [x, d] = stack.pop()!;
    if (!x || typeof x !== 'object') continue;
    if (d > max) max = d;
    if (max > MAX_DEPTH) return max;
    for (const y of Object.values(x)) stack.push([y, d + 1]);
  }
  return max;
}

/**
 * The body as text. Precondition: it is UTF-8, as JSON on the wire must be.
 * Decoding with replacement would turn every invalid byte into U+FFFD, so
 * contexts that differ on the wire would be one context here.
 */
function utf8(body: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(body);
  } catch {
    throw new KmsError('SerializationException', 'The request body is not valid UTF-8. Send the JSON as UTF-8 text (binary members as base64).');
  }
}

function json(status: number, body: unknown): ServiceReply {
  return { status, headers: { 'Content-Type': CONTENT_TYPE }, body: JSON.stringify(body) };
}

export const kmsService: Service = {
  name: 'kms',
  async handle(call: ServiceCall): Promise<ServiceReply> {
    const target = String(call.headers['x-amz-target'] ?? '');
    const op = target.startsWith('TrentService.') ? target.slice('TrentService.'.length) : '';
    if (!isKmsOperation(op)) throw new KmsError('UnknownOperationException', `${target || 'A missing X-Amz-Target'} is not an operation of this KMS.`);
    let input: unknown;
    try {
      input = call.body.length ? JSON.parse(utf8(call.body)) : {};
    } catch (e) {
      if (e instanceof KmsError) throw e;
      throw new KmsError('SerializationException', 'The request body is not valid JSON.');
    }
    if (!input || typeof input !== 'object' || Array.isArray(input)) throw new KmsError('SerializationException', 'The request body must be a JSON object.');
    if (depthOf(input) > MAX_DEPTH)
      throw new KmsError('SerializationException', `The request body nests deeper than ${MAX_DEPTH} levels; no KMS request does.`);
    // kms:ViaService comes only from a header the caller signed.
    const via = call.signedHeaders.includes(VIA_SERVICE_HEADER) ? String(call.headers[VIA_SERVICE_HEADER] ?? '') : '';
    const out = await call.kms.invokeAsyncAs(
      { principal: call.caller.arn, requestId: call.requestId, ...(via ? { viaService: via } : {}) },
      op,
      fromWire(op, input as Record<string, unknown>),
    );
    return json(200, toJsonWire(out));
  },
  error(e: WireError): ServiceReply {
    return json(e.status, { __type: e.name, message: e.message });
  },
};
