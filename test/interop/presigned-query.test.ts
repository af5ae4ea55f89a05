import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { startEndpoint } from '../helpers/ec2-endpoint.js';
import { tempHome } from '../helpers/home.js';

/**
 * breaker2: a presigned URL (SigV4 in the query string: X-Amz-Algorithm,
 * X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders,
 * X-Amz-Signature, X-Amz-Security-Token) is how tools prove an identity with
 * STS GetCallerIdentity (Vault's AWS auth method, EKS tokens from
 * aws-iam-authenticator). boto3 makes one with generate_presigned_url; the
 * URL is then fetched by anyone (here curl). STS (and EC2) verify such a URL
 * as received, enforce its expiry, and answer as they answer the signed POST.
 *
 * As received includes the method: botocore signs a Query operation's URL
 * for POST unless asked for GET (HttpMethod='GET', as EKS token generators
 * do), and AWS refuses such a URL fetched with GET (SignatureDoesNotMatch,
 * boto/boto3#756), so this endpoint does too.
 */
const PY = `
import boto3, json, sys, datetime, urllib.request
from unittest import mock
service, endpoint, op, expires, age, method = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
client = boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")
if age:
    # botocore's presigner, as of a time "age" seconds ago (the URL is then that old).
    then = datetime.datetime.utcnow() - datetime.timedelta(seconds=age)
    import botocore.auth
    if hasattr(botocore.auth, "get_current_datetime"):
        patched = mock.patch("botocore.auth.get_current_datetime", return_value=then)
    else:
        patched = mock.patch("botocore.auth.datetime")
    with patched as d:
        if not hasattr(botocore.auth, "get_current_datetime"):
            d.datetime.utcnow.return_value = then
        url = client.generate_presigned_url(op, ExpiresIn=expires, HttpMethod=method)
else:
    url = client.generate_presigned_url(op, ExpiresIn=expires, HttpMethod=method)
try:
    r = urllib.request.urlopen(urllib.request.Request(url, method="GET"))
    print(json.dumps({"url": url, "status": r.status, "body": r.read().decode()}))
except urllib.error.HTTPError as e:
    print(json.dumps({"url": url, "status": e.code, "body": e.read().decode()}))
`;

type Got = { url: string; status: number; body: string };

/** boto3's presigned URL for `op` (signed for `method`, `age` seconds ago, good for `expires` s), and what a GET of it got. */
function presign(env: Record<string, string>, service: string, url: string, op: string, expires = 60, age = 0, method = 'GET'): Got {
  const r = spawnSync('python3', ['-c', PY, service, url, op, String(expires), String(age), method], { env: { ...process.env, ...env }, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Got;
}

function curl(url: string, method = 'GET'): { status: number; body: string } {
  const r = spawnSync('curl', ['-sS', '-X', method, '-w', '\n%{http_code}', url], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  const at = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(at + 1)), body: r.stdout.slice(0, at) };
}

describe('presigned URLs (SigV4 in the query string)', () => {
  for (const [service, op, expected] of [
    ['sts', 'get_caller_identity', '<GetCallerIdentityResponse'],
    ['ec2', 'describe_volumes', '<DescribeVolumesResponse'],
  ] as const) {
    it(`${service} ${op}: answered by ${service}, not by the KMS`, async () => {
      const home = tempHome('kmsvol-presign-');
      const ep = await startEndpoint(home);
      const got = presign(ep.env, service, ep.url, op);
      expect(got.body).not.toContain('The KMS API');
      expect(got).toMatchObject({ status: 200 });
      expect(got.body).toContain(expected);
    });
  }

  it("sts: curl GETs boto3's URL and gets the signer's identity; a changed URL does not match; an expired one is refused", async () => {
    const home = tempHome('kmsvol-presign-');
    const ep = await startEndpoint(home);
    const url = presign(ep.env, 'sts', ep.url, 'get_caller_identity').url;
    expect(url).toContain('X-Amz-Signature=');
    const ok = curl(url);
    expect(ok.status, ok.body).toBe(200);
    expect(ok.body).toContain('<Arn>arn:aws:iam::000000000000:user/tester</Arn>');
    // One parameter more than was signed: the signature no longer matches (STS's words, its XML).
    const changed = curl(`${url}&Extra=1`);
    expect(changed.status).toBe(403);
    expect(changed.body).toContain('<ErrorResponse');
    expect(changed.body).toContain('<Code>SignatureDoesNotMatch</Code>');
    // Another signature: refused the same way.
    const forged = curl(url.replace(/X-Amz-Signature=[0-9a-f]{64}/, `X-Amz-Signature=${'0'.repeat(64)}`));
    expect(forged.body).toContain('<Code>SignatureDoesNotMatch</Code>');
    // Signed 120 s ago for 60 s: expired, though well within the 15 minutes of clock skew a header-signed request has.
    const old = presign(ep.env, 'sts', ep.url, 'get_caller_identity', 60, 120);
    expect(old.status, old.body).toBe(403);
    expect(old.body).toContain('<Code>SignatureDoesNotMatch</Code>');
    expect(old.body).toContain('Signature expired');
    // Signed 120 s ago for 300 s: still good.
    expect(presign(ep.env, 'sts', ep.url, 'get_caller_identity', 300, 120).status).toBe(200);
  });

  it("sts: botocore's default (a URL signed for POST) is refused when fetched with GET, as AWS refuses it, and answered when POSTed", async () => {
    const home = tempHome('kmsvol-presign-');
    const ep = await startEndpoint(home);
    const got = presign(ep.env, 'sts', ep.url, 'get_caller_identity', 60, 0, 'POST');
    expect(got.status).toBe(403);
    expect(got.body).toContain('<Code>SignatureDoesNotMatch</Code>');
    const posted = curl(got.url, 'POST');
    expect(posted.status, posted.body).toBe(200);
    expect(posted.body).toContain('<GetCallerIdentityResponse');
  });

  it('ec2: an expired presigned URL is RequestExpired in EC2 XML', async () => {
    const home = tempHome('kmsvol-presign-');
    const ep = await startEndpoint(home);
    const old = presign(ep.env, 'ec2', ep.url, 'describe_volumes', 60, 120);
    expect(old.status, old.body).toBe(400);
    expect(old.body).toContain('<Response><Errors>');
    expect(old.body).toContain('<Code>RequestExpired</Code>');
  });

  it('sts: a URL presigned with session credentials (X-Amz-Security-Token) names the assumed role; without its token it is refused', async () => {
    const home = tempHome('kmsvol-presign-');
    const ep = await startEndpoint(home);
    const trust = JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::000000000000:user/tester' }, Action: 'sts:AssumeRole' }] });
    expect(kmsvol(home, ['iam', 'create-role', '--role-name', 'vault', '--assume-role-policy-document', trust]).code).toBe(0);
    const assumed = spawnSync(
      'aws',
      ['sts', 'assume-role', '--role-arn', 'arn:aws:iam::000000000000:role/vault', '--role-session-name', 'login', '--endpoint-url', ep.url],
      { env: { ...process.env, ...ep.env }, encoding: 'utf8' },
    );
    expect(assumed.status, assumed.stderr).toBe(0);
    const c = JSON.parse(assumed.stdout).Credentials;
    const session = { ...ep.env, AWS_ACCESS_KEY_ID: c.AccessKeyId, AWS_SECRET_ACCESS_KEY: c.SecretAccessKey, AWS_SESSION_TOKEN: c.SessionToken };
    const got = presign(session, 'sts', ep.url, 'get_caller_identity');
    expect(got.url).toContain('X-Amz-Security-Token=');
    expect(got.status, got.body).toBe(200);
    expect(got.body).toContain('<Arn>arn:aws:sts::000000000000:assumed-role/vault/login</Arn>');
    const bare = curl(got.url.replace(/&?X-Amz-Security-Token=[^&]*/, ''));
    expect(bare.status).toBe(403);
    expect(bare.body).toContain('<Code>InvalidClientTokenId</Code>');
  });
});
