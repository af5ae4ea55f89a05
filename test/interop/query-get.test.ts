import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { startEndpoint } from '../helpers/ec2-endpoint.js';
import { tempHome } from '../helpers/home.js';

/**
 * The Query services (EC2, STS) also take their parameters in the URL of a
 * GET, as AWS's do. The URL's Action names the service before the body is
 * read: a GET signed in its headers is answered by that service, and so is a
 * presigned URL (SigV4 in the query string; presigned-query.test.ts holds its
 * rules), never by the KMS's JSON 404 (breaker2's finding).
 */
const PY = `
import boto3, json, sys, urllib.request
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
endpoint, service, action = sys.argv[1:4]
session = boto3.Session(region_name="us-east-1")
def fetch(req):
    try:
        r = urllib.request.urlopen(req)
        return {"status": r.status, "body": r.read().decode()}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": e.read().decode()}
version = "2016-11-15" if service == "ec2" else "2011-06-15"
signed = AWSRequest(method="GET", url=f"{endpoint}/?Action={action}&Version={version}")
SigV4Auth(session.get_credentials(), service, "us-east-1").add_auth(signed)
p = signed.prepare()
headed = fetch(urllib.request.Request(p.url, headers=dict(p.headers), method="GET"))
presigned = fetch(session.client(service, endpoint_url=endpoint).generate_presigned_url(
    "describe_volumes" if service == "ec2" else "get_caller_identity", ExpiresIn=60, HttpMethod="GET"))
print(json.dumps({"headed": headed, "presigned": presigned}))
`;

describe('Query requests as a GET', () => {
  for (const [service, action, answer] of [
    ['ec2', 'DescribeVolumes', '<DescribeVolumesResponse'],
    ['sts', 'GetCallerIdentity', '<GetCallerIdentityResponse'],
  ] as const) {
    it(`${service} ${action}: signed in the headers or presigned, it is answered by ${service}`, async () => {
      const ep = await startEndpoint(tempHome('kmsvol-get-'));
      const r = spawnSync('python3', ['-c', PY, ep.url, service, action], { env: { ...process.env, ...ep.env }, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const { headed, presigned } = JSON.parse(r.stdout) as Record<'headed' | 'presigned', { status: number; body: string }>;
      expect(headed.status, headed.body).toBe(200);
      expect(headed.body).toContain(answer);
      expect(presigned.body).not.toContain('The KMS API');
      expect(presigned.status, presigned.body).toBe(200);
      expect(presigned.body).toContain(answer);
    });
  }
});
