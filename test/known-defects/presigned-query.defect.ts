import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { startEndpoint } from '../helpers/ec2-endpoint.js';
import { tempHome } from '../helpers/home.js';

/**
 * breaker2: a presigned URL (SigV4 in the query string: X-Amz-Algorithm,
 * X-Amz-Credential, X-Amz-Signature) is how tools prove an identity with STS
 * GetCallerIdentity (Vault's AWS auth method, EKS tokens from
 * aws-iam-authenticator). boto3 makes one with generate_presigned_url and the
 * endpoint is the one it was given. Today `kmsvol serve` routes a GET
 * carrying ?Action=… to the KMS and answers in the KMS's JSON: 404
 * UnknownOperationException "The KMS API is POST / with an X-Amz-Target
 * header." — neither the service asked nor its protocol. STS (and EC2) answer
 * such a URL as they answer the signed POST.
 */
const PY = `
import boto3, json, sys, urllib.request
url = boto3.client(sys.argv[1], endpoint_url=sys.argv[2], region_name="us-east-1").generate_presigned_url(sys.argv[3], ExpiresIn=60)
try:
    r = urllib.request.urlopen(url)
    print(json.dumps({"status": r.status, "body": r.read().decode()}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "body": e.read().decode()}))
`;

describe('presigned URLs (SigV4 in the query string)', () => {
  for (const [service, op, expected] of [
    ['sts', 'get_caller_identity', '<GetCallerIdentityResponse'],
    ['ec2', 'describe_volumes', '<DescribeVolumesResponse'],
  ] as const) {
    it(`${service} ${op}: answered by ${service}, not by the KMS`, async () => {
      const home = tempHome('kmsvol-presign-');
      const ep = await startEndpoint(home);
      const r = spawnSync('python3', ['-c', PY, service, ep.url, op], { env: { ...process.env, ...ep.env }, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const got = JSON.parse(r.stdout) as { status: number; body: string };
      expect(got.body).not.toContain('The KMS API');
      expect(got).toMatchObject({ status: 200 });
      expect(got.body).toContain(expected);
    });
  }
});
