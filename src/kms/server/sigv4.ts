import crypto from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import { KmsError } from '../errors.js';

/**
 * SigV4 verification for the KMS server. The signature is recomputed with
 * @smithy/signature-v4 (the SDK's own signer) over exactly the headers the
 * client signed, and compared in constant time. Requests older or newer than
 * 5 minutes are refused, as AWS refuses them.
 */
export const MAX_SKEW_MS = 5 * 60 * 1000;

class Sha256 {
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

export interface ParsedAuth {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

const err = (name: string, message: string) => new KmsError(name, message, 400);

export function parseAuthorization(headers: IncomingHttpHeaders): ParsedAuth {
  const auth = headers.authorization;
  if (!auth) throw err('MissingAuthenticationTokenException', 'Missing Authentication Token: sign the request with SigV4 (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from `kmsvol iam create-access-key`).');
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) throw err('IncompleteSignatureException', 'The Authorization header is not a valid AWS4-HMAC-SHA256 signature.');
  return { accessKeyId: m[1]!, date: m[2]!, region: m[3]!, service: m[4]!, signedHeaders: m[5]!.split(';'), signature: m[6]! };
}

/** Signers by access key, region and service: each caches its derived signing keys, so a busy caller costs one HMAC chain a day. */
const signers = new Map<string, { secret: string; signer: SignatureV4 }>();

function signerFor(auth: ParsedAuth, secret: string): SignatureV4 {
  const id = `${auth.accessKeyId}\0${auth.region}\0${auth.service}`;
  const hit = signers.get(id);
  if (hit && hit.secret === secret) return hit.signer;
  const signer = new SignatureV4({ credentials: { accessKeyId: auth.accessKeyId, secretAccessKey: secret }, region: auth.region, service: auth.service, sha256: Sha256 as never, uriEscapePath: true });
  if (signers.size >= 1024) signers.clear();
  signers.set(id, { secret, signer });
  return signer;
}

/** Throws InvalidSignatureException unless the request is signed with `secret` and is fresh. */
export async function verify(req: { method: string; path: string; headers: IncomingHttpHeaders; body: Buffer }, auth: ParsedAuth, secret: string, now: number): Promise<void> {
  const amzDate = req.headers['x-amz-date'];
  if (typeof amzDate !== 'string' || !/^\d{8}T\d{6}Z$/.test(amzDate)) throw err('IncompleteSignatureException', 'The request must carry an X-Amz-Date header.');
  const when = Date.UTC(+amzDate.slice(0, 4), +amzDate.slice(4, 6) - 1, +amzDate.slice(6, 8), +amzDate.slice(9, 11), +amzDate.slice(11, 13), +amzDate.slice(13, 15));
  if (Math.abs(now - when) > MAX_SKEW_MS) {
    throw err('InvalidSignatureException', `Signature expired: ${amzDate} is now earlier than ${new Date(now - MAX_SKEW_MS).toISOString().replace(/[-:]|\.\d{3}/g, '')} (${new Date(now).toISOString().replace(/[-:]|\.\d{3}/g, '')} - 5 min.)`);
  }
  const headers: Record<string, string> = {};
  for (const h of auth.signedHeaders) {
    const v = req.headers[h];
    if (v === undefined) throw err('InvalidSignatureException', `The signed header ${h} is missing from the request.`);
    headers[h] = Array.isArray(v) ? v.join(',') : v;
  }
  const [host, port] = (headers.host ?? '').split(':');
  const signer = signerFor(auth, secret);
  const signed = await signer.sign(
    { method: req.method, protocol: 'http:', hostname: host ?? '', port: port ? Number(port) : undefined, path: req.path, query: {}, headers, body: req.body } as never,
    { signingDate: new Date(when) },
  );
  const got = /Signature=([0-9a-f]{64})/.exec(String((signed as unknown as { headers: Record<string, string> }).headers.authorization))?.[1] ?? '';
  const a = Buffer.from(got, 'hex');
  const b = Buffer.from(auth.signature, 'hex');
  if (a.length !== b.length || !crypto.timingSafeEqual(a, b)) {
    throw err('InvalidSignatureException', 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.');
  }
}
