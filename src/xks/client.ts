import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { SignatureV4 } from '@smithy/signature-v4';
import type { HttpRequest } from '@smithy/types';
import { Sha256 } from '../sigv4.js';
import { XksError, type XksFailure } from './errors.js';
import {
  AES_GCM,
  cdiv,
  EKM_HEALTH,
  IV_LENGTHS,
  isXksErrorName,
  KEY_ID_PATTERN,
  KEY_STATUS,
  MAX_CIPHERTEXT_METADATA,
  MAX_ERROR_MESSAGE,
  MAX_KEY_USAGES,
  operationPath,
  SHA_256,
  strictBase64,
  TAG_LENGTH,
  XKS_SERVICE,
  type XksHealthStatus,
  type XksRequestMetadata,
} from './wire.js';

export { XksError } from './errors.js';
export type { XksHealthStatus, XksRequestMetadata } from './wire.js';

/**
 * The KMS's side of the External Key Store Proxy API v1: one client per
 * external key store. Every request is a POST of JSON under
 * `{uriEndpoint}{uriPath}`, signed with SigV4 for the service
 * `kms-xks-proxy` (Appendix A) over exactly `host;x-amz-date`, as AWS KMS
 * signs. Every answer is checked against the specification's shape before it
 * is used; whatever goes wrong becomes an XksError whose code is the KMS
 * exception AWS KMS gives for that failure in the calling KMS operation
 * (requestMetadata.kmsOperation; see errors.ts).
 *
 * http:// is accepted for a proxy on this machine (the specification requires
 * TLS; AWS KMS accepts only https). For https, Node's trust store applies:
 * NODE_EXTRA_CA_CERTS adds a private CA.
 */
export interface XksProxyConfig {
  /** `https://host[:port]` or `http://host[:port]`, no path (CreateCustomKeyStore's XksProxyUriEndpoint). */
  uriEndpoint: string;
  /** `[/prefix]/kms/xks/v1` (XksProxyUriPath). */
  uriPath: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The KMS region, named in the credential scope. */
  region: string;
  /** Give up on an answer after this long; default 250 ms, as AWS KMS does. */
  timeoutMs?: number;
  /** PEM CA certificates to trust for https instead of Node's store (NODE_EXTRA_CA_CERTS adds to the store for a whole process). */
  ca?: string;
}

export interface XksCiphertext {
  ciphertext: Buffer;
  initializationVector: Buffer;
  authenticationTag: Buffer;
  ciphertextMetadata?: Buffer;
}

export interface XksKeyMetadata {
  keySpec: string;
  keyUsage: string[];
  keyStatus: string;
}

export const DEFAULT_TIMEOUT_MS = 250;
/** A proxy's answer is small (the largest is a 4300-byte plaintext in base64); more is a malformed response. */
const MAX_RESPONSE = 64 * 1024;

type Json = Record<string, unknown>;

export class XksClient {
  private readonly base: URL;
  private readonly uriPath: string;
  private readonly signer: SignatureV4;
  private readonly timeoutMs: number;
  private readonly agent: http.Agent;

  constructor(cfg: XksProxyConfig) {
    const base = new URL(cfg.uriEndpoint);
    if ((base.protocol !== 'https:' && base.protocol !== 'http:') || (base.pathname !== '/' && base.pathname !== '') || base.search || base.username)
      throw new TypeError(`XksProxyUriEndpoint must be https://host[:port] (or http:// on this machine) with no path; got '${cfg.uriEndpoint}'.`);
    this.base = base;
    this.uriPath = cfg.uriPath;
    this.timeoutMs = cfg.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.signer = new SignatureV4({
      credentials: { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey },
      region: cfg.region,
      service: XKS_SERVICE,
      sha256: Sha256 as never,
      uriEscapePath: true,
      applyChecksum: false,
    });
    this.agent =
      base.protocol === 'https:'
        ? new https.Agent({ keepAlive: true, maxSockets: 16, minVersion: 'TLSv1.2', ...(cfg.ca ? { ca: cfg.ca } : {}) })
        : new http.Agent({ keepAlive: true, maxSockets: 16 });
  }

  /** GetHealthStatus: resolves when the proxy answers in shape and at least one key manager is not UNAVAILABLE. */
  async health(requestMetadata: XksRequestMetadata): Promise<XksHealthStatus> {
    const op = requestMetadata.kmsOperation;
    const r = await this.call(operationPath(this.uriPath, 'health'), { requestMetadata }, op);
    const bad = (why: string) => new XksError('MalformedResponse', op, { why: `GetHealthStatus: ${why}` });
    if (!Number.isInteger(r.xksProxyFleetSize) || (r.xksProxyFleetSize as number) < 1) throw bad('xksProxyFleetSize is not an integer above zero');
    for (const f of ['xksProxyVendor', 'xksProxyModel', 'ekmVendor']) if (typeof r[f] !== 'string') throw bad(`${f} is not a string`);
    const fleet = r.ekmFleetDetails;
    if (!Array.isArray(fleet) || fleet.length < 1 || fleet.length > 10) throw bad('ekmFleetDetails must hold 1 to 10 entries');
    for (const e of fleet as Json[]) {
      if (!e || typeof e !== 'object' || typeof e.id !== 'string' || typeof e.model !== 'string' || !EKM_HEALTH.includes(e.healthStatus as never))
        throw bad('an ekmFleetDetails entry lacks id, model or a healthStatus of ACTIVE, DEGRADED or UNAVAILABLE');
    }
    if ((fleet as Json[]).every((e) => e.healthStatus === 'UNAVAILABLE')) throw new XksError('AllKeyManagersUnavailable', op);
    return r as unknown as XksHealthStatus;
  }

  /** GetKeyMetadata, in shape (keySpec, up to ten keyUsage strings, keyStatus ENABLED or DISABLED); usableForKms says whether KMS may use it. */
  async keyMetadata(keyId: string, requestMetadata: XksRequestMetadata): Promise<XksKeyMetadata> {
    const op = requestMetadata.kmsOperation;
    const r = await this.call(operationPath(this.uriPath, 'metadata', checkKeyId(keyId)), { requestMetadata }, op);
    const bad = (why: string) => new XksError('MalformedResponse', op, { why: `GetKeyMetadata: ${why}` });
    if (typeof r.keySpec !== 'string') throw bad('keySpec is not a string');
    if (!Array.isArray(r.keyUsage) || r.keyUsage.length > MAX_KEY_USAGES || !r.keyUsage.every((u) => typeof u === 'string'))
      throw bad('keyUsage is not an array of at most ten strings');
    if (!KEY_STATUS.includes(r.keyStatus as never)) throw bad('keyStatus is neither ENABLED nor DISABLED');
    return { keySpec: r.keySpec, keyUsage: [...(r.keyUsage as string[])], keyStatus: r.keyStatus as string };
  }

  /**
   * Encrypt with AES_GCM in the external key manager. The CDIV (Appendix C) is
   * always asked for and checked, so that what the KMS keeps is what the proxy
   * will decrypt.
   */
  async encrypt(keyId: string, plaintext: Buffer, aad: Buffer | undefined, requestMetadata: XksRequestMetadata): Promise<XksCiphertext> {
    const op = requestMetadata.kmsOperation;
    const body: Json = { requestMetadata };
    if (aad) body.additionalAuthenticatedData = aad.toString('base64');
    body.plaintext = plaintext.toString('base64');
    body.encryptionAlgorithm = AES_GCM;
    body.ciphertextDataIntegrityValueAlgorithm = SHA_256;
    const r = await this.call(operationPath(this.uriPath, 'encrypt', checkKeyId(keyId)), body, op);
    const bad = (why: string) => new XksError('MalformedResponse', op, { why: `Encrypt: ${why}` });
    const ciphertext = strictBase64(r.ciphertext);
    const initializationVector = strictBase64(r.initializationVector);
    const authenticationTag = strictBase64(r.authenticationTag);
    if (!ciphertext || !initializationVector || !authenticationTag) throw bad('ciphertext, initializationVector and authenticationTag must be base64');
    if (ciphertext.length !== plaintext.length) throw bad(`the ciphertext has ${ciphertext.length} bytes for ${plaintext.length} of plaintext`);
    if (!IV_LENGTHS.includes(initializationVector.length as never))
      throw bad(`the initializationVector has ${initializationVector.length} bytes, not 12 or 16`);
    if (authenticationTag.length !== TAG_LENGTH) throw bad(`the authenticationTag has ${authenticationTag.length} bytes, not 16`);
    let ciphertextMetadata: Buffer | undefined;
    if (r.ciphertextMetadata !== undefined) {
      ciphertextMetadata = strictBase64(r.ciphertextMetadata);
      if (!ciphertextMetadata || ciphertextMetadata.length > MAX_CIPHERTEXT_METADATA) throw bad('ciphertextMetadata must be base64 of at most 20 bytes');
    }
    const out: XksCiphertext = { ciphertext, initializationVector, authenticationTag, ...(ciphertextMetadata ? { ciphertextMetadata } : {}) };
    const given = strictBase64(r.ciphertextDataIntegrityValue);
    if (!given) throw bad('ciphertextDataIntegrityValue is missing although it was asked for');
    if (given.length !== 32 || !crypto.timingSafeEqual(given, cdiv(aad, out))) throw bad('ciphertextDataIntegrityValue does not match the answer');
    return out;
  }

  /** Decrypt with AES_GCM in the external key manager; the plaintext has the ciphertext's length. */
  async decrypt(keyId: string, c: XksCiphertext, aad: Buffer | undefined, requestMetadata: XksRequestMetadata): Promise<Buffer> {
    const op = requestMetadata.kmsOperation;
    const body: Json = { requestMetadata };
    if (aad) body.additionalAuthenticatedData = aad.toString('base64');
    body.ciphertext = c.ciphertext.toString('base64');
    if (c.ciphertextMetadata) body.ciphertextMetadata = c.ciphertextMetadata.toString('base64');
    body.encryptionAlgorithm = AES_GCM;
    body.initializationVector = c.initializationVector.toString('base64');
    body.authenticationTag = c.authenticationTag.toString('base64');
    const r = await this.call(operationPath(this.uriPath, 'decrypt', checkKeyId(keyId)), body, op);
    const plaintext = strictBase64(r.plaintext);
    if (!plaintext || plaintext.length !== c.ciphertext.length)
      throw new XksError('MalformedResponse', op, { why: 'Decrypt: plaintext must be base64 of as many bytes as the ciphertext' });
    return plaintext;
  }

  /** Close idle keep-alive connections (a client that is dropped lets them time out anyway). */
  close(): void {
    this.agent.destroy();
  }

  /** POST one signed request; the parsed JSON of a 200 answer, else the XksError for what came back. */
  private async call(path: string, body: Json, kmsOperation: string): Promise<Json> {
    const payload = Buffer.from(JSON.stringify(body));
    const host = this.base.host;
    const req = {
      method: 'POST',
      protocol: this.base.protocol,
      hostname: this.base.hostname,
      port: this.base.port ? Number(this.base.port) : undefined,
      path,
      query: {},
      headers: { host, 'content-type': 'application/json' } as Record<string, string>,
      body: payload,
    } as HttpRequest;
    const signed = await this.signer.sign(req, { unsignableHeaders: new Set(['content-type', 'content-length']) });
    const { status, text } = await this.send(path, signed.headers as Record<string, string>, payload, kmsOperation);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const json = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Json) : undefined;
    if (status === 200) {
      if (!json) throw new XksError('MalformedResponse', kmsOperation, { proxyStatus: status, why: 'the 200 answer is not a JSON object' });
      return json;
    }
    const name = json?.errorName;
    const message = typeof json?.errorMessage === 'string' ? json.errorMessage.slice(0, MAX_ERROR_MESSAGE) : undefined;
    const failure: XksFailure = isXksErrorName(name) && status >= 400 ? name : 'MalformedResponse';
    throw new XksError(failure, kmsOperation, {
      proxyStatus: status,
      ...(message !== undefined ? { proxyMessage: message } : {}),
      ...(failure === 'MalformedResponse' ? { why: `HTTP ${status} without a known errorName` } : {}),
    });
  }

  private async send(path: string, headers: Record<string, string>, payload: Buffer, kmsOperation: string): Promise<{ status: number; text: string }> {
    try {
      return await this.sendOnce(path, headers, payload, kmsOperation);
    } catch (e) {
      // A keep-alive socket the proxy closed while idle: the request never reached it, so it is sent once more on a new one.
      if (e instanceof StaleSocket) return this.sendOnce(path, headers, payload, kmsOperation);
      throw e;
    }
  }

  private sendOnce(path: string, headers: Record<string, string>, payload: Buffer, kmsOperation: string): Promise<{ status: number; text: string }> {
    const mod = this.base.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      let tcp = false;
      let tls = this.base.protocol === 'http:';
      let settled = false;
      const fail = (failure: XksFailure, why?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        reject(new XksError(failure, kmsOperation, why ? { why } : {}));
      };
      const req = mod.request({
        protocol: this.base.protocol,
        hostname: this.base.hostname,
        port: this.base.port || undefined,
        method: 'POST',
        path,
        headers: { ...headers, 'content-length': String(payload.length) },
        agent: this.agent,
      });
      const timer = setTimeout(() => fail('Timeout', `no answer within ${this.timeoutMs} ms`), this.timeoutMs);
      req.on('socket', (s) => {
        // A reused keep-alive socket is already connected (and through TLS).
        if (!s.connecting) {
          tcp = tls = true;
          return;
        }
        const onTcp = () => (tcp = true);
        const onTls = () => (tls = true);
        s.once('connect', onTcp);
        s.once('secureConnect', onTls);
        req.once('close', () => {
          s.off('connect', onTcp);
          s.off('secureConnect', onTls);
        });
      });
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (req.reusedSocket && e.code === 'ECONNRESET' && !settled) {
          settled = true;
          clearTimeout(timer);
          reject(new StaleSocket());
        } else fail(tcp && !tls ? 'TlsFailed' : 'ConnectFailed', e.code ?? e.message);
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE) fail('MalformedResponse', `the answer is larger than ${MAX_RESPONSE} bytes`);
          else chunks.push(c);
        });
        res.on('error', (e: NodeJS.ErrnoException) => fail('ConnectFailed', e.code ?? e.message));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
        });
      });
      req.end(payload);
    });
  }
}

class StaleSocket extends Error {}

function checkKeyId(keyId: string): string {
  if (!KEY_ID_PATTERN.test(keyId)) throw new TypeError(`XksKeyId must be 1 to 128 of A-Z, a-z, 0-9, '.', '-', '_'; got '${keyId}'.`);
  return keyId;
}

/**
 * Whether a GetKeyMetadata answer names a key KMS can use (CreateKey and
 * cryptographic operations): AES_256, ENCRYPT and DECRYPT, ENABLED. Throws the
 * XksError for the calling operation otherwise.
 */
export function requireUsableKey(meta: XksKeyMetadata, kmsOperation: string): void {
  if (meta.keySpec !== 'AES_256' || !meta.keyUsage.includes('ENCRYPT') || !meta.keyUsage.includes('DECRYPT'))
    throw new XksError('KeyNotUsable', kmsOperation, { why: `keySpec ${meta.keySpec}, keyUsage ${meta.keyUsage.join(',') || 'none'}` });
  if (meta.keyStatus !== 'ENABLED') throw new XksError('InvalidStateException', kmsOperation, { why: `keyStatus ${meta.keyStatus}` });
}
