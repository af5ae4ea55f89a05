import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as sts from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import type { RunningEndpoint } from '../helpers/endpoint.js';
import { startEndpoint } from '../helpers/endpoint.js';

/**
 * The endpoint's STS against AWS's current STS model (the schemas
 * @aws-sdk/client-sts is generated with): every AssumeRole request member is
 * honoured (and seen to act) or refused with InvalidParameterValue naming
 * it, never ignored; every response member of AssumeRole and
 * GetCallerIdentity is given, or listed here with the reason it is not.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const ABSENT: Record<string, string> = {
  'AssumeRole.PackedPolicySize': 'session policies (Policy, PolicyArns) and session tags are refused, so there is nothing packed',
  'AssumeRole.SourceIdentity': 'SourceIdentity is refused',
  'AssumeRole.SessionTokenSize': 'answers MinimumSessionTokenSize, which is refused',
  'AssumeRole.SessionTokenUtilization': 'answers MinimumSessionTokenSize, which is refused',
};
/** A value of the model's type for each member the endpoint refuses. */
const SAMPLES: Record<string, unknown> = {
  PolicyArns: [{ arn: 'arn:aws:iam::aws:policy/ReadOnlyAccess' }],
  Policy: '{"Version":"2012-10-17","Statement":[]}',
  Tags: [{ Key: 'k', Value: 'v' }],
  TransitiveTagKeys: ['k'],
  ExternalId: 'ext-123456',
  SerialNumber: 'arn:aws:iam::000000000000:mfa/me',
  TokenCode: '123456',
  SourceIdentity: 'me',
  ProvidedContexts: [{ ProviderArn: 'arn:aws:iam::aws:contextProvider/IdentityCenter', ContextAssertion: 'x'.repeat(8) }],
  MinimumSessionTokenSize: 2048,
};
const HONOURED = ['RoleArn', 'RoleSessionName', 'DurationSeconds'];

function members(op: string, which: 4 | 5): string[] {
  const resolve = (x: unknown): unknown[] => {
    let r = x;
    while (typeof r === 'function') r = (r as () => unknown)();
    if (Array.isArray(r) && typeof r[0] === 'function') return resolve(r[0]);
    return r as unknown[];
  };
  const o = (sts as unknown as Record<string, unknown[]>)[`${op}$`]!;
  return resolve(o[which])[4] as string[];
}

let server: RunningEndpoint;
let home: string;
let client: sts.STSClient;
const ROLE = 'arn:aws:iam::000000000000:role/app';

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-sts-'));
  const ak = kmsvol(home, ['iam', 'create-access-key', '--user-name', 'alice']).json.AccessKey;
  const trust = JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::000000000000:user/alice' }, Action: 'sts:AssumeRole' }] });
  expect(kmsvol(home, ['iam', 'create-role', '--role-name', 'app', '--assume-role-policy-document', trust]).code).toBe(0);
  server = await startEndpoint(home);
  client = new sts.STSClient({
    endpoint: server.url,
    region: 'us-east-1',
    credentials: { accessKeyId: ak.AccessKeyId, secretAccessKey: ak.SecretAccessKey },
    maxAttempts: 1,
  });
});
afterAll(async () => {
  client.destroy();
  await server.stop();
  fs.rmSync(home, { recursive: true, force: true });
});

describe("STS, member by member against AWS's current model", () => {
  it('every AssumeRole request member is honoured or refused naming it', async () => {
    const inputs = members('AssumeRole', 4);
    expect(inputs).toEqual(expect.arrayContaining([...HONOURED, 'MinimumSessionTokenSize']));
    const unclassified = inputs.filter((m) => !HONOURED.includes(m) && !(m in SAMPLES));
    expect(unclassified).toEqual([]);
    for (const m of Object.keys(SAMPLES)) {
      const e = await client.send(new sts.AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: 'session', [m]: SAMPLES[m] } as sts.AssumeRoleCommandInput)).then(
        () => undefined,
        (x: Error) => x,
      );
      expect(e?.name, m).toBe('InvalidParameterValue');
      expect(e?.message, m).toContain(`${m} is not supported`);
    }
    // The honoured ones act: the session's name and duration are the asked ones.
    const out = await client.send(new sts.AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: 'named', DurationSeconds: 900 }));
    expect(out.AssumedRoleUser!.Arn).toBe('arn:aws:sts::000000000000:assumed-role/app/named');
    const left = out.Credentials!.Expiration!.getTime() - Date.now();
    expect(left).toBeGreaterThan(800_000);
    expect(left).toBeLessThanOrEqual(900_000);
  });

  it('every response member is given, or listed with the reason it is not', async () => {
    const missing: string[] = [];
    const assumed = await client.send(new sts.AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: 'out' }));
    const me = await client.send(new sts.GetCallerIdentityCommand({}));
    for (const [op, res] of [
      ['AssumeRole', assumed],
      ['GetCallerIdentity', me],
    ] as const)
      for (const m of members(op, 5)) if ((res as Record<string, unknown>)[m] === undefined && !ABSENT[`${op}.${m}`]) missing.push(`${op}.${m}`);
    expect(missing).toEqual([]);
    expect(Object.keys(ABSENT).filter((k) => !members(k.split('.')[0]!, 5).includes(k.split('.')[1]!))).toEqual([]);
  });
});
