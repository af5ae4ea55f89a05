import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/clock.js';
import { openHome } from '../../../src/home.js';
import { assumeRole, createAccessKey, createRole } from '../../../src/kms/iam.js';
import { Kms } from '../../../src/kms/kms.js';
import { ec2Service } from '../../../src/server/ec2/index.js';
import type { Endpoint } from '../../../src/server/http.js';
import { serveEndpoint } from '../../../src/server/http.js';
import { kmsService } from '../../../src/server/kms.js';
import { stsService } from '../../../src/server/sts.js';

/**
 * Each service names a failed authentication in its own words (issue 26):
 * the endpoint, in process, sent requests signed by @smithy/signature-v4
 * (the SDK's signer) and broken one way each. EC2 answers with EC2's codes,
 * statuses and `<Response><Errors>` document; STS with its own codes in
 * `<ErrorResponse>`; KMS keeps its JSON exceptions. EC2 and STS allow 15
 * minutes of clock skew, KMS 5.
 */
class Sha256 {
  private readonly h: crypto.Hash | crypto.Hmac;
  constructor(secret?: string | Uint8Array) {
    this.h = secret ? crypto.createHmac('sha256', secret) : crypto.createHash('sha256');
  }
  update(d: string | Uint8Array) {
    this.h.update(d);
  }
  async digest() {
    return new Uint8Array(this.h.digest());
  }
  reset() {}
}

let dir: string;
let ep: Endpoint;
let key: { id: string; secret: string };
let session: { id: string; secret: string; token: string };
/** The endpoint's clock (session expiry); signatures are checked against the system clock. */
const clock = new ManualClock();
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-auth-'));
  const home = openHome(dir);
  const kms = Kms.open({ home, region: 'us-east-1', clock });
  const k = createAccessKey(kms.ctx, 'tester').AccessKey;
  createRole(
    kms.ctx,
    'app',
    JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::000000000000:root' }, Action: 'sts:AssumeRole' }] }),
  );
  const c = assumeRole(kms.ctx, 'arn:aws:iam::000000000000:user/tester', {
    RoleArn: 'arn:aws:iam::000000000000:role/app',
    RoleSessionName: 'sweep',
    DurationSeconds: 900,
  }).Credentials;
  kms.close();
  key = { id: k.AccessKeyId, secret: k.SecretAccessKey };
  session = { id: c.AccessKeyId, secret: c.SecretAccessKey, token: c.SessionToken };
  ep = await serveEndpoint({ home, services: [kmsService, stsService, ec2Service], port: 0, region: 'us-east-1', clock });
});
afterAll(async () => {
  await ep?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Broken {
  accessKeyId?: string;
  secret?: string;
  /** Signing time offset from now, ms. */
  skewMs?: number;
  scopeService?: string;
  scopeRegion?: string;
  token?: string;
  /** Replace the Authorization header (undefined: drop it). */
  authorization?: string | null;
}

const BODIES = {
  ec2: { body: 'Action=DescribeVolumes&Version=2016-11-15', type: 'application/x-www-form-urlencoded; charset=utf-8', service: 'ec2' },
  sts: { body: 'Action=GetCallerIdentity&Version=2011-06-15', type: 'application/x-www-form-urlencoded; charset=utf-8', service: 'sts' },
  kms: { body: '{}', type: 'application/x-amz-json-1.1', service: 'kms' },
} as const;

async function call(svc: keyof typeof BODIES, b: Broken = {}): Promise<{ status: number; code: string; message: string; body: string }> {
  const { body, type, service } = BODIES[svc];
  const url = new URL(ep.url);
  const headers: Record<string, string> = { host: url.host, 'content-type': type };
  if (svc === 'kms') headers['x-amz-target'] = 'TrentService.ListKeys';
  if (b.token) headers['x-amz-security-token'] = b.token;
  const signer = new SignatureV4({
    credentials: { accessKeyId: b.accessKeyId ?? key.id, secretAccessKey: b.secret ?? key.secret },
    region: b.scopeRegion ?? 'us-east-1',
    service: b.scopeService ?? service,
    sha256: Sha256 as never,
  });
  const signed = await signer.sign(
    { method: 'POST', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: '/', headers, body, query: {} },
    { signingDate: new Date(Date.now() + (b.skewMs ?? 0)) },
  );
  const h = { ...signed.headers } as Record<string, string>;
  if (b.authorization === null) delete h.authorization;
  else if (b.authorization !== undefined) h.authorization = b.authorization;
  delete h.host;
  const res = await fetch(`${ep.url}/`, { method: 'POST', headers: h, body });
  const text = await res.text();
  if (svc === 'kms') {
    const j = JSON.parse(text) as { __type?: string; message?: string };
    return { status: res.status, code: j.__type ?? 'ok', message: j.message ?? '', body: text };
  }
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? 'ok';
  const message = (/<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? '')
    .replace(/&apos;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
  return { status: res.status, code, message, body: text };
}

const MIN = 60_000;
const EC2_DOC =
  /^<\?xml version="1\.0" encoding="UTF-8"\?>\s*<Response><Errors><Error><Code>\w+<\/Code><Message>[^<]+<\/Message><\/Error><\/Errors><RequestID>[0-9a-f-]{36}<\/RequestID><\/Response>$/;
const STS_DOC =
  /^<\?xml version="1\.0" encoding="UTF-8"\?>\s*<ErrorResponse xmlns="https:\/\/sts\.amazonaws\.com\/doc\/2011-06-15\/"><Error><Type>Sender<\/Type><Code>\w+<\/Code><Message>[^<]+<\/Message><\/Error><RequestId>[0-9a-f-]{36}<\/RequestId><\/ErrorResponse>$/;

describe("EC2's and STS's own authentication errors, by the endpoint", () => {
  const cases: [string, Broken, [string, number], [string, number]][] = [
    ['missing', { authorization: null }, ['MissingAuthenticationToken', 401], ['MissingAuthenticationToken', 401]],
    ['malformed', { authorization: 'AWS4-HMAC-SHA256 Credential=nothing' }, ['IncompleteSignature', 400], ['IncompleteSignature', 400]],
    ['wrong signature', { secret: 'not-the-secret-at-all' }, ['SignatureDoesNotMatch', 403], ['SignatureDoesNotMatch', 403]],
    ['expired (20 min old)', { skewMs: -20 * MIN }, ['RequestExpired', 400], ['SignatureDoesNotMatch', 403]],
    ['future (20 min ahead)', { skewMs: 20 * MIN }, ['RequestExpired', 400], ['SignatureDoesNotMatch', 403]],
    ['unknown key', { accessKeyId: 'AKIAUNKNOWNUNKNOWN00' }, ['AuthFailure', 401], ['InvalidClientTokenId', 403]],
    ['wrong service', { scopeService: 'iam' }, ['SignatureDoesNotMatch', 403], ['SignatureDoesNotMatch', 403]],
    ['wrong region', { scopeRegion: 'eu-west-1' }, ['SignatureDoesNotMatch', 403], ['SignatureDoesNotMatch', 403]],
    ['a session token on a long-term key', { token: 'made-up' }, ['AuthFailure', 401], ['InvalidClientTokenId', 403]],
  ];
  for (const [what, broken, ec2, sts] of cases) {
    it(`${what}: EC2 ${ec2[0]} (${ec2[1]}), STS ${sts[0]}`, async () => {
      const e = await call('ec2', broken);
      expect([e.code, e.status], e.body).toEqual(ec2);
      expect(e.body).toMatch(EC2_DOC);
      const s = await call('sts', broken);
      expect(s.code, s.body).toBe(sts[0]);
      // An unsigned or unparseable STS request is refused before its body (and so its Action) is read: it is answered in the Query shape of the form's first service, EC2's.
      if (what !== 'missing' && what !== 'malformed') {
        expect(s.status, s.body).toBe(sts[1]);
        expect(s.body).toMatch(STS_DOC);
      }
    });
  }

  it("EC2's messages say what was wrong: the scope's service and region, the clock, AWS's own sentences", async () => {
    expect((await call('ec2', { scopeService: 'iam' })).message).toMatch(/^Credential should be scoped to correct service: 'ec2'\./);
    expect((await call('ec2', { skewMs: -20 * MIN })).message).toMatch(
      /^Request has expired\. Signature expired: \d{8}T\d{6}Z is now earlier than .* - 15 min\.\)$/,
    );
    expect((await call('ec2', { skewMs: 20 * MIN })).message).toMatch(/^Request has expired\. Signature not yet current: .* \+ 15 min\.\)$/);
    expect((await call('ec2', { accessKeyId: 'AKIAUNKNOWNUNKNOWN00' })).message).toMatch(/^AWS was not able to validate the provided access credentials/);
    expect((await call('ec2', { authorization: null })).message).toMatch(
      /^The request must contain either a valid \(registered\) AWS access key ID or X\.509 certificate\./,
    );
    expect((await call('sts', { skewMs: -20 * MIN })).message).toMatch(/^Signature expired: .* - 15 min\.\)$/);
  });

  it('EC2 and STS allow 15 minutes of skew either way, KMS 5: a request signed 10 minutes off is served by EC2 and STS and refused by KMS', async () => {
    for (const skewMs of [-10 * MIN, 10 * MIN]) {
      expect((await call('ec2', { skewMs })).code).toBe('ok');
      expect((await call('sts', { skewMs })).code).toBe('ok');
      const k = await call('kms', { skewMs });
      expect(k.code).toBe('InvalidSignatureException');
      expect(k.message).toMatch(/5 min\.\)$/);
    }
    expect((await call('kms')).code).toBe('ok');
  });

  it("a session's credentials: served while valid; a wrong token is EC2's AuthFailure and STS's InvalidClientTokenId; once expired, EC2's RequestExpired and STS's ExpiredToken", async () => {
    const as = (token: string) => ({ accessKeyId: session.id, secret: session.secret, token });
    expect((await call('ec2', as(session.token))).code).toBe('ok');
    expect((await call('sts', as(session.token))).code).toBe('ok');
    expect(await call('ec2', as(`${session.token}x`))).toMatchObject({ code: 'AuthFailure', status: 401 });
    expect(await call('sts', as(`${session.token}x`))).toMatchObject({ code: 'InvalidClientTokenId', status: 403 });
    clock.advance(901_000);
    try {
      const e = await call('ec2', as(session.token));
      expect(e).toMatchObject({
        code: 'RequestExpired',
        status: 400,
        message: expect.stringMatching(/^Request has expired\. The security token included in the request is expired/),
      });
      expect(e.body).toMatch(EC2_DOC);
      expect(await call('sts', as(session.token))).toMatchObject({ code: 'ExpiredToken', status: 400 });
    } finally {
      clock.advance(-901_000);
    }
  });

  it("KMS keeps its JSON exceptions for the same failures (EC2's names are EC2's alone)", async () => {
    expect((await call('kms', { accessKeyId: 'AKIAUNKNOWNUNKNOWN00' })).code).toBe('UnrecognizedClientException');
    expect((await call('kms', { secret: 'not-the-secret-at-all' })).code).toBe('InvalidSignatureException');
    expect((await call('kms', { authorization: null })).code).toBe('MissingAuthenticationTokenException');
  });
});
