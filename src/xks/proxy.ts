import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { checkRequest, parseAuthorization, SigV4Error, verifySignature } from '../sigv4.js';
import { HEALTH_KEY_LABEL, type KeyManager, KeyManagerError } from './keys.js';
import {
  AES_GCM,
  cdiv,
  KEY_ID_PATTERN,
  keyManagerAad,
  MAX_AAD,
  MAX_CIPHERTEXT_METADATA,
  MAX_ERROR_MESSAGE,
  MAX_PLAINTEXT,
  SHA_256,
  strictBase64,
  XKS_ERRORS,
  XKS_SERVICE,
  type XksErrorName,
} from './wire.js';

/**
 * `kmsvol xks-proxy`: an External Key Store proxy (XKS Proxy API v1) in
 * front of a key manager (keys.ts: a PKCS#11 token). Each request is
 * answered in this order, each step with the specification's error:
 * 1. a GET (or any method but POST) at one of the four API URIs: 405;
 * 2. SigV4 verified from the request as received (src/sigv4.ts), for
 *    the service kms-xks-proxy, the configured region and access key, within
 *    five minutes: else AuthenticationFailedException (401);
 * 3. the URI under the configured uriPath: else InvalidUriPathException (404);
 * 4. the JSON body and requestMetadata: else ValidationException (400);
 * 5. the operation.
 * Plaintexts are never logged; each request's metadata, result and time are
 * (one JSON line on stderr, as the specification's Logging section asks).
 */
export interface XksProxyOptions {
  uriPath: string;
  /** The proxy credentials: each access key ID names its secret; two at once let a credential be rotated (Authentication, SigV4 credentials rotation). */
  credentials: { accessKeyId: string; secretAccessKey: string }[];
  region: string;
  keys: KeyManager;
  /** Serve HTTPS (TLS 1.2 or later) with this PEM certificate chain and key; plain HTTP without. */
  tls?: { cert: Buffer; key: Buffer };
  /** Where a line per request goes (default: nowhere). */
  log?: (line: Record<string, unknown>) => void;
  now?: () => number;
}

/** No request of the specification is larger: 4300 bytes of plaintext and 8192 of AAD in base64, plus metadata with ARNs of 2048. */
export const MAX_BODY = 64 * 1024;
/** The ciphertextMetadata this proxy writes: its format, bound into the AAD the key manager sees. */
export const CIPHERTEXT_METADATA = Buffer.from('kmsvol-xks-1');
const VERSION = 'kmsvol xks-proxy 1';

class Refusal extends Error {
  constructor(
    readonly errorName: XksErrorName,
    message: string,
  ) {
    super(message);
  }
}

type Json = Record<string, unknown>;
type Op = 'health' | 'metadata' | 'encrypt' | 'decrypt';

export function createXksProxy(opts: XksProxyOptions): http.Server | https.Server {
  const now = opts.now ?? Date.now;
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const started = now();
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => {
      const logged: Json = { method: req.method, path: req.url };
      answer(req, size > MAX_BODY ? undefined : Buffer.concat(chunks), logged)
        .then(([status, body]) => {
          const text = JSON.stringify(body);
          res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
          res.end(text);
          opts.log?.({ ...logged, status, ...(status === 200 ? {} : { errorName: body.errorName }), ms: now() - started });
        })
        .catch(() => {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ errorName: 'InternalException' }));
        });
    });
  };
  const server = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2' }, handler) : http.createServer(handler);
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  return server;

  async function answer(req: http.IncomingMessage, body: Buffer | undefined, logged: Json): Promise<[number, Json]> {
    const route = routeOf(opts.uriPath, req.url ?? '');
    if (req.method !== 'POST' && route) return [405, { errorMessage: `${req.method} is not allowed here; the XKS API takes POST.` }];
    try {
      if (body === undefined) throw new Refusal('ValidationException', `The request body is larger than ${MAX_BODY} bytes.`);
      await authenticate(req, body);
      if (!route) throw new Refusal('InvalidUriPathException', `No XKS API is at ${clip(req.url ?? '', 200)}; the proxy serves ${opts.uriPath}.`);
      const json = parseBody(body, route.op);
      const md = json.requestMetadata as Json;
      Object.assign(logged, { kmsRequestId: md.kmsRequestId, kmsOperation: md.kmsOperation, awsPrincipalArn: md.awsPrincipalArn, keyId: route.keyId });
      return [200, perform(route.op, route.keyId, json)];
    } catch (e) {
      const r = e instanceof Refusal ? e : refusalOf(e);
      return [XKS_ERRORS[r.errorName], { errorName: r.errorName, errorMessage: clip(r.message, MAX_ERROR_MESSAGE) }];
    }
  }

  async function authenticate(req: http.IncomingMessage, body: Buffer): Promise<void> {
    const received = { method: req.method ?? 'POST', url: req.url ?? '/', rawHeaders: req.rawHeaders, body };
    try {
      const auth = parseAuthorization(req.rawHeaders);
      const checked = checkRequest(received, auth, { service: XKS_SERVICE, regionAllowed: (r) => r === opts.region, now: now() });
      const held = opts.credentials.find((c) => c.accessKeyId === auth.credential.accessKeyId);
      if (!held) throw new SigV4Error('InvalidSignatureException', 'The access key ID is not one this proxy holds.');
      await verifySignature(received, auth, held.secretAccessKey, checked);
    } catch (e) {
      if (e instanceof SigV4Error) throw new Refusal('AuthenticationFailedException', e.message);
      throw e;
    }
  }

  function perform(op: Op, keyId: string | undefined, json: Json): Json {
    const keys = opts.keys;
    if (op === 'health') return health();
    const label = keyId!;
    // The proxy's own health-check key is not an external key: no KMS key may be bound to it.
    if (label === HEALTH_KEY_LABEL || !keys.has(label)) throw new Refusal('KeyNotFoundException', `No external key ${label} in this key manager.`);
    if (op === 'metadata') return { keySpec: 'AES_256', keyUsage: ['ENCRYPT', 'DECRYPT'], keyStatus: 'ENABLED' };
    const aad = optionalBase64(json, 'additionalAuthenticatedData');
    if (aad && aad.length > MAX_AAD)
      throw new Refusal('UnsupportedOperationException', `additionalAuthenticatedData of ${aad.length} bytes; this proxy takes up to ${MAX_AAD}.`);
    if (op === 'encrypt') {
      const plaintext = requiredBase64(json, 'plaintext');
      if (plaintext.length > MAX_PLAINTEXT)
        throw new Refusal('UnsupportedOperationException', `plaintext of ${plaintext.length} bytes; this proxy takes up to ${MAX_PLAINTEXT}.`);
      const cdivAlgorithm = json.ciphertextDataIntegrityValueAlgorithm;
      if (cdivAlgorithm !== undefined && cdivAlgorithm !== SHA_256)
        throw new Refusal('ValidationException', `ciphertextDataIntegrityValueAlgorithm must be ${SHA_256}; got ${clip(String(cdivAlgorithm), 40)}.`);
      const sealed = keys.encrypt(label, plaintext, keyManagerAad(aad, CIPHERTEXT_METADATA));
      const out = { ciphertextMetadata: CIPHERTEXT_METADATA, initializationVector: sealed.iv, ciphertext: sealed.ciphertext, authenticationTag: sealed.tag };
      const answer: Json = {
        ciphertext: out.ciphertext.toString('base64'),
        ciphertextMetadata: out.ciphertextMetadata.toString('base64'),
        initializationVector: out.initializationVector.toString('base64'),
        authenticationTag: out.authenticationTag.toString('base64'),
      };
      if (cdivAlgorithm !== undefined) {
        // Appendix C: the CDIV first, then a decrypt of exactly what is returned.
        answer.ciphertextDataIntegrityValue = cdiv(aad, out).toString('base64');
        const back = keys.decrypt(
          label,
          { ciphertext: out.ciphertext, iv: out.initializationVector, tag: out.authenticationTag },
          keyManagerAad(aad, CIPHERTEXT_METADATA),
        );
        if (!crypto.timingSafeEqual(back, plaintext)) throw new Refusal('InternalException', 'The key manager did not decrypt its own ciphertext back.');
      }
      return answer;
    }
    const ciphertext = requiredBase64(json, 'ciphertext');
    if (ciphertext.length > MAX_PLAINTEXT)
      throw new Refusal('UnsupportedOperationException', `ciphertext of ${ciphertext.length} bytes; this proxy takes up to ${MAX_PLAINTEXT}.`);
    const iv = requiredBase64(json, 'initializationVector');
    const tag = requiredBase64(json, 'authenticationTag');
    const metadata = optionalBase64(json, 'ciphertextMetadata');
    if (iv.length !== 12 && iv.length !== 16) throw new Refusal('InvalidCiphertextException', `initializationVector must be 12 or 16 bytes; got ${iv.length}.`);
    if (tag.length !== 16) throw new Refusal('InvalidCiphertextException', `authenticationTag must be 16 bytes; got ${tag.length}.`);
    if (metadata && metadata.length > MAX_CIPHERTEXT_METADATA)
      throw new Refusal('InvalidCiphertextException', `ciphertextMetadata must be at most ${MAX_CIPHERTEXT_METADATA} bytes; got ${metadata.length}.`);
    const plaintext = keys.decrypt(label, { ciphertext, iv, tag }, keyManagerAad(aad, metadata));
    return { plaintext: plaintext.toString('base64') };
  }

  /** A deep check (the specification's SHOULD): a round trip with the proxy's own test key, never a KMS key's. */
  function health(): Json {
    let status = 'ACTIVE';
    try {
      const probe = crypto.randomBytes(32);
      const aad = Buffer.from('kmsvol-xks-proxy-health');
      const sealed = opts.keys.encrypt(HEALTH_KEY_LABEL, probe, aad);
      if (!opts.keys.decrypt(HEALTH_KEY_LABEL, sealed, aad).equals(probe)) status = 'UNAVAILABLE';
    } catch {
      status = 'UNAVAILABLE';
    }
    return {
      xksProxyFleetSize: 1,
      xksProxyVendor: 'kmsvol',
      xksProxyModel: VERSION,
      ekmVendor: opts.keys.vendor,
      ekmFleetDetails: [{ id: opts.keys.id, model: opts.keys.model, healthStatus: status }],
    };
  }
}

/** The operation a URI names under the proxy's uriPath, or undefined. */
export function routeOf(uriPath: string, url: string): { op: Op; keyId?: string } | undefined {
  if (url === `${uriPath}/health`) return { op: 'health' };
  const prefix = `${uriPath}/keys/`;
  if (!url.startsWith(prefix)) return undefined;
  const rest = url.slice(prefix.length).split('/');
  if (rest.length !== 2 || !KEY_ID_PATTERN.test(rest[0]!)) return undefined;
  const op = rest[1];
  return op === 'metadata' || op === 'encrypt' || op === 'decrypt' ? { op, keyId: rest[0]! } : undefined;
}

function parseBody(body: Buffer, op: Op): Json {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw new Refusal('ValidationException', 'The request body is not JSON.');
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new Refusal('ValidationException', 'The request body must be a JSON object.');
  const j = json as Json;
  const md = j.requestMetadata;
  if (!md || typeof md !== 'object' || Array.isArray(md)) throw new Refusal('ValidationException', 'requestMetadata is required.');
  const required = [
    'kmsRequestId',
    'kmsOperation',
    ...(op === 'health' ? [] : ['awsPrincipalArn']),
    ...(op === 'encrypt' || op === 'decrypt' ? ['kmsKeyArn'] : []),
  ];
  for (const f of required) {
    const v = (md as Json)[f];
    if (typeof v !== 'string' || v.length === 0 || v.length > 2048)
      throw new Refusal('ValidationException', `requestMetadata.${f} is required (a string of 1 to 2048 characters).`);
  }
  if ((op === 'encrypt' || op === 'decrypt') && j.encryptionAlgorithm !== AES_GCM)
    throw new Refusal('ValidationException', `encryptionAlgorithm must be ${AES_GCM}.`);
  return j;
}

function optionalBase64(json: Json, field: string): Buffer | undefined {
  if (json[field] === undefined) return undefined;
  const b = strictBase64(json[field]);
  if (!b) throw new Refusal('ValidationException', `${field} must be a base64 string.`);
  return b;
}

function requiredBase64(json: Json, field: string): Buffer {
  const b = optionalBase64(json, field);
  if (!b) throw new Refusal('ValidationException', `${field} is required.`);
  return b;
}

function refusalOf(e: unknown): Refusal {
  if (e instanceof KeyManagerError) {
    if (e.code === 'DECRYPT_FAILED')
      return new Refusal('InvalidCiphertextException', 'The ciphertext, initialization vector, additional authenticated data or tag does not verify.');
    if (e.code === 'KEY_NOT_FOUND') return new Refusal('KeyNotFoundException', e.message);
    return new Refusal('InternalException', `The key manager failed: ${e.message}`);
  }
  return new Refusal('InternalException', 'The proxy failed unexpectedly.');
}

/** Printable ASCII only, shorter than the limit (Error codes: errorMessage). */
function clip(s: string, max: number): string {
  const ascii = s.replace(/[^\x20-\x7e]/g, '?');
  return ascii.length > max ? `${ascii.slice(0, max - 3)}...` : ascii;
}
