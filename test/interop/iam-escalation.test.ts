import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import type { RunningEndpoint } from '../helpers/endpoint.js';
import { startEndpoint } from '../helpers/endpoint.js';

/**
 * Adversarial review (breaker2), a hostile client with the AWS CLI against
 * `kmsvol serve`: a user with only a KMS policy tries to become an
 * administrator through the IAM endpoint -- an access key for a new user
 * name (the local `kmsvol iam create-access-key` shortcut makes such a user
 * an admin), a policy on itself, a user of its own. Each is refused; and a
 * role's policy deleted mid-session stops the session at once. (Passes on
 * main; kept as the guard.)
 */
const AWS = '/usr/bin/aws';
type Creds = { AccessKeyId: string; SecretAccessKey: string; SessionToken?: string };
let home: string;
let server: RunningEndpoint;
let admin: Creds;
let mallory: Creds;

function aws(c: Creds, args: string[]) {
  const { AWS_PROFILE: _p, AWS_ENDPOINT_URL_KMS: _e, ...rest } = process.env;
  const env = {
    ...rest,
    AWS_ACCESS_KEY_ID: c.AccessKeyId,
    AWS_SECRET_ACCESS_KEY: c.SecretAccessKey,
    ...(c.SessionToken ? { AWS_SESSION_TOKEN: c.SessionToken } : {}),
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_PAGER: '',
  };
  const r = spawnSync(AWS, ['--endpoint-url', server.url, ...args], { env, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stderr: r.stderr.trim(), json: r.stdout.trim() ? JSON.parse(r.stdout) : undefined };
}
const policy = (...statements: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: statements });

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-iam-esc-'));
  admin = kmsvol(home, ['iam', 'create-access-key', '--user-name', 'admin']).json.AccessKey;
  server = await startEndpoint(home);
  expect(aws(admin, ['iam', 'create-user', '--user-name', 'mallory']).code).toBe(0);
  mallory = aws(admin, ['iam', 'create-access-key', '--user-name', 'mallory']).json.AccessKey;
  const kmsOnly = policy({ Effect: 'Allow', Action: 'kms:*', Resource: '*' });
  expect(aws(admin, ['iam', 'put-user-policy', '--user-name', 'mallory', '--policy-name', 'kms', '--policy-document', kmsOnly]).code).toBe(0);
});

afterAll(async () => {
  await server?.stop();
  fs.rmSync(home, { recursive: true, force: true });
});

describe('a KMS-only user cannot make itself an administrator through the IAM endpoint', () => {
  it('CreateAccessKey for a new user name is refused, and makes no user', () => {
    const r = aws(mallory, ['iam', 'create-access-key', '--user-name', 'newadmin']);
    expect(r.code).toBe(254);
    expect(r.stderr).toMatch(/\(AccessDenied\) when calling the CreateAccessKey operation/);
    expect(aws(admin, ['iam', 'get-user', '--user-name', 'newadmin']).stderr).toMatch(/NoSuchEntity/);
    // Even the admin's CreateAccessKey over the wire makes no user (only the local shortcut does).
    expect(aws(admin, ['iam', 'create-access-key', '--user-name', 'newadmin']).stderr).toMatch(/NoSuchEntity/);
  });

  it('PutUserPolicy on itself, CreateUser and CreateAccessKey for the admin are refused', () => {
    const all = policy({ Effect: 'Allow', Action: '*', Resource: '*' });
    expect(aws(mallory, ['iam', 'put-user-policy', '--user-name', 'mallory', '--policy-name', 'x', '--policy-document', all]).stderr).toMatch(/AccessDenied/);
    expect(aws(mallory, ['iam', 'create-user', '--user-name', 'm2']).stderr).toMatch(/AccessDenied/);
    expect(aws(mallory, ['iam', 'create-access-key', '--user-name', 'admin']).stderr).toMatch(/AccessDenied/);
    expect(aws(admin, ['iam', 'list-user-policies', '--user-name', 'mallory']).json.PolicyNames).toEqual(['kms']);
  });

  it("a role session loses its permissions as soon as the role's policy is deleted", () => {
    const trust = policy({ Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::000000000000:user/admin' }, Action: 'sts:AssumeRole' });
    expect(aws(admin, ['iam', 'create-role', '--role-name', 'r', '--assume-role-policy-document', trust]).code).toBe(0);
    const rp = policy({ Effect: 'Allow', Action: 'kms:ListKeys', Resource: '*' });
    expect(aws(admin, ['iam', 'put-role-policy', '--role-name', 'r', '--policy-name', 'p', '--policy-document', rp]).code).toBe(0);
    const a = aws(admin, ['sts', 'assume-role', '--role-arn', 'arn:aws:iam::000000000000:role/r', '--role-session-name', 'mid-session']);
    expect(a.code, a.stderr).toBe(0);
    const s = a.json.Credentials;
    expect(aws(s, ['kms', 'list-keys']).code).toBe(0);
    expect(aws(admin, ['iam', 'delete-role-policy', '--role-name', 'r', '--policy-name', 'p']).code).toBe(0);
    expect(aws(s, ['kms', 'list-keys']).stderr).toMatch(/AccessDeniedException/);
  });
});
