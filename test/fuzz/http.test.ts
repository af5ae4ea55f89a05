import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as sdk from '@aws-sdk/client-kms';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import type { RunningEndpoint } from '../helpers/endpoint.js';
import { startEndpoint } from '../helpers/endpoint.js';
import { runs, SEED } from './counts.js';

/**
 * Malformed HTTP against `kmsvol serve`: every answer is either a clean close
 * or an HTTP response whose body is an AWS-shaped error (JSON with __type, or
 * an XML error document) with a status below 500, and an x-amzn-RequestId;
 * the server stays up and still serves a real client afterwards.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

let home: string;
let server: RunningEndpoint;
let creds: { accessKeyId: string; secretAccessKey: string };

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-fuzz-http-'));
  const ak = kmsvol(home, ['iam', 'create-access-key', '--user-name', 'fuzzer']).json.AccessKey;
  creds = { accessKeyId: ak.AccessKeyId, secretAccessKey: ak.SecretAccessKey };
  server = await startEndpoint(home);
});

afterAll(async () => {
  await server?.stop();
  fs.rmSync(home, { recursive: true, force: true });
});

const token = fc.stringMatching(/^[A-Za-z0-9._~-]{0,24}$/);
const headerValue = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.constantFrom('application/x-amz-json-1.1', 'application/x-www-form-urlencoded', 'TrentService.ListKeys', 'TrentService.Nope', '20261128T000000Z', ''),
);
const auth = fc.oneof(
  fc.constant(undefined),
  fc.string({ maxLength: 200 }),
  fc
    .tuple(
      token,
      fc.stringMatching(/^\d{0,9}$/),
      token,
      fc.constantFrom('kms', 'sts', 'ec2', 's3', ''),
      fc.string({ maxLength: 30 }),
      fc.stringMatching(/^[0-9a-f]{0,70}$/),
    )
    .map(([ak, d, r, svc, sh, sig]) => `AWS4-HMAC-SHA256 Credential=${ak || 'AKIA'}/${d}/${r}/${svc}/aws4_request, SignedHeaders=${sh}, Signature=${sig}`),
);
const body = fc.oneof(
  fc.constant(''),
  fc.string({ maxLength: 300 }),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc.constantFrom(
    '{"KeyId":',
    'Action=AssumeRole&Version=2011-06-15',
    'Action=DescribeVolumes&Version=2016-11-15',
    '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]',
  ),
);
/** A request line, some headers (sometimes duplicated, sometimes with a lying Content-Length), and a body; or raw bytes. */
const request = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .record({
        method: fc.constantFrom('POST', 'GET', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'POST'),
        path: fc.oneof(
          fc.constant('/'),
          fc.constant('/?Action=GetCallerIdentity&Version=2011-06-15'),
          fc.webPath(),
          fc.string({ maxLength: 40 }).map((s) => `/${encodeURIComponent(s)}`),
        ),
        headers: fc.array(
          fc.tuple(
            fc.constantFrom('Content-Type', 'X-Amz-Target', 'X-Amz-Date', 'X-Amz-Security-Token', 'X-Amz-Content-Sha256', 'Host', 'Expect', 'X-Other'),
            headerValue,
          ),
          { maxLength: 6 },
        ),
        auth,
        body,
        lengthDelta: fc.constantFrom(0, 0, 0, -1, 5, 1 << 21),
      })
      .map(({ method, path: p, headers, auth: a, body: b, lengthDelta }) => {
        const lines = [`${method} ${p} HTTP/1.1`, 'Host: 127.0.0.1', ...headers.map(([k, v]) => `${k}: ${v.replace(/[\r\n]/g, ' ')}`)];
        if (a !== undefined) lines.push(`Authorization: ${a.replace(/[\r\n]/g, ' ')}`);
        const bytes = Buffer.from(b);
        lines.push(`Content-Length: ${Math.max(0, bytes.length + lengthDelta)}`, 'Connection: close');
        return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), bytes]);
      }),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b)) },
);

/** Send one request on its own connection; resolve with what came back (possibly nothing) once the server closes or 2 s pass. */
function exchange(url: string, payload: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const u = new URL(url);
    const s = net.connect(Number(u.port), u.hostname);
    let out = '';
    const done = () => resolve(out);
    const timer = setTimeout(() => {
      s.destroy();
      done();
    }, 2000);
    s.on('connect', () => s.end(payload));
    s.on('data', (d) => (out += d.toString('latin1')));
    s.on('close', () => {
      clearTimeout(timer);
      done();
    });
    s.on('error', () => undefined);
  });
}

/** What the answer must look like: nothing at all, or a well-formed AWS error under 500. */
function acceptable(answer: string): boolean {
  if (answer === '') return true;
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(answer);
  if (!m) return false;
  const status = Number(m[1]);
  const head = answer.slice(0, answer.indexOf('\r\n\r\n'));
  const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? -1);
  const payload = answer.slice(answer.indexOf('\r\n\r\n') + 4).slice(0, length < 0 ? undefined : length);
  if (status >= 500) return false;
  if (!/\r\nx-amzn-requestid: [0-9a-f-]{36}/i.test(head)) return false;
  if (status === 200) return true; // a request the generator happened to make valid (an unsigned one never is)
  if (payload.startsWith('{')) {
    try {
      const j = JSON.parse(payload);
      return typeof j.__type === 'string' && typeof j.message === 'string';
    } catch {
      return false;
    }
  }
  return /<(ErrorResponse|Response)[ >][\s\S]*<Code>[^<]+<\/Code>[\s\S]*<Message>/.test(payload);
}

describe('fuzz: malformed HTTP against kmsvol serve', () => {
  const n = runs(1_500, 10_000);
  it(`${n} malformed requests get AWS-shaped errors (or a clean close), no 5xx, and the server stays up (seed ${SEED})`, async () => {
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(request, async (payload) => {
        sent++;
        return acceptable(await exchange(server.url, payload));
      }),
      { numRuns: n, seed: SEED },
    );
    expect(sent).toBeGreaterThanOrEqual(n);
    const c = new sdk.KMSClient({ endpoint: server.url, region: 'us-east-1', credentials: creds, maxAttempts: 1 });
    expect((await c.send(new sdk.CreateKeyCommand({}))).KeyMetadata!.Arn).toMatch(/^arn:aws:kms:us-east-1:/);
  }, 1_200_000);
});
