import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as sdk from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import type { RunningEndpoint } from '../helpers/endpoint.js';
import { startEndpoint } from '../helpers/endpoint.js';

/**
 * A request for a service the endpoint does not serve, sent by the AWS CLI
 * itself, is answered naming that service and operation, in the error shape
 * that service's client parses — REST (ebs), Query (sns), JSON with an
 * X-Amz-Target (dynamodb) — and never as if it were a KMS request. KMS
 * requests signed for another service keep AWS's scope error.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
let server: RunningEndpoint;
let creds: { AccessKeyId: string; SecretAccessKey: string };
let home: string;

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-unserved-'));
  creds = kmsvol(home, ['iam', 'create-access-key', '--user-name', 'alice']).json.AccessKey;
  server = await startEndpoint(home);
});
afterAll(async () => {
  await server.stop();
  fs.rmSync(home, { recursive: true, force: true });
});

function aws(args: string[]) {
  const { AWS_PROFILE: _p, ...rest } = process.env;
  const env = {
    ...rest,
    AWS_ACCESS_KEY_ID: creds.AccessKeyId,
    AWS_SECRET_ACCESS_KEY: creds.SecretAccessKey,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_MAX_ATTEMPTS: '1',
    AWS_PAGER: '',
  };
  const r = spawnSync('/usr/bin/aws', ['--endpoint-url', server.url, ...args], { env, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stderr: r.stderr.trim() };
}

describe('a service the endpoint does not serve', () => {
  it.each([
    [['lambda', 'list-functions'], 'UnknownOperationException', 'ListFunctions', 'lambda'],
    [['sns', 'list-topics'], 'InvalidAction', 'ListTopics', 'sns'],
    [['dynamodb', 'list-tables'], 'UnknownOperationException', 'ListTables', 'dynamodb'],
  ])('aws %j: %s naming the service and the operation', (args, code, op, service) => {
    const r = aws(args);
    expect(r.code).toBe(254);
    expect(r.stderr).toContain(`An error occurred (${code}) when calling the ${op} operation`);
    expect(r.stderr).toContain(`it does not serve ${service}, so ${service} ${op} was not run`);
    expect(r.stderr).not.toContain('The KMS API');
  });

  it('the served services still answer, and a KMS request signed for another service keeps the scope error', async () => {
    const keys = aws(['kms', 'list-keys']);
    expect(keys.code, keys.stderr).toBe(0);
    expect(aws(['sts', 'get-caller-identity']).code).toBe(0);
    const client = new sdk.KMSClient({
      endpoint: server.url,
      region: 'us-east-1',
      credentials: { accessKeyId: creds.AccessKeyId, secretAccessKey: creds.SecretAccessKey },
      maxAttempts: 1,
    });
    client.middlewareStack.add(
      (next) => async (args) => {
        const req = args.request as { headers: Record<string, string> };
        req.headers.authorization = req.headers.authorization!.replace('/kms/aws4_request', '/s3/aws4_request');
        return next(args);
      },
      { step: 'finalizeRequest', priority: 'low' },
    );
    await expect(client.send(new sdk.ListKeysCommand({}))).rejects.toMatchObject({ name: 'InvalidSignatureException' });
    client.destroy();
  });
});
