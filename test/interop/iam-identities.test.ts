import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import type { RunningEndpoint } from '../helpers/endpoint.js';
import { startEndpoint } from '../helpers/endpoint.js';

/**
 * IAM identities against `kmsvol serve`, with the AWS CLI v2 and boto3 from
 * Debian as the clients: a user made by CreateUser has no permissions; the
 * default key policy (the account root statement) lets it in only once its
 * identity policy allows the action; an explicit Deny in it wins over the key
 * policy naming the user and over a grant; a role session has its role's
 * policies; MaxSessionDuration bounds AssumeRole. (docs/iam.md)
 */
const AWS = '/usr/bin/aws';
const PY = '/usr/bin/python3';
const ACCOUNT = '000000000000';

type Creds = { AccessKeyId: string; SecretAccessKey: string; SessionToken?: string };
let home: string;
let server: RunningEndpoint;
let admin: Creds;
let carol: Creds;
let key: string;
let blob: string;

function env(c: Creds): NodeJS.ProcessEnv {
  const { AWS_PROFILE: _p, AWS_ENDPOINT_URL_KMS: _e, ...rest } = process.env;
  return {
    ...rest,
    AWS_ACCESS_KEY_ID: c.AccessKeyId,
    AWS_SECRET_ACCESS_KEY: c.SecretAccessKey,
    ...(c.SessionToken ? { AWS_SESSION_TOKEN: c.SessionToken } : {}),
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_PAGER: '',
  };
}

function aws(c: Creds, args: string[]) {
  const r = spawnSync(AWS, ['--endpoint-url', server.url, ...args], { env: env(c), encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stderr: r.stderr.trim(), json: r.stdout.trim() ? JSON.parse(r.stdout) : undefined };
}

const policy = (...statements: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: statements });

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-iam-'));
  // The local shortcut makes an administrator (inline policy kmsvol-admin).
  admin = kmsvol(home, ['iam', 'create-access-key', '--user-name', 'admin']).json.AccessKey;
  server = await startEndpoint(home);
  expect(aws(admin, ['iam', 'create-user', '--user-name', 'carol']).json.User.Arn).toBe(`arn:aws:iam::${ACCOUNT}:user/carol`);
  carol = aws(admin, ['iam', 'create-access-key', '--user-name', 'carol']).json.AccessKey;
  const k = aws(admin, ['kms', 'create-key', '--description', 'default policy']).json.KeyMetadata;
  key = k.Arn;
  blob = aws(admin, ['kms', 'encrypt', '--key-id', key, '--plaintext', Buffer.from('secret').toString('base64')]).json.CiphertextBlob;
});

afterAll(async () => {
  await server?.stop();
  fs.rmSync(home, { recursive: true, force: true });
});

describe('IAM users and the default key policy (AWS CLI)', () => {
  it('the key has the default policy: the account root statement only', () => {
    const p = JSON.parse(aws(admin, ['kms', 'get-key-policy', '--key-id', key, '--policy-name', 'default']).json.Policy);
    expect(p.Statement.map((s: { Principal: unknown }) => s.Principal)).toEqual([{ AWS: `arn:aws:iam::${ACCOUNT}:root` }]);
  });

  it('a user with no identity policy is refused, in AWS words', () => {
    expect(aws(carol, ['iam', 'list-user-policies', '--user-name', 'carol']).code).toBe(254);
    expect(aws(admin, ['iam', 'list-user-policies', '--user-name', 'carol']).json).toEqual({ PolicyNames: [] });
    const r = aws(carol, ['kms', 'decrypt', '--ciphertext-blob', blob]);
    expect(r.code).toBe(254);
    expect(r.stderr).toBe(
      `An error occurred (AccessDeniedException) when calling the Decrypt operation: User: arn:aws:iam::${ACCOUNT}:user/carol is not authorized to perform: kms:Decrypt on resource: ${key} because no identity-based policy allows the kms:Decrypt action`,
    );
    // Actions only IAM policies decide are refused too.
    expect(aws(carol, ['kms', 'list-keys']).stderr).toMatch(/AccessDeniedException.*because no identity-based policy allows the kms:ListKeys action/);
  });

  it('put-user-policy allowing kms:Decrypt on the key lets it decrypt, and nothing else', () => {
    const doc = policy({ Sid: 'Dec', Effect: 'Allow', Action: 'kms:Decrypt', Resource: key });
    const put = aws(admin, ['iam', 'put-user-policy', '--user-name', 'carol', '--policy-name', 'use-key', '--policy-document', doc]);
    expect(put.code, put.stderr).toBe(0);
    // The CLI decodes IAM's URL-encoded document back to the JSON put.
    expect(aws(admin, ['iam', 'get-user-policy', '--user-name', 'carol', '--policy-name', 'use-key']).json).toEqual({
      UserName: 'carol',
      PolicyName: 'use-key',
      PolicyDocument: JSON.parse(doc),
    });
    expect(aws(admin, ['iam', 'list-user-policies', '--user-name', 'carol']).json.PolicyNames).toEqual(['use-key']);
    // An IAM action the endpoint does not have is IAM's to refuse, in IAM's shape.
    expect(aws(admin, ['iam', 'list-users']).stderr).toMatch(
      /^An error occurred \(InvalidAction\) when calling the ListUsers operation: Could not find operation ListUsers/,
    );
    const dec = aws(carol, ['kms', 'decrypt', '--ciphertext-blob', blob]);
    expect(dec.code, dec.stderr).toBe(0);
    expect(Buffer.from(dec.json.Plaintext, 'base64').toString()).toBe('secret');
    expect(aws(carol, ['kms', 'encrypt', '--key-id', key, '--plaintext', 'aGk=']).stderr).toMatch(
      /AccessDeniedException.*kms:Encrypt.*because no identity-based policy allows/,
    );
  });

  it('a key policy that names the user lets it in without any identity policy', () => {
    aws(admin, ['iam', 'create-user', '--user-name', 'dave']);
    const dave = aws(admin, ['iam', 'create-access-key', '--user-name', 'dave']).json.AccessKey;
    const k2 = aws(admin, ['kms', 'create-key']).json.KeyMetadata.Arn;
    const kp = policy(
      { Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' },
      { Sid: 'Key users', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:user/dave` }, Action: ['kms:Encrypt', 'kms:Decrypt'], Resource: '*' },
    );
    expect(aws(admin, ['kms', 'put-key-policy', '--key-id', k2, '--policy-name', 'default', '--policy', kp]).code).toBe(0);
    const enc = aws(dave, ['kms', 'encrypt', '--key-id', k2, '--plaintext', 'aGk=']);
    expect(enc.code, enc.stderr).toBe(0);
    expect(aws(dave, ['kms', 'disable-key', '--key-id', k2]).code).toBe(254);
  });

  it('an explicit Deny in the identity policy wins over the key policy and over a grant', () => {
    const kp = policy(
      { Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' },
      { Sid: 'carol directly', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:user/carol` }, Action: 'kms:Decrypt', Resource: '*' },
    );
    expect(aws(admin, ['kms', 'put-key-policy', '--key-id', key, '--policy-name', 'default', '--policy', kp]).code).toBe(0);
    expect(
      aws(admin, ['kms', 'create-grant', '--key-id', key, '--grantee-principal', `arn:aws:iam::${ACCOUNT}:user/carol`, '--operations', 'Decrypt']).code,
    ).toBe(0);
    const deny = policy({ Effect: 'Deny', Action: 'kms:Decrypt', Resource: '*' });
    expect(aws(admin, ['iam', 'put-user-policy', '--user-name', 'carol', '--policy-name', 'deny', '--policy-document', deny]).code).toBe(0);
    const r = aws(carol, ['kms', 'decrypt', '--ciphertext-blob', blob]);
    expect(r.stderr).toBe(
      `An error occurred (AccessDeniedException) when calling the Decrypt operation: User: arn:aws:iam::${ACCOUNT}:user/carol is not authorized to perform: kms:Decrypt on resource: ${key} with an explicit deny in an identity-based policy`,
    );
    expect(aws(admin, ['iam', 'delete-user-policy', '--user-name', 'carol', '--policy-name', 'deny']).code).toBe(0);
    expect(aws(carol, ['kms', 'decrypt', '--ciphertext-blob', blob]).code).toBe(0);
    const gone = aws(admin, ['iam', 'get-user-policy', '--user-name', 'carol', '--policy-name', 'deny']);
    expect(gone.code).toBe(254);
    expect(gone.stderr).toMatch(/\(NoSuchEntity\) when calling the GetUserPolicy operation/);
  });

  it('a malformed identity policy is refused with MalformedPolicyDocument', () => {
    const r = aws(admin, [
      'iam',
      'put-user-policy',
      '--user-name',
      'carol',
      '--policy-name',
      'x',
      '--policy-document',
      '{"Statement":[{"Effect":"Allow","Action":"kms:Decrypt"}]}',
    ]);
    expect(r.code).toBe(254);
    expect(r.stderr).toMatch(/\(MalformedPolicyDocument\) when calling the PutUserPolicy operation: .*needs a Resource/);
    expect(
      aws(admin, [
        'iam',
        'put-user-policy',
        '--user-name',
        'nobody',
        '--policy-name',
        'x',
        '--policy-document',
        policy({ Effect: 'Allow', Action: '*', Resource: '*' }),
      ]).stderr,
    ).toMatch(/\(NoSuchEntity\).*The user with name nobody cannot be found/);
  });
});

describe('a role session has its role policies (boto3)', () => {
  it('assumes a role trusted by the account, within MaxSessionDuration, and decrypts by the role policy only', () => {
    const trust = policy({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'sts:AssumeRole' });
    const role = aws(admin, ['iam', 'create-role', '--role-name', 'decrypter', '--assume-role-policy-document', trust, '--max-session-duration', '7200']);
    expect(role.code, role.stderr).toBe(0);
    expect(role.json.Role.MaxSessionDuration).toBe(7200);
    expect(role.json.Role.AssumeRolePolicyDocument).toEqual(JSON.parse(trust));
    const rp = policy({ Effect: 'Allow', Action: 'kms:Decrypt', Resource: key });
    expect(aws(admin, ['iam', 'put-role-policy', '--role-name', 'decrypter', '--policy-name', 'dec', '--policy-document', rp]).code).toBe(0);
    const script = `
import boto3, json, sys, base64
from botocore.exceptions import ClientError
url, key, blob = sys.argv[1], sys.argv[2], sys.argv[3]
admin = boto3.Session(aws_access_key_id=sys.argv[4], aws_secret_access_key=sys.argv[5], region_name='us-east-1')
carol = boto3.Session(aws_access_key_id=sys.argv[6], aws_secret_access_key=sys.argv[7], region_name='us-east-1')
out = {}
out['rolePolicy'] = admin.client('iam', endpoint_url=url).get_role_policy(RoleName='decrypter', PolicyName='dec')['PolicyDocument']
out['listed'] = admin.client('iam', endpoint_url=url).list_role_policies(RoleName='decrypter')['PolicyNames']
arn = 'arn:aws:iam::${ACCOUNT}:role/decrypter'
def code(f):
    try:
        f(); return 'ok'
    except ClientError as e:
        return e.response['Error']['Code']
# carol's own policy allows only kms:Decrypt: the account-wide trust needs sts:AssumeRole in it too.
out['carolAssume'] = code(lambda: carol.client('sts', endpoint_url=url).assume_role(RoleArn=arn, RoleSessionName='s1'))
sts = admin.client('sts', endpoint_url=url)
out['tooLong'] = code(lambda: sts.assume_role(RoleArn=arn, RoleSessionName='s1', DurationSeconds=7201))
c = sts.assume_role(RoleArn=arn, RoleSessionName='s1', DurationSeconds=7200)['Credentials']
s = boto3.Session(aws_access_key_id=c['AccessKeyId'], aws_secret_access_key=c['SecretAccessKey'], aws_session_token=c['SessionToken'], region_name='us-east-1')
kms = s.client('kms', endpoint_url=url)
out['decrypt'] = kms.decrypt(CiphertextBlob=base64.b64decode(blob))['Plaintext'].decode()
try:
    kms.encrypt(KeyId=key, Plaintext=b'x'); out['encrypt'] = 'ok'
except ClientError as e:
    out['encrypt'] = e.response['Error']['Message']
print(json.dumps(out))
`;
    const r = spawnSync(PY, ['-c', script, server.url, key, blob, admin.AccessKeyId, admin.SecretAccessKey, carol.AccessKeyId, carol.SecretAccessKey], {
      encoding: 'utf8',
      env: { ...env(admin), AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' },
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.rolePolicy).toEqual(JSON.parse(rp));
    expect(out.listed).toEqual(['dec']);
    expect(out.carolAssume).toBe('AccessDenied');
    expect(out.tooLong).toBe('ValidationError');
    expect(out.decrypt).toBe('secret');
    expect(out.encrypt).toBe(
      `User: arn:aws:sts::${ACCOUNT}:assumed-role/decrypter/s1 is not authorized to perform: kms:Encrypt on resource: ${key} because no identity-based policy allows the kms:Encrypt action`,
    );
  });
});

describe('the IAM endpoint decides with the global condition keys AWS sets for it (docs/iam.md)', () => {
  it('a Deny on aws:RequestedRegion us-east-1 (IAM is global) refuses the IAM call, whatever region signs it', () => {
    const dave = (() => {
      aws(admin, ['iam', 'create-user', '--user-name', 'dave']);
      return aws(admin, ['iam', 'create-access-key', '--user-name', 'dave']).json.AccessKey as Creds;
    })();
    const put = (deny: object) =>
      aws(admin, [
        'iam',
        'put-user-policy',
        '--user-name',
        'dave',
        '--policy-name',
        'p',
        '--policy-document',
        policy({ Effect: 'Allow', Action: 'iam:GetUser', Resource: '*' }, { Effect: 'Deny', Action: 'iam:GetUser', Resource: '*', Condition: deny }),
      ]);
    expect(put({ StringEquals: { 'aws:RequestedRegion': 'eu-west-1' } }).code).toBe(0);
    expect(aws(dave, ['iam', 'get-user', '--region', 'eu-west-1']).json.User.UserName).toBe('dave');
    expect(put({ StringEquals: { 'aws:RequestedRegion': 'us-east-1' } }).code).toBe(0);
    const r = aws(dave, ['iam', 'get-user', '--region', 'eu-west-1']);
    expect(r.code).toBe(254);
    expect(r.stderr).toContain('AccessDenied');
    // A global key kmsvol does not put in the request context is refused when the policy is put, naming it.
    const bad = put({ IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } });
    expect(bad.code).toBe(254);
    expect(bad.stderr).toContain('MalformedPolicyDocument');
    const bad2 = put({ StringEquals: { 'aws:SourceVpc': 'vpc-1' } });
    expect(bad2.stderr).toContain('aws:SourceVpc');
  });
});
