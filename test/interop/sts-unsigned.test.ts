import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Endpoint } from '../helpers/ec2-endpoint.js';
import { startEndpoint } from '../helpers/ec2-endpoint.js';

/**
 * An STS form request that is unsigned, or whose Authorization header names
 * no credential scope, is answered by STS (its <ErrorResponse>, its status),
 * routed by the form's Action or Version once the body is read: it used to
 * be answered by EC2 (<Response><Errors>, 401) because it was refused before
 * the body was read.
 */
const stops: (() => void)[] = [];
/** One home for the file (tempHome's is removed after each test, under the endpoint's feet), removed after the last test. */
function fileHome(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  stops.unshift(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}
let ep: Endpoint;
beforeAll(async () => {
  ep = await startEndpoint(fileHome('kmsvol-sts-unsigned-'), 'us-east-1', (fn) => stops.push(fn));
});
afterAll(() => {
  for (const s of stops.reverse()) s();
});

function curl(body: string, headers: string[] = []) {
  const args = ['-s', '-o', '-', '-w', '\n%{http_code}', '-X', 'POST', '-H', 'Content-Type: application/x-www-form-urlencoded; charset=utf-8'];
  for (const h of headers) args.push('-H', h);
  const r = spawnSync('curl', [...args, '--data', body, `${ep.url}/`], { encoding: 'utf8' });
  const lines = r.stdout.trimEnd().split('\n');
  return { status: Number(lines.pop()), body: lines.join('\n') };
}

describe('STS requests refused before they are signed are answered by STS', () => {
  it('unsigned GetCallerIdentity (curl): MissingAuthenticationToken, 403, in <ErrorResponse>', () => {
    const r = curl('Action=GetCallerIdentity&Version=2011-06-15');
    expect(r.body).toContain('<ErrorResponse');
    expect(r.body).toContain('<Code>MissingAuthenticationToken</Code>');
    expect(r.body).not.toContain('<Response><Errors>');
    expect(r.status).toBe(403);
  });

  it("an unknown action with STS's Version is routed by the Version", () => {
    const r = curl('Action=GetSessionTokenX&Version=2011-06-15');
    expect(r.body).toContain('<ErrorResponse');
    expect(r.status).toBe(403);
  });

  it('an Authorization header that cannot be parsed (curl): IncompleteSignature, 400, in <ErrorResponse>', () => {
    const r = curl('Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::000000000000:role/x&RoleSessionName=s', [
      'Authorization: AWS4-HMAC-SHA256 garbage',
    ]);
    expect(r.body).toContain('<ErrorResponse');
    expect(r.body).toContain('<Code>IncompleteSignature</Code>');
    expect(r.status).toBe(400);
  });

  it('EC2 stays EC2: unsigned DescribeVolumes is answered in EC2 shape, 401', () => {
    const r = curl('Action=DescribeVolumes&Version=2016-11-15');
    expect(r.body).toContain('<Response><Errors>');
    expect(r.body).toContain('MissingAuthenticationToken');
    expect(r.status).toBe(401);
  });

  it("the AWS CLI with --no-sign-request and boto3 unsigned surface STS's code and status", () => {
    const env = { ...process.env, ...ep.env };
    const cli = spawnSync('aws', ['sts', 'get-caller-identity', '--no-sign-request', '--endpoint-url', ep.url], { env, encoding: 'utf8' });
    // aws-cli v1 exits 255 on a service error, v2 254: either way the code is the one STS uses.
    expect([254, 255]).toContain(cli.status);
    expect(cli.stderr).toContain('An error occurred (MissingAuthenticationToken) when calling the GetCallerIdentity operation');
    const py = spawnSync(
      'python3',
      [
        '-c',
        `import boto3, botocore, sys
from botocore.config import Config
c = boto3.client("sts", endpoint_url=sys.argv[1], region_name="us-east-1", config=Config(signature_version=botocore.UNSIGNED))
try:
    c.get_caller_identity(); print("no error")
except botocore.exceptions.ClientError as e:
    print(e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])`,
        ep.url,
      ],
      { env, encoding: 'utf8' },
    );
    expect(py.stdout.trim(), py.stderr).toBe('MissingAuthenticationToken 403');
  });
});
