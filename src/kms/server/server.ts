import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KmsError, KmsErrors } from '../errors.js';
import { VIA_SERVICE_HEADER } from '../client/remote.js';
import { lookupAccessKey } from '../iam.js';
import { isKmsOperation } from '../kms.js';
import type { Kms, KmsOperation } from '../kms.js';
import { parseAuthorization, verify } from './sigv4.js';

/**
 * The AWS KMS JSON 1.1 protocol over HTTP: POST / with
 * `X-Amz-Target: TrentService.<Op>`, `application/x-amz-json-1.1` bodies,
 * base64 blobs, epoch-second dates, errors as {"__type","message"} — so the
 * AWS CLI and SDKs work against it with --endpoint-url. Every request must be
 * SigV4-signed by a key from `kmsvol iam create-access-key`.
 */
export const MAX_BODY = 1 << 20;
const BLOB_FIELDS = new Set(['Plaintext', 'CiphertextBlob', 'ImportToken', 'EncryptedKeyMaterial', 'Message', 'Signature', 'PublicKey', 'Mac', 'Recipient']);

function toWire(v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  if (v instanceof Date) return v.getTime() / 1000;
  if (Array.isArray(v)) return v.map(toWire);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => [k, toWire(x)]));
  return v;
}

function fromWire(body: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    if (BLOB_FIELDS.has(k) && typeof v === 'string') {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) throw new KmsError('SerializationException', `${k} is not valid base64.`);
      out[k] = Buffer.from(v, 'base64');
    } else out[k] = v;
  }
  return out;
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/x-amz-json-1.1', 'Content-Length': Buffer.byteLength(text), 'x-amzn-RequestId': crypto.randomUUID() });
  res.end(text);
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    const onData = (d: Buffer) => {
      size += d.length;
      if (size > MAX_BODY) {
        // Stop keeping the body (drain the rest unread) so the 413 answer still reaches the client.
        req.off('data', onData);
        parts.length = 0;
        req.resume();
        reject(new KmsError('RequestEntityTooLargeException', `The request body exceeds ${MAX_BODY} bytes; KMS requests are small (a Plaintext is at most 4096 bytes).`, 413));
      } else parts.push(d);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

export interface KmsServer {
  url: string;
  close(): Promise<void>;
}

/** Known access keys are looked up (and their secrets unsealed) at most every few seconds, not per request; unknown ones every time, so a new key works at once. */
const CREDENTIALS_TTL_MS = 5000;

export function serveKms(kms: Kms, opts: { host?: string; port?: number } = {}): Promise<KmsServer> {
  const known = new Map<string, { value: NonNullable<ReturnType<typeof lookupAccessKey>>; at: number }>();
  const credentials = (accessKeyId: string) => {
    const now = Date.now();
    const hit = known.get(accessKeyId);
    if (hit && now - hit.at < CREDENTIALS_TTL_MS) return hit.value;
    const value = lookupAccessKey(kms.ctx, accessKeyId);
    if (!value) return undefined;
    if (known.size >= 1024) known.clear();
    known.set(accessKeyId, { value, at: now });
    return value;
  };
  const server = http.createServer(async (req, res) => {
    let op = 'unknown';
    try {
      if (req.method !== 'POST' || (req.url ?? '/') !== '/') throw new KmsError('UnknownOperationException', 'The KMS API is POST / with an X-Amz-Target header.', 404);
      const target = String(req.headers['x-amz-target'] ?? '');
      op = target.replace(/^TrentService\./, '');
      const body = await readBody(req);
      const auth = parseAuthorization(req.headers);
      const creds = credentials(auth.accessKeyId);
      if (!creds) throw new KmsError('UnrecognizedClientException', 'The security token included in the request is invalid.');
      await verify({ method: req.method, path: '/', headers: req.headers, body }, auth, creds.secret, Date.now());
      if (!target.startsWith('TrentService.') || !isKmsOperation(op)) throw new KmsError('UnknownOperationException', `${target || 'A missing X-Amz-Target'} is not an operation of this KMS.`);
      let input: unknown;
      try {
        input = body.length ? JSON.parse(body.toString('utf8')) : {};
      } catch {
        throw new KmsError('SerializationException', 'The request body is not valid JSON.');
      }
      if (!input || typeof input !== 'object' || Array.isArray(input)) throw new KmsError('SerializationException', 'The request body must be a JSON object.');
      // kms:ViaService comes only from a header the caller signed.
      const via = auth.signedHeaders.includes(VIA_SERVICE_HEADER) ? String(req.headers[VIA_SERVICE_HEADER] ?? '') : '';
      const out = kms.invokeAs({ principal: creds.principal.arn, ...(via ? { viaService: via } : {}) }, op as KmsOperation, fromWire(input as Record<string, unknown>));
      send(res, 200, toWire(out));
    } catch (e) {
      const err = e instanceof KmsError ? e : KmsErrors.internal(`Internal error in ${op}.`);
      send(res, err.httpStatus, { __type: err.name, message: err.message });
    }
  });
  server.requestTimeout = 30_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 4599, opts.host ?? '127.0.0.1', () => {
      const a = server.address() as AddressInfo;
      resolve({
        url: `http://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`,
        close: () => new Promise((r) => server.close(() => r())),
      });
    });
  });
}
