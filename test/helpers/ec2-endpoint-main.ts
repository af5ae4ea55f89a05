// A test-only stand-in for `kmsvol serve` until the one endpoint (src/server/http.ts) lands:
// one port, SigV4-verified, EC2 requests (credential scope service `ec2`) to
// the real ec2Service, KMS requests passed to `serveKms` as they came.
// `node --import tsx ec2-endpoint-main.ts <home> <region>`; prints {"Endpoint": url} on stdout.
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignatureV4 } from '@smithy/signature-v4';
import { openHome } from '../../src/home.js';
import { lookupAccessKey } from '../../src/kms/iam.js';
import { Kms } from '../../src/kms/kms.js';
import { serveKms } from '../../src/kms/server/server.js';
import { parseAuthorization } from '../../src/kms/server/sigv4.js';
import { backgroundSettled, closeContexts, ec2Service } from '../../src/server/ec2/index.js';

const [homeDir, region] = process.argv.slice(2) as [string, string];
const home = openHome(homeDir);
const kms = Kms.open({ home, region });
const kmsServer = await serveKms(kms, { port: 0 });
const kmsUrl = new URL(kmsServer.url);

/**
 * SigV4 as the spec words it (canonical request, string to sign, derived key),
 * for this stand-in only: src/kms/server/sigv4.ts re-signs with
 * @smithy/signature-v4, which adds x-amz-content-sha256 to the signed headers,
 * so botocore's and the AWS CLI's signatures never match it (reported to the lead).
 */
function verifySigV4(method: string, url: string, headers: http.IncomingHttpHeaders, body: Buffer, auth: ReturnType<typeof parseAuthorization>, secret: string): boolean {
  const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const u = new URL(url, 'http://x');
  const query = [...u.searchParams].map(([k, v]) => [enc(k), enc(v)]).sort(([a, x], [b, y]) => (a! < b! ? -1 : a! > b! ? 1 : x! < y! ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join('&');
  const canonicalHeaders = auth.signedHeaders.map((h) => `${h}:${String(headers[h] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const hash = (d: string | Buffer) => crypto.createHash('sha256').update(d).digest('hex');
  const canonical = [method, u.pathname, query, canonicalHeaders, auth.signedHeaders.join(';'), hash(body)].join('\n');
  const amzDate = String(headers['x-amz-date'] ?? '');
  const scope = `${auth.date}/${auth.region}/${auth.service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, hash(canonical)].join('\n');
  const hmac = (k: Buffer | string, d: string) => crypto.createHmac('sha256', k).update(d).digest();
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, auth.date), auth.region), auth.service), 'aws4_request');
  const want = hmac(key, toSign);
  const got = Buffer.from(auth.signature, 'hex');
  return got.length === want.length && crypto.timingSafeEqual(got, want);
}

class Sha256 {
  private readonly h: crypto.Hash | crypto.Hmac;
  constructor(secret?: string | Uint8Array) {
    this.h = secret ? crypto.createHmac('sha256', secret) : crypto.createHash('sha256');
  }
  update(d: string | Uint8Array): void {
    this.h.update(d);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
  reset(): void {}
}

async function resign(headers: http.IncomingHttpHeaders, body: Buffer, auth: ReturnType<typeof parseAuthorization>, secret: string): Promise<http.OutgoingHttpHeaders> {
  const signer = new SignatureV4({ credentials: { accessKeyId: auth.accessKeyId, secretAccessKey: secret }, region: auth.region, service: auth.service, sha256: Sha256 as never, uriEscapePath: true });
  const keep: Record<string, string> = {};
  for (const h of auth.signedHeaders) keep[h] = String(headers[h] ?? '');
  const [host, port] = (keep.host ?? '').split(':');
  const amz = String(headers['x-amz-date']);
  const when = new Date(Date.UTC(+amz.slice(0, 4), +amz.slice(4, 6) - 1, +amz.slice(6, 8), +amz.slice(9, 11), +amz.slice(11, 13), +amz.slice(13, 15)));
  const signed = (await signer.sign({ method: 'POST', protocol: 'http:', hostname: host ?? '', port: port ? Number(port) : undefined, path: '/', query: {}, headers: keep, body } as never, { signingDate: when })) as unknown as { headers: Record<string, string> };
  return { ...headers, ...signed.headers };
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

const server = http.createServer(async (req, res) => {
  const body = await readBody(req);
  let service = '';
  try {
    service = parseAuthorization(req.headers).service;
  } catch {
    service = '';
  }
  if (service !== 'ec2') {
    // KMS: checked here, then signed again the way serveKms's verifier computes it, and passed on.
    let headers: http.OutgoingHttpHeaders = req.headers;
    try {
      const auth = parseAuthorization(req.headers);
      const creds = lookupAccessKey(kms.ctx, auth.accessKeyId);
      if (creds && verifySigV4(req.method ?? 'POST', req.url ?? '/', req.headers, body, auth, creds.secret)) headers = await resign(req.headers, body, auth, creds.secret);
    } catch {
      /* unsigned or malformed: serveKms answers it */
    }
    const fwd = http.request({ host: kmsUrl.hostname, port: kmsUrl.port, method: req.method, path: req.url, headers }, (r) => {
      res.writeHead(r.statusCode ?? 500, r.headers);
      r.pipe(res);
    });
    fwd.end(body);
    return;
  }
  const requestId = crypto.randomUUID();
  const send = (r: { status: number; headers: Record<string, string>; body: string | Buffer }) => {
    res.writeHead(r.status, { ...r.headers, 'Content-Length': Buffer.byteLength(r.body) });
    res.end(r.body);
  };
  try {
    const auth = parseAuthorization(req.headers);
    const creds = lookupAccessKey(kms.ctx, auth.accessKeyId);
    if (!creds) return send(ec2Service.error({ name: 'AuthFailure', message: 'AWS was not able to validate the provided access credentials', status: 401 }, requestId));
    if (!verifySigV4(req.method ?? 'POST', req.url ?? '/', req.headers, body, auth, creds.secret)) {
      return send(ec2Service.error({ name: 'AuthFailure', message: 'The request signature we calculated does not match the signature you provided.', status: 401 }, requestId));
    }
    if (auth.region !== kms.region) return send(ec2Service.error({ name: 'AuthFailure', message: `This endpoint serves region ${kms.region}; the request was signed for ${auth.region}.`, status: 401 }, requestId));
    const params = new URLSearchParams(body.toString('utf8'));
    for (const [k, v] of new URL(req.url ?? '/', 'http://x').searchParams) params.append(k, v);
    send(await ec2Service.handle({ region: auth.region, caller: { arn: creds.principal.arn, accountId: kms.account, accessKeyId: auth.accessKeyId }, requestId, headers: req.headers, body, params, home, kms, signedHeaders: auth.signedHeaders }));
  } catch (e) {
    send(ec2Service.error({ name: 'InternalError', message: (e as Error).message, status: 500 }, requestId));
  }
});

server.listen(0, '127.0.0.1', () => {
  const a = server.address() as AddressInfo;
  process.stdout.write(JSON.stringify({ Endpoint: `http://127.0.0.1:${a.port}` }) + '\n');
});

process.once('SIGTERM', async () => {
  server.close();
  await kmsServer.close();
  await backgroundSettled();
  closeContexts();
  kms.close();
  process.exit(0);
});
