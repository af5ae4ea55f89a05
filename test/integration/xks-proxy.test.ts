import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XksClient } from '../../src/xks/client.js';
import { type RunningXksProxy, startXksProxy, XKS_AK, XKS_REGION, XKS_SK } from '../helpers/xks.js';

/**
 * `kmsvol xks-proxy` driven by curl's own SigV4 signer (`curl --aws-sigv4`,
 * as the specification's Appendix D drives a proxy), with request bodies
 * written from the specification; each refusal must carry the
 * specification's errorName and HTTP status. Then kmsvol's XKS client against
 * it, and pkcs11-tool (OpenSC) reading the token behind it.
 */
const URI_PATH = '/acme-tenant/kms/xks/v1';
const KEY = 'ext-key-a1';
const META = { awsPrincipalArn: 'arn:aws:iam::111122223333:user/Alice', kmsKeyArn: 'arn:aws:kms:eu-west-3:111122223333:key/k', kmsRequestId: 'rq-1' };

let proxy: RunningXksProxy;
let home: string;

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-xks-'));
  proxy = await startXksProxy({ home, uriPath: URI_PATH, keyIds: [KEY], keep: true });
});
afterAll(async () => {
  await proxy?.stop();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

interface Answer {
  status: number;
  body: Record<string, any>;
}

/** POST `body` with curl, signed for `scope` (default aws:amz:<region>:kms-xks-proxy) with `user` (default the proxy credential). */
function curl(pathTail: string, body: unknown, opt: { scope?: string; user?: string; method?: string; uriPath?: string } = {}): Answer {
  const url = `${proxy.endpoint}${opt.uriPath ?? URI_PATH}${pathTail}`;
  const args = ['-sS', '--aws-sigv4', opt.scope ?? `aws:amz:${XKS_REGION}:kms-xks-proxy`, '--user', opt.user ?? `${XKS_AK}:${XKS_SK}`];
  args.push('-X', opt.method ?? 'POST', '-H', 'Content-Type: application/json', '-w', '\n%{http_code}');
  if (body !== undefined) args.push('--data-binary', '@-');
  const r = spawnSync('/usr/bin/curl', [...args, url], { input: body === undefined ? '' : JSON.stringify(body), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`curl failed: ${r.stderr}`);
  const nl = r.stdout.lastIndexOf('\n');
  const text = r.stdout.slice(0, nl);
  return { status: Number(r.stdout.slice(nl + 1)), body: text ? JSON.parse(text) : {} };
}

const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64');
const encryptBody = (pt: Buffer, aad?: Buffer) => ({
  requestMetadata: { ...META, kmsOperation: 'Encrypt' },
  ...(aad ? { additionalAuthenticatedData: b64(aad) } : {}),
  plaintext: b64(pt),
  encryptionAlgorithm: 'AES_GCM',
  ciphertextDataIntegrityValueAlgorithm: 'SHA_256',
});
const decryptBody = (c: Record<string, string>, aad?: Buffer) => ({
  requestMetadata: { ...META, kmsOperation: 'Decrypt' },
  ...(aad ? { additionalAuthenticatedData: b64(aad) } : {}),
  ciphertext: c.ciphertext,
  ciphertextMetadata: c.ciphertextMetadata,
  encryptionAlgorithm: 'AES_GCM',
  initializationVector: c.initializationVector,
  authenticationTag: c.authenticationTag,
});
const refusal = (a: Answer) => [a.status, a.body.errorName];

describe('kmsvol xks-proxy under curl --aws-sigv4: the specification’s happy paths', () => {
  it('GetHealthStatus: 200, the fleet in the specification’s shape, the token ACTIVE', () => {
    const a = curl('/health', { requestMetadata: { kmsRequestId: 'h-1', kmsOperation: 'KmsHealthCheck' } });
    expect(a.status).toBe(200);
    expect(a.body.xksProxyFleetSize).toBe(1);
    expect(a.body.ekmFleetDetails).toEqual([expect.objectContaining({ id: 'kmsvol-xks-proxy', healthStatus: 'ACTIVE' })]);
    for (const f of ['xksProxyVendor', 'xksProxyModel', 'ekmVendor']) expect(typeof a.body[f]).toBe('string');
  });

  it('GetKeyMetadata of the --key-id key: AES_256, ENCRYPT and DECRYPT, ENABLED', () => {
    const a = curl(`/keys/${KEY}/metadata`, { requestMetadata: { ...META, kmsOperation: 'CreateKey' } });
    expect([a.status, a.body]).toEqual([200, { keySpec: 'AES_256', keyUsage: ['ENCRYPT', 'DECRYPT'], keyStatus: 'ENABLED' }]);
  });

  it('Encrypt then Decrypt 4300 bytes with AAD; the CDIV is SHA-256 over AAD, metadata, IV, ciphertext and tag (Appendix C)', () => {
    const pt = crypto.randomBytes(4300);
    const aad = Buffer.from('project=nile,department=marketing');
    const e = curl(`/keys/${KEY}/encrypt`, encryptBody(pt, aad));
    expect(e.status).toBe(200);
    const parts = ['ciphertextMetadata', 'initializationVector', 'ciphertext', 'authenticationTag'].map((f) => Buffer.from(e.body[f], 'base64'));
    expect(parts.map((p) => p.length).slice(1)).toEqual([12, 4300, 16]);
    const cdiv = crypto
      .createHash('sha256')
      .update(Buffer.concat([aad, ...parts]))
      .digest('base64');
    expect(e.body.ciphertextDataIntegrityValue).toBe(cdiv);
    const d = curl(`/keys/${KEY}/decrypt`, decryptBody(e.body, aad));
    expect(d.status).toBe(200);
    expect(Buffer.from(d.body.plaintext, 'base64').equals(pt)).toBe(true);
  });
});

describe('kmsvol xks-proxy: every refusal carries the specification’s errorName and status', () => {
  const health = { requestMetadata: { kmsRequestId: 'h', kmsOperation: 'KmsHealthCheck' } };

  it('a wrong signature (another secret): 401 AuthenticationFailedException', () => {
    expect(refusal(curl('/health', health, { user: `${XKS_AK}:${XKS_SK.replace('c2', 'd2')}` }))).toEqual([401, 'AuthenticationFailedException']);
  });

  it('an access key the proxy does not hold: 401 AuthenticationFailedException', () => {
    expect(refusal(curl('/health', health, { user: `AKIAOTHERKEYID234567:${XKS_SK}` }))).toEqual([401, 'AuthenticationFailedException']);
  });

  it('a request signed for another service (kms): 401 AuthenticationFailedException', () => {
    expect(refusal(curl('/health', health, { scope: `aws:amz:${XKS_REGION}:kms` }))).toEqual([401, 'AuthenticationFailedException']);
  });

  it('a request signed for another region: 401 AuthenticationFailedException', () => {
    expect(refusal(curl('/health', health, { scope: 'aws:amz:us-east-1:kms-xks-proxy' }))).toEqual([401, 'AuthenticationFailedException']);
  });

  it('an unsigned request: 401 AuthenticationFailedException', () => {
    const r = spawnSync('/usr/bin/curl', ['-s', '-w', '\n%{http_code}', '-d', JSON.stringify(health), `${proxy.endpoint}${URI_PATH}/health`], {
      encoding: 'utf8',
    });
    const [text, status] = r.stdout.split('\n');
    expect([Number(status), JSON.parse(text!).errorName]).toEqual([401, 'AuthenticationFailedException']);
  });

  it('a wrong key id: 404 KeyNotFoundException (metadata, encrypt, decrypt)', () => {
    expect(refusal(curl('/keys/no-such-key/metadata', { requestMetadata: { ...META, kmsOperation: 'CreateKey' } }))).toEqual([404, 'KeyNotFoundException']);
    expect(refusal(curl('/keys/no-such-key/encrypt', encryptBody(Buffer.from('x'))))).toEqual([404, 'KeyNotFoundException']);
    const e = curl(`/keys/${KEY}/encrypt`, encryptBody(Buffer.from('x')));
    expect(refusal(curl('/keys/no-such-key/decrypt', decryptBody(e.body)))).toEqual([404, 'KeyNotFoundException']);
  });

  it('bad AAD on decrypt, or none where there was some: 400 InvalidCiphertextException', () => {
    const e = curl(`/keys/${KEY}/encrypt`, encryptBody(Buffer.from('data key'), Buffer.from('ctx=a')));
    expect(refusal(curl(`/keys/${KEY}/decrypt`, decryptBody(e.body, Buffer.from('ctx=b'))))).toEqual([400, 'InvalidCiphertextException']);
    expect(refusal(curl(`/keys/${KEY}/decrypt`, decryptBody(e.body)))).toEqual([400, 'InvalidCiphertextException']);
  });

  it('a changed tag, or ciphertextMetadata passed as AAD instead (the length framing of the Encrypt section): 400 InvalidCiphertextException', () => {
    const e = curl(`/keys/${KEY}/encrypt`, encryptBody(Buffer.from('data key')));
    const tag = Buffer.from(e.body.authenticationTag, 'base64');
    tag[0]! ^= 1;
    expect(refusal(curl(`/keys/${KEY}/decrypt`, decryptBody({ ...e.body, authenticationTag: b64(tag) })))).toEqual([400, 'InvalidCiphertextException']);
    const moved = { ...decryptBody(e.body), ciphertextMetadata: undefined, additionalAuthenticatedData: e.body.ciphertextMetadata };
    expect(refusal(curl(`/keys/${KEY}/decrypt`, moved))).toEqual([400, 'InvalidCiphertextException']);
  });

  it('oversized plaintext (4301 bytes) or AAD (8193 bytes): 501 UnsupportedOperationException', () => {
    expect(refusal(curl(`/keys/${KEY}/encrypt`, encryptBody(Buffer.alloc(4301))))).toEqual([501, 'UnsupportedOperationException']);
    expect(refusal(curl(`/keys/${KEY}/encrypt`, encryptBody(Buffer.alloc(16), Buffer.alloc(8193))))).toEqual([501, 'UnsupportedOperationException']);
  });

  it('missing requestMetadata fields, another algorithm, or a body that is not JSON: 400 ValidationException', () => {
    expect(refusal(curl(`/keys/${KEY}/metadata`, { requestMetadata: { kmsOperation: 'CreateKey', kmsRequestId: 'r' } }))).toEqual([400, 'ValidationException']);
    expect(refusal(curl(`/keys/${KEY}/encrypt`, { ...encryptBody(Buffer.from('x')), encryptionAlgorithm: 'AES_CBC' }))).toEqual([400, 'ValidationException']);
    expect(refusal(curl(`/keys/${KEY}/encrypt`, { ...encryptBody(Buffer.from('x')), plaintext: 'not base64!' }))).toEqual([400, 'ValidationException']);
    expect(refusal(curl('/health', 'just a string'))).toEqual([400, 'ValidationException']);
  });

  it('a URI outside the proxy’s uriPath: 404 InvalidUriPathException', () => {
    expect(refusal(curl('/health', health, { uriPath: '/other-tenant/kms/xks/v1' }))).toEqual([404, 'InvalidUriPathException']);
    expect(refusal(curl(`/keys/${KEY}/sign`, health))).toEqual([404, 'InvalidUriPathException']);
  });

  it('a GET at an API URI: 405', () => {
    expect(curl('/health', undefined, { method: 'GET' }).status).toBe(405);
  });
});

describe('kmsvol’s XKS client against kmsvol xks-proxy', () => {
  it('round trip with AAD; a wrong AAD is KMSInvalidStateException (InvalidCiphertextException at the proxy)', async () => {
    const client = new XksClient({
      uriEndpoint: proxy.endpoint,
      uriPath: URI_PATH,
      accessKeyId: XKS_AK,
      secretAccessKey: XKS_SK,
      region: XKS_REGION,
      timeoutMs: 10_000,
    });
    try {
      await client.health({ kmsOperation: 'ConnectCustomKeyStore', kmsRequestId: 'c-1' });
      expect((await client.keyMetadata(KEY, { ...META, kmsOperation: 'CreateKey' })).keySpec).toBe('AES_256');
      const pt = crypto.randomBytes(64);
      const c = await client.encrypt(KEY, pt, Buffer.from('vol-1'), { ...META, kmsOperation: 'GenerateDataKey' });
      expect((await client.decrypt(KEY, c, Buffer.from('vol-1'), { ...META, kmsOperation: 'Decrypt' })).equals(pt)).toBe(true);
      await expect(client.decrypt(KEY, c, Buffer.from('vol-2'), { ...META, kmsOperation: 'Decrypt' })).rejects.toMatchObject({
        code: 'KMSInvalidStateException',
        failure: 'InvalidCiphertextException',
      });
    } finally {
      client.close();
    }
  });
});

describe('the token behind kmsvol xks-proxy, read by pkcs11-tool (OpenSC)', () => {
  it('lists the --key-id key as a sensitive, never-extractable AES secret key, and cannot read its value', () => {
    const dir = path.join(home, 'xks-proxy');
    const pin = JSON.parse(fs.readFileSync(path.join(dir, 'token-pins.json'), 'utf8')).user as string;
    const env = { ...process.env, SOFTHSM2_CONF: path.join(dir, 'softhsm2', 'softhsm2.conf') };
    const base = ['--module', '/usr/lib/softhsm/libsofthsm2.so', '--token-label', 'kmsvol-xks-proxy', '--login', '--pin', pin];
    const list = spawnSync('pkcs11-tool', [...base, '--list-objects', '--type', 'secrkey'], { env, encoding: 'utf8' });
    expect(list.status).toBe(0);
    const entry = list.stdout.split(/\n(?=Secret Key Object)/).find((o) => o.includes(`label:      ${KEY}`));
    expect(entry).toMatch(/AES length 32/);
    expect(entry).toMatch(/Access:.*sensitive/);
    expect(entry).toMatch(/never extractable/);
    const read = spawnSync('pkcs11-tool', [...base, '--read-object', '--type', 'secrkey', '--label', KEY], { env, encoding: 'utf8' });
    expect(read.status).not.toBe(0);
  });
});

describe('the external key lives in the token, not in the proxy', () => {
  it('a ciphertext made before a restart decrypts after it, with no --key-id the second time', async () => {
    const own = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-xks-restart-'));
    try {
      const cfg = { uriPath: URI_PATH, accessKeyId: XKS_AK, secretAccessKey: XKS_SK, region: XKS_REGION, timeoutMs: 10_000 };
      const md = { ...META, kmsOperation: 'Decrypt' };
      const first = await startXksProxy({ home: own, uriPath: URI_PATH, keyIds: ['kept-key'] });
      const c1 = new XksClient({ ...cfg, uriEndpoint: first.endpoint });
      const sealed = await c1.encrypt('kept-key', Buffer.from('data key bytes'), Buffer.from('vol-9'), md);
      c1.close();
      await first.stop();
      const second = await startXksProxy({ home: own, uriPath: URI_PATH, keyIds: [] });
      const c2 = new XksClient({ ...cfg, uriEndpoint: second.endpoint });
      try {
        expect((await c2.decrypt('kept-key', sealed, Buffer.from('vol-9'), md)).toString()).toBe('data key bytes');
      } finally {
        c2.close();
        await second.stop();
      }
    } finally {
      fs.rmSync(own, { recursive: true, force: true });
    }
  });
});

describe('kmsvol xks-proxy over TLS (--tls-cert, --tls-key)', () => {
  it('curl and the XKS client reach it with the CA; without it, curl refuses the certificate and the client reports XKS_PROXY_INVALID_TLS_CONFIGURATION', async () => {
    const own = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-xks-tls-'));
    try {
      const cert = path.join(own, 'cert.pem');
      const key = path.join(own, 'key.pem');
      const made = spawnSync(
        'openssl',
        ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1'].concat([
          '-subj',
          '/CN=localhost',
          '-addext',
          'subjectAltName=DNS:localhost,IP:127.0.0.1',
          '-keyout',
          key,
          '-out',
          cert,
        ]),
        { encoding: 'utf8' },
      );
      expect(made.status, made.stderr).toBe(0);
      const tls = await startXksProxy({ home: own, uriPath: URI_PATH, keyIds: [KEY], args: ['--tls-cert', cert, '--tls-key', key] });
      expect(tls.endpoint).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const health = JSON.stringify({ requestMetadata: { kmsRequestId: 't', kmsOperation: 'KmsHealthCheck' } });
      const curlArgs = ['-sS', '--aws-sigv4', `aws:amz:${XKS_REGION}:kms-xks-proxy`, '--user', `${XKS_AK}:${XKS_SK}`, '-H', 'Content-Type: application/json'];
      const url = `${tls.endpoint}${URI_PATH}/health`;
      const ok = spawnSync('/usr/bin/curl', [...curlArgs, '--cacert', cert, '-d', health, url], { encoding: 'utf8' });
      expect([ok.status, JSON.parse(ok.stdout).ekmFleetDetails[0].healthStatus]).toEqual([0, 'ACTIVE']);
      const untrusted = spawnSync('/usr/bin/curl', [...curlArgs, '-d', health, url], { encoding: 'utf8' });
      expect(untrusted.status).toBe(60); // curl: "SSL certificate problem"
      const cfg = { uriEndpoint: tls.endpoint, uriPath: URI_PATH, accessKeyId: XKS_AK, secretAccessKey: XKS_SK, region: XKS_REGION, timeoutMs: 10_000 };
      const trusting = new XksClient({ ...cfg, ca: fs.readFileSync(cert, 'utf8') });
      const plain = new XksClient(cfg);
      try {
        const sealed = await trusting.encrypt(KEY, Buffer.from('over tls'), undefined, { ...META, kmsOperation: 'Encrypt' });
        expect((await trusting.decrypt(KEY, sealed, undefined, { ...META, kmsOperation: 'Decrypt' })).toString()).toBe('over tls');
        await expect(plain.health({ kmsOperation: 'CreateCustomKeyStore', kmsRequestId: 't' })).rejects.toMatchObject({
          code: 'XksProxyUriUnreachableException',
          failure: 'TlsFailed',
          connectionErrorCode: 'XKS_PROXY_INVALID_TLS_CONFIGURATION',
        });
      } finally {
        trusting.close();
        plain.close();
        await tls.stop();
      }
    } finally {
      fs.rmSync(own, { recursive: true, force: true });
    }
  });
});
