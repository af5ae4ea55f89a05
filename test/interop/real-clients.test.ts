import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as sdk from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/kms/audit.js';
import { kmsvol, ROOT } from '../helpers/cli.js';
import type { RunningEndpoint } from '../helpers/endpoint.js';
import { startEndpoint } from '../helpers/endpoint.js';

/**
 * Clients nobody here wrote, against `kmsvol serve`, each with its defaults:
 * the AWS CLI v2 and boto3 from Debian (/usr/bin/aws, /usr/bin/python3: not
 * whatever `aws` or `python3` a PATH finds first), and @aws-sdk/client-kms.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const AWS = '/usr/bin/aws';
const PY = '/usr/bin/python3';
const ACCOUNT = '372922107867';
const REGION = 'us-east-1';

let home: string;
let server: RunningEndpoint;
let alice: { AccessKeyId: string; SecretAccessKey: string };
let bob: { AccessKeyId: string; SecretAccessKey: string };

/** The environment a user of the AWS tools has: credentials, a region, no config files of their own. */
function awsEnv(creds = alice, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { AWS_PROFILE: _p, AWS_ENDPOINT_URL_KMS: _e, ...rest } = process.env;
  return {
    ...rest,
    AWS_ACCESS_KEY_ID: creds.AccessKeyId,
    AWS_SECRET_ACCESS_KEY: creds.SecretAccessKey,
    AWS_DEFAULT_REGION: REGION,
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_PAGER: '',
    ...extra,
  };
}

function aws(args: string[], opts: { creds?: typeof alice; url?: string; env?: Record<string, string> } = {}) {
  const r = spawnSync(AWS, ['--endpoint-url', opts.url ?? server.url, ...args], { env: awsEnv(opts.creds, opts.env), encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json: r.stdout.trim() ? JSON.parse(r.stdout) : undefined };
}

const sdkClient = (region = REGION) =>
  new sdk.KMSClient({ endpoint: server.url, region, credentials: { accessKeyId: alice.AccessKeyId, secretAccessKey: alice.SecretAccessKey }, maxAttempts: 1 });

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-clients-'));
  alice = kmsvol(home, ['iam', 'create-access-key', '--user-name', 'alice'], { KMSVOL_ACCOUNT_ID: ACCOUNT }).json.AccessKey;
  bob = kmsvol(home, ['iam', 'create-access-key', '--user-name', 'bob'], { KMSVOL_ACCOUNT_ID: ACCOUNT }).json.AccessKey;
  const trust = JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:user/alice` }, Action: 'sts:AssumeRole' }] });
  const role = kmsvol(home, ['iam', 'create-role', '--role-name', 'auditor', '--assume-role-policy-document', trust], { KMSVOL_ACCOUNT_ID: ACCOUNT });
  expect(role.code, role.stderr).toBe(0);
  server = await startEndpoint(home, [], { KMSVOL_ACCOUNT_ID: ACCOUNT });
});

afterAll(async () => {
  await server?.stop();
  fs.rmSync(home, { recursive: true, force: true });
});

describe('the AWS CLI v2 from Debian', () => {
  it('is the one this test means to run', () => {
    const v = spawnSync(AWS, ['--version'], { encoding: 'utf8' });
    expect(v.stdout).toMatch(/^aws-cli\/2\.\S+ Python\/\S+ Linux\/\S+ source\/\S+\.debian/);
  });

  it("replays seed 003's KMS transcript with the transcript's fields and us-east-1 ARNs", () => {
    const first = aws(['kms', 'create-key', '--description', 'my-key']).json.KeyMetadata.KeyId;
    expect(aws(['kms', 'create-alias', '--alias-name', 'alias/my-key', '--target-key-id', first]).code).toBe(0);
    const aliases = aws(['kms', 'list-aliases']).json.Aliases.filter((a: { AliasName: string }) => a.AliasName === 'alias/my-key');
    expect(aliases).toEqual([
      {
        AliasName: 'alias/my-key',
        AliasArn: `arn:aws:kms:us-east-1:${ACCOUNT}:alias/my-key`,
        TargetKeyId: first,
        CreationDate: expect.any(String),
        LastUpdatedDate: expect.any(String),
      },
    ]);
    const dk = aws(['kms', 'generate-data-key', '--key-id', 'alias/my-key', '--key-spec', 'AES_256']).json;
    expect(Object.keys(dk).sort()).toEqual(['CiphertextBlob', 'KeyId', 'Plaintext']);
    expect(dk.KeyId).toBe(`arn:aws:kms:us-east-1:${ACCOUNT}:key/${first}`);
    expect(Buffer.from(dk.Plaintext, 'base64')).toHaveLength(32);
    const dec = aws(['kms', 'decrypt', '--ciphertext-blob', dk.CiphertextBlob]).json;
    expect(dec).toEqual({ KeyId: dk.KeyId, Plaintext: dk.Plaintext, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' });
    const second = aws(['kms', 'create-key']).json.KeyMetadata.KeyId;
    const upd = aws(['kms', 'update-alias', '--alias-name', 'alias/my-key', '--target-key-id', second]);
    expect(upd.code, upd.stderr).toBe(0);
    expect(upd.stdout).toBe('');
    expect(aws(['kms', 'list-aliases']).json.Aliases.find((a: { AliasName: string }) => a.AliasName === 'alias/my-key').TargetKeyId).toBe(second);
    const re = aws(['kms', 're-encrypt', '--ciphertext-blob', dk.CiphertextBlob, '--destination-key-id', 'alias/my-key']).json;
    expect(re).toEqual({
      CiphertextBlob: expect.any(String),
      SourceKeyId: dk.KeyId,
      KeyId: `arn:aws:kms:us-east-1:${ACCOUNT}:key/${second}`,
      SourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      DestinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
    });
    expect(aws(['kms', 'disable-key', '--key-id', first]).code).toBe(0);
    const refused = aws(['kms', 'decrypt', '--ciphertext-blob', dk.CiphertextBlob]);
    expect(refused.code).toBe(254);
    expect(refused.stderr.trim()).toBe(
      `An error occurred (DisabledException) when calling the Decrypt operation: arn:aws:kms:us-east-1:${ACCOUNT}:key/${first} is disabled.`,
    );
    expect(aws(['kms', 'decrypt', '--ciphertext-blob', re.CiphertextBlob]).json).toEqual({
      KeyId: re.KeyId,
      Plaintext: dk.Plaintext,
      EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
    });
  });

  it('runs the other KMS commands kmsvol answers, and a usage error exits 252 before reaching the server', () => {
    const key = aws(['kms', 'create-key', '--tags', 'TagKey=team,TagValue=storage']).json.KeyMetadata;
    expect(key.Arn).toBe(`arn:aws:kms:us-east-1:${ACCOUNT}:key/${key.KeyId}`);
    const ok = (args: string[]) => {
      const r = aws(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      return r.json;
    };
    expect(ok(['kms', 'describe-key', '--key-id', key.Arn]).KeyMetadata.KeyState).toBe('Enabled');
    expect(ok(['kms', 'list-keys']).Keys.map((k: { KeyId: string }) => k.KeyId)).toContain(key.KeyId);
    ok(['kms', 'update-key-description', '--key-id', key.KeyId, '--description', 'cli']);
    expect(ok(['kms', 'list-resource-tags', '--key-id', key.KeyId]).Tags).toEqual([{ TagKey: 'team', TagValue: 'storage' }]);
    const enc = ok(['kms', 'encrypt', '--key-id', key.KeyId, '--plaintext', 'aGVsbG8=', '--encryption-context', 'app=web']);
    expect(ok(['kms', 'decrypt', '--ciphertext-blob', enc.CiphertextBlob, '--encryption-context', 'app=web']).Plaintext).toBe('aGVsbG8=');
    expect(Buffer.from(ok(['kms', 'generate-random', '--number-of-bytes', '16']).Plaintext, 'base64')).toHaveLength(16);
    ok(['kms', 'enable-key-rotation', '--key-id', key.KeyId]);
    expect(ok(['kms', 'get-key-rotation-status', '--key-id', key.KeyId]).KeyRotationEnabled).toBe(true);
    const sched = ok(['kms', 'schedule-key-deletion', '--key-id', key.KeyId, '--pending-window-in-days', '7']);
    expect(sched.KeyState).toBe('PendingDeletion');
    ok(['kms', 'cancel-key-deletion', '--key-id', key.KeyId]);
    const grant = ok(['kms', 'create-grant', '--key-id', key.KeyId, '--grantee-principal', `arn:aws:iam::${ACCOUNT}:user/bob`, '--operations', 'Decrypt']);
    expect(ok(['kms', 'list-grants', '--key-id', key.KeyId]).Grants[0].GrantId).toBe(grant.GrantId);
    ok(['kms', 'revoke-grant', '--key-id', key.KeyId, '--grant-id', grant.GrantId]);
    expect(JSON.parse(ok(['kms', 'get-key-policy', '--key-id', key.KeyId, '--policy-name', 'default']).Policy).Statement).toHaveLength(1);
    const usage = aws(['kms', 'encrypt', '--key-id', key.KeyId]);
    expect(usage.code).toBe(252);
  });

  it('text that is not UTF-8: the AWS CLI and kmsvol refuse a file:// alike; a byte it sends as \\udcff and a JSON \\ud800 are ValidationException; none opens a blob made under U+FFFD', () => {
    const key = aws(['kms', 'create-key']).json.KeyMetadata.KeyId;
    const blob = aws(['kms', 'encrypt', '--key-id', key, '--plaintext', 'aGVsbG8=', '--encryption-context', '{"a":"\ufffd"}']).json.CiphertextBlob;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-utf8-'));
    try {
      const bad = path.join(dir, 'ctx.json');
      fs.writeFileSync(bad, Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xff]), Buffer.from('"}')]));
      // The AWS CLI's own words for a file:// that is not UTF-8; kmsvol says the same, exit 252 both.
      const theirs = aws(['kms', 'decrypt', '--ciphertext-blob', blob, '--encryption-context', `file://${bad}`]);
      const ours = kmsvol(home, ['kms', 'encrypt', '--key-id', key, '--plaintext', 'aGVsbG8=', '--encryption-context', `file://${bad}`]);
      expect([theirs.code, ours.code]).toEqual([252, 252]);
      const said = (err: string) =>
        err
          .split('\n')
          .find((l) => l.includes('Error parsing parameter'))!
          .replace(/^kmsvol: error: /, '');
      expect(said(theirs.stderr)).toBe(
        `Error parsing parameter '--encryption-context': Unable to load paramfile (${bad}), text contents could not be decoded.  If this is a binary file, please use the fileb:// prefix instead of the file:// prefix.`,
      );
      expect(said(ours.stderr)).toBe(said(theirs.stderr));
      // A byte that is not UTF-8 in an argument: the AWS CLI sends it as the lone surrogate \udcff; the server refuses it.
      const sh = (cmd: string, env: NodeJS.ProcessEnv) => spawnSync('/bin/sh', ['-c', cmd], { env, encoding: 'utf8', timeout: 60_000 });
      const arg = `"$(printf 'a=\\377')"`;
      const viaAws = sh(`exec ${AWS} --endpoint-url ${server.url} kms decrypt --ciphertext-blob ${blob} --encryption-context ${arg}`, awsEnv());
      expect(viaAws.status).toBe(254);
      expect(viaAws.stdout).toBe('');
      expect(viaAws.stderr.trim()).toBe(
        "An error occurred (ValidationException) when calling the Decrypt operation: 1 validation error detected: Value at 'encryptionContext' failed to satisfy constraint: Member must be valid Unicode text; it holds an unpaired UTF-16 surrogate (\\udcff at UTF-16 offset 0), which is no character. Send text as UTF-8 (a character outside the BMP as its surrogate pair).",
      );
      // kmsvol cannot see that byte once node has decoded it as U+FFFD, so it reads the raw command line and refuses: exit 252, nothing sent.
      const viaKmsvol = sh(
        `exec "${process.execPath}" "${path.join(ROOT, 'bin/kmsvol.js')}" --region ${REGION} kms decrypt --ciphertext-blob ${blob} --encryption-context ${arg}`,
        {
          ...process.env,
          KMSVOL_HOME: home,
          KMSVOL_ACCOUNT_ID: ACCOUNT,
        },
      );
      expect(viaKmsvol.status).toBe(252);
      expect(viaKmsvol.stdout).toBe('');
      expect(viaKmsvol.stderr).toContain('kmsvol: error: An argument is not valid UTF-8 text');
      // U+FFFD typed as itself is text like any other, and opens the blob.
      expect(aws(['kms', 'decrypt', '--ciphertext-blob', blob, '--encryption-context', 'a=\ufffd']).json.Plaintext).toBe('aGVsbG8=');
      // A JSON escape \ud800 (Python keeps it, botocore sends it): ValidationException from the server, exit 254.
      const lone = aws(['kms', 'decrypt', '--ciphertext-blob', blob, '--encryption-context', '{"a":"\\ud800"}']);
      expect(lone.code).toBe(254);
      expect(lone.stderr).toContain('(ValidationException) when calling the Decrypt operation: 1 validation error detected:');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('STS refuses what it does not honour: session policies, external ids, trust conditions, chained sessions over 1 h', () => {
    const role = `arn:aws:iam::${ACCOUNT}:role/auditor`;
    const policyArns = aws(['sts', 'assume-role', '--role-arn', role, '--role-session-name', 'pa', '--policy-arns', `arn=arn:aws:iam::${ACCOUNT}:policy/x`]);
    expect(policyArns.code).toBe(254);
    expect(policyArns.stderr).toContain('(InvalidParameterValue) when calling the AssumeRole operation: PolicyArns is not supported');
    const external = aws(['sts', 'assume-role', '--role-arn', role, '--role-session-name', 'ex', '--external-id', 'nope']);
    expect(external.stderr).toContain('(InvalidParameterValue) when calling the AssumeRole operation: ExternalId is not supported');
    const conditional = JSON.stringify({
      Statement: [{ Effect: 'Allow', Principal: { AWS: '*' }, Action: 'sts:AssumeRole', Condition: { StringEquals: { 'aws:SourceIp': '1.2.3.4' } } }],
    });
    const r = kmsvol(home, ['iam', 'create-role', '--role-name', 'conditional', '--assume-role-policy-document', conditional], { KMSVOL_ACCOUNT_ID: ACCOUNT });
    expect(r.code).toBe(254);
    expect(r.stderr).toContain('(MalformedPolicyDocument)');
    const open = JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: '*' }, Action: 'sts:AssumeRole' }] });
    expect(kmsvol(home, ['iam', 'create-role', '--role-name', 'open', '--assume-role-policy-document', open], { KMSVOL_ACCOUNT_ID: ACCOUNT }).code).toBe(0);
    const s = aws(['sts', 'assume-role', '--role-arn', `arn:aws:iam::${ACCOUNT}:role/open`, '--role-session-name', 'first', '--duration-seconds', '900']).json
      .Credentials;
    const env = { AWS_ACCESS_KEY_ID: s.AccessKeyId, AWS_SECRET_ACCESS_KEY: s.SecretAccessKey, AWS_SESSION_TOKEN: s.SessionToken };
    const chained = aws(
      ['sts', 'assume-role', '--role-arn', `arn:aws:iam::${ACCOUNT}:role/open`, '--role-session-name', 'second', '--duration-seconds', '43200'],
      { env },
    );
    expect(chained.stderr).toContain('The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.');
  });

  it('sts get-caller-identity and assume-role; the session is the role', () => {
    expect(aws(['sts', 'get-caller-identity']).json).toEqual({
      UserId: expect.stringMatching(/^AIDA/),
      Account: ACCOUNT,
      Arn: `arn:aws:iam::${ACCOUNT}:user/alice`,
    });
    const s = aws(['sts', 'assume-role', '--role-arn', `arn:aws:iam::${ACCOUNT}:role/auditor`, '--role-session-name', 'cli']).json;
    expect(s.AssumedRoleUser.Arn).toBe(`arn:aws:sts::${ACCOUNT}:assumed-role/auditor/cli`);
    const who = aws(['sts', 'get-caller-identity'], {
      env: {
        AWS_ACCESS_KEY_ID: s.Credentials.AccessKeyId,
        AWS_SECRET_ACCESS_KEY: s.Credentials.SecretAccessKey,
        AWS_SESSION_TOKEN: s.Credentials.SessionToken,
      },
    });
    expect(who.json.Arn).toBe(s.AssumedRoleUser.Arn);
    const denied = aws(['sts', 'assume-role', '--role-arn', `arn:aws:iam::${ACCOUNT}:role/auditor`, '--role-session-name', 'bob'], { creds: bob });
    expect(denied.code).toBe(254);
    expect(denied.stderr).toContain(
      `An error occurred (AccessDenied) when calling the AssumeRole operation: User: arn:aws:iam::${ACCOUNT}:user/bob is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::${ACCOUNT}:role/auditor`,
    );
  });
});

describe('STS calls in the audit log', () => {
  it("are recorded as CloudTrail records them (eventSource sts.amazonaws.com, the KMS records' shape), never with a secret access key, session token or MFA code", async () => {
    const role = `arn:aws:iam::${ACCOUNT}:role/auditor`;
    expect(aws(['sts', 'get-caller-identity']).code).toBe(0);
    const s = aws(['sts', 'assume-role', '--role-arn', role, '--role-session-name', 'audited', '--duration-seconds', '900']).json;
    const session = {
      AWS_ACCESS_KEY_ID: s.Credentials.AccessKeyId,
      AWS_SECRET_ACCESS_KEY: s.Credentials.SecretAccessKey,
      AWS_SESSION_TOKEN: s.Credentials.SessionToken,
    };
    expect(aws(['sts', 'get-caller-identity'], { env: session }).json.Arn).toBe(`arn:aws:sts::${ACCOUNT}:assumed-role/auditor/audited`);
    expect(aws(['sts', 'assume-role', '--role-arn', role, '--role-session-name', 'audited-bob'], { creds: bob }).code).toBe(254);
    const mfa = aws([
      'sts',
      'assume-role',
      '--role-arn',
      role,
      '--role-session-name',
      'audited-mfa',
      '--serial-number',
      `arn:aws:iam::${ACCOUNT}:mfa/alice`,
      '--token-code',
      '731902',
    ]);
    expect(mfa.code).toBe(254);
    // The server appends its records within the event-loop turn after answering; wait for the last one to be there.
    const log = path.join(home, 'audit.log');
    const sts = () => AuditLog.read(log).filter((e) => e.eventSource === 'sts.amazonaws.com');
    await expect
      .poll(
        () =>
          sts().some((e) => e.userIdentity.arn === `arn:aws:sts::${ACCOUNT}:assumed-role/auditor/audited`) &&
          sts().some((e) => e.errorCode === 'InvalidParameterValue'),
        {
          timeout: 10_000,
        },
      )
      .toBe(true);
    const events = sts();
    const assumed = events.find(
      (e) => e.eventName === 'AssumeRole' && !e.errorCode && (e.requestParameters as { roleSessionName?: string })?.roleSessionName === 'audited',
    );
    expect(assumed).toEqual({
      eventVersion: '1.08',
      eventTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      eventSource: 'sts.amazonaws.com',
      eventName: 'AssumeRole',
      awsRegion: REGION,
      userIdentity: { type: 'IAMUser', arn: `arn:aws:iam::${ACCOUNT}:user/alice` },
      requestParameters: { roleArn: role, roleSessionName: 'audited', durationSeconds: 900 },
      responseElements: {
        assumedRoleUser: { assumedRoleId: s.AssumedRoleUser.AssumedRoleId, arn: s.AssumedRoleUser.Arn },
        credentials: { accessKeyId: s.Credentials.AccessKeyId, expiration: new Date(s.Credentials.Expiration).toISOString() },
      },
      requestID: expect.stringMatching(/^[0-9a-f-]{36}$/),
      eventID: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    expect(events).toContainEqual(
      expect.objectContaining({
        eventName: 'GetCallerIdentity',
        userIdentity: { type: 'AssumedRole', arn: `arn:aws:sts::${ACCOUNT}:assumed-role/auditor/audited` },
        requestParameters: null,
        responseElements: null,
      }),
    );
    expect(events).toContainEqual(
      expect.objectContaining({ eventName: 'GetCallerIdentity', userIdentity: { type: 'IAMUser', arn: `arn:aws:iam::${ACCOUNT}:user/alice` } }),
    );
    expect(events).toContainEqual(
      expect.objectContaining({
        eventName: 'AssumeRole',
        userIdentity: { type: 'IAMUser', arn: `arn:aws:iam::${ACCOUNT}:user/bob` },
        requestParameters: { roleArn: role, roleSessionName: 'audited-bob' },
        responseElements: null,
        errorCode: 'AccessDenied',
        errorMessage: expect.stringContaining('is not authorized to perform: sts:AssumeRole'),
      }),
    );
    const refusedMfa = events.find((e) => (e.requestParameters as { roleSessionName?: string })?.roleSessionName === 'audited-mfa');
    expect(refusedMfa).toMatchObject({ errorCode: 'InvalidParameterValue', requestParameters: { roleArn: role, roleSessionName: 'audited-mfa' } });
    // Nothing secret anywhere in the log: not the session's secret or token, not the MFA code.
    const text = fs.readFileSync(log, 'utf8');
    for (const secret of [s.Credentials.SecretAccessKey, s.Credentials.SessionToken, '731902', alice.SecretAccessKey]) expect(text).not.toContain(secret);
    // kmsvol audit shows them as it shows KMS calls.
    const shown = kmsvol(home, ['audit', '--event-name', 'AssumeRole']).json.Events;
    expect(shown.map((e: { eventID: string }) => e.eventID)).toContain(assumed!.eventID);
  });
});

describe('boto3 from Debian', () => {
  it('passes its conformance file (every operation, documented errors, regions, STS) with only endpoint_url set', () => {
    const r = spawnSync(PY, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', path.join(ROOT, 'test/interop/py/test_kms_boto3.py')], {
      env: awsEnv(alice, {
        KMSVOL_ENDPOINT: server.url,
        KMSVOL_ACCOUNT: ACCOUNT,
        BOB_ACCESS_KEY_ID: bob.AccessKeyId,
        BOB_SECRET_ACCESS_KEY: bob.SecretAccessKey,
      }),
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\b4 passed\b/);
  });
});

describe("refusals, each a request signed by botocore's signer with one thing changed", () => {
  it('gets AWS error names and statuses, and the server does nothing', async () => {
    const key = aws(['kms', 'create-key']).json.KeyMetadata.KeyId;
    const s = aws(['sts', 'assume-role', '--role-arn', `arn:aws:iam::${ACCOUNT}:role/auditor`, '--role-session-name', 'refusals']).json.Credentials;
    const before = aws(['kms', 'list-keys']).json.Keys.length;
    const grantsBefore = aws(['kms', 'list-grants', '--key-id', key]).json.Grants.length;
    const r = spawnSync(PY, [path.join(ROOT, 'test/interop/py/sigv4_refusals.py'), server.url], {
      env: awsEnv(alice, { SESSION_ACCESS_KEY_ID: s.AccessKeyId, SESSION_SECRET: s.SecretAccessKey, SESSION_TOKEN: s.SessionToken, KEY_ID: key }),
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const got = Object.fromEntries(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .map((c) => [c.case, c]),
    );
    const refused = (name: string, status: number, type: string, message: RegExp) =>
      expect(got[name], name).toEqual({ case: name, status, type, message: expect.stringMatching(message) });
    expect(got['baseline-list-keys'].status).toBe(200);
    // A good session authenticates as the role session (which has no permission to list keys: authorization, not authentication, refuses it).
    expect(got['session-valid'].message).toMatch(
      new RegExp(`^User: arn:aws:sts::${ACCOUNT}:assumed-role/auditor/refusals is not authorized to perform: kms:ListKeys`),
    );
    const mismatch = /^The request signature we calculated does not match the signature you provided/;
    refused('body-changed-after-signing', 400, 'InvalidSignatureException', mismatch);
    refused('unsigned-payload', 400, 'InvalidSignatureException', /UNSIGNED-PAYLOAD' is not supported/);
    refused('scope-service-s3', 400, 'InvalidSignatureException', /^Credential should be scoped to correct service: 'kms'\./);
    refused('scope-service-dynamodb', 400, 'InvalidSignatureException', /^Credential should be scoped to correct service: 'kms'\./);
    refused('scope-region-changed', 400, 'InvalidSignatureException', mismatch);
    refused('made-up-session-token', 400, 'UnrecognizedClientException', /^The security token included in the request is invalid\.$/);
    refused('forged-session-token', 400, 'UnrecognizedClientException', /^The security token included in the request is invalid\.$/);
    refused('session-without-token', 400, 'UnrecognizedClientException', /^The security token included in the request is invalid\.$/);
    refused('wrong-secret', 400, 'InvalidSignatureException', mismatch);
    refused('unknown-access-key', 400, 'UnrecognizedClientException', /^The security token included in the request is invalid\.$/);
    refused(
      'stale-timestamp',
      400,
      'InvalidSignatureException',
      /^Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 5 min\.\)$/,
    );
    refused(
      'future-timestamp',
      400,
      'InvalidSignatureException',
      /^Signature not yet current: \d{8}T\d{6}Z is still later than \d{8}T\d{6}Z \(\d{8}T\d{6}Z \+ 5 min\.\)$/,
    );
    refused('dryrun-create-grant', 412, 'DryRunOperationException', /^The request would have succeeded, but the DryRun option is set\.$/);
    refused('unsigned-target', 400, 'InvalidSignatureException', /^'x-amz-target' must be a 'SignedHeader' in the AWS Authorization\.$/);
    refused('duplicate-signature-field', 400, 'IncompleteSignatureException', /names Signature more than once/);
    refused('deep-nesting', 400, 'SerializationException', /nests deeper than 16 levels/);
    refused('grantee-star', 400, 'ValidationException', /is not a principal/);
    // The key the untargeted request tried to disable is still enabled.
    expect(aws(['kms', 'describe-key', '--key-id', key]).json.KeyMetadata.KeyState).toBe('Enabled');
    // Nothing happened: no key from any tampered request, no grant from the DryRun.
    const keys = aws(['kms', 'list-keys']).json.Keys;
    expect(keys).toHaveLength(before);
    expect(aws(['kms', 'list-grants', '--key-id', key]).json.Grants).toHaveLength(grantsBefore);
    const events = kmsvol(home, ['audit', '--event-name', 'CreateKey']).json.Events.map(
      (e: { requestParameters: { description?: string } }) => e.requestParameters?.description,
    );
    for (const c of Object.keys(got)) expect(events).not.toContain(c);
  });

  it('an expired session token is refused (ExpiredTokenException), by a server whose clock has passed its expiry', async () => {
    const s = aws(['sts', 'assume-role', '--role-arn', `arn:aws:iam::${ACCOUNT}:role/auditor`, '--role-session-name', 'short', '--duration-seconds', '900'])
      .json.Credentials;
    const later = await startEndpoint(home, [], { KMSVOL_ACCOUNT_ID: ACCOUNT, KMSVOL_NOW: new Date(Date.parse(s.Expiration) + 1000).toISOString() });
    const r = aws(['sts', 'get-caller-identity'], {
      url: later.url,
      env: { AWS_ACCESS_KEY_ID: s.AccessKeyId, AWS_SECRET_ACCESS_KEY: s.SecretAccessKey, AWS_SESSION_TOKEN: s.SessionToken },
    });
    expect(r.code).toBe(254);
    expect(r.stderr).toContain(
      'An error occurred (ExpiredToken) when calling the GetCallerIdentity operation: The security token included in the request is expired',
    );
    const k = aws(['kms', 'list-keys'], {
      url: later.url,
      env: { AWS_ACCESS_KEY_ID: s.AccessKeyId, AWS_SECRET_ACCESS_KEY: s.SecretAccessKey, AWS_SESSION_TOKEN: s.SessionToken },
    });
    expect(k.stderr).toContain('(ExpiredTokenException)');
  });

  it('a server started with --region answers that region only', async () => {
    const only = await startEndpoint(home, ['--region', 'eu-central-1'], { KMSVOL_ACCOUNT_ID: ACCOUNT });
    const r = aws(['kms', 'list-keys'], { url: only.url });
    expect(r.code).toBe(254);
    expect(r.stderr).toContain(
      "An error occurred (InvalidSignatureException) when calling the ListKeys operation: Credential should be scoped to a valid region, not 'us-east-1'.",
    );
    const ok = aws(['kms', 'create-key'], { url: only.url, env: { AWS_DEFAULT_REGION: 'eu-central-1' } });
    expect(ok.json.KeyMetadata.Arn).toMatch(new RegExp(`^arn:aws:kms:eu-central-1:${ACCOUNT}:key/`));
  });
});

describe('DryRun through @aws-sdk/client-kms', () => {
  const dry = { DryRun: true };
  const isDryRun = (e: unknown) => {
    expect((e as Error).name).toBe('DryRunOperationException');
    expect((e as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode).toBe(412);
  };

  it('every operation with DryRun that would succeed fails with DryRunOperationException and changes nothing', async () => {
    const c = sdkClient();
    const key = (await c.send(new sdk.CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const other = (await c.send(new sdk.CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const blob = (await c.send(new sdk.EncryptCommand({ KeyId: key, Plaintext: Buffer.from('x') }))).CiphertextBlob!;
    const grant = await c.send(
      new sdk.CreateGrantCommand({
        KeyId: key,
        GranteePrincipal: `arn:aws:iam::${ACCOUNT}:user/bob`,
        RetiringPrincipal: `arn:aws:iam::${ACCOUNT}:user/alice`,
        Operations: ['Decrypt'],
      }),
    );
    const auditBefore = kmsvol(home, ['audit']).json.Events.length;
    const calls: [string, () => Promise<unknown>][] = [
      ['Encrypt', () => c.send(new sdk.EncryptCommand({ KeyId: key, Plaintext: Buffer.from('x'), ...dry }))],
      ['Decrypt', () => c.send(new sdk.DecryptCommand({ CiphertextBlob: blob, ...dry }))],
      ['ReEncrypt', () => c.send(new sdk.ReEncryptCommand({ CiphertextBlob: blob, DestinationKeyId: other, ...dry }))],
      ['GenerateDataKey', () => c.send(new sdk.GenerateDataKeyCommand({ KeyId: key, KeySpec: 'AES_256', ...dry }))],
      ['GenerateDataKeyWithoutPlaintext', () => c.send(new sdk.GenerateDataKeyWithoutPlaintextCommand({ KeyId: key, KeySpec: 'AES_256', ...dry }))],
      [
        'CreateGrant',
        () => c.send(new sdk.CreateGrantCommand({ KeyId: key, GranteePrincipal: `arn:aws:iam::${ACCOUNT}:user/bob`, Operations: ['Encrypt'], ...dry })),
      ],
      ['RetireGrant', () => c.send(new sdk.RetireGrantCommand({ GrantToken: grant.GrantToken, ...dry }))],
      ['RevokeGrant', () => c.send(new sdk.RevokeGrantCommand({ KeyId: key, GrantId: grant.GrantId, ...dry }))],
    ];
    for (const [name, call] of calls) {
      const e = await call().then(
        () => new Error(`${name} DryRun succeeded`),
        (x: unknown) => x,
      );
      isDryRun(e);
    }
    const events = kmsvol(home, ['audit']).json.Events.slice(auditBefore);
    const grants = (await c.send(new sdk.ListGrantsCommand({ KeyId: key }))).Grants!;
    expect(grants.map((g) => g.GrantId)).toEqual([grant.GrantId]);
    expect(events.map((e: { eventName: string }) => e.eventName)).toEqual(calls.map(([n]) => n));
    for (const e of events) {
      expect(e.errorCode).toBe('DryRunOperationException');
      expect(e.requestParameters.dryRun).toBe(true);
      expect(e.responseElements).toBeNull();
    }
  });

  it('a DryRun that would be refused gets the refusal, not DryRunOperationException', async () => {
    const c = sdkClient();
    const policy = JSON.stringify({
      Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:user/alice` }, Action: 'kms:*', Resource: '*' }],
    });
    const key = (await c.send(new sdk.CreateKeyCommand({ Policy: policy }))).KeyMetadata!.KeyId!;
    const blob = (await c.send(new sdk.EncryptCommand({ KeyId: key, Plaintext: Buffer.from('x') }))).CiphertextBlob!;
    const asBob = new sdk.KMSClient({
      endpoint: server.url,
      region: REGION,
      credentials: { accessKeyId: bob.AccessKeyId, secretAccessKey: bob.SecretAccessKey },
      maxAttempts: 1,
    });
    await expect(asBob.send(new sdk.DecryptCommand({ CiphertextBlob: blob, DryRun: true }))).rejects.toHaveProperty('name', 'AccessDeniedException');
    await expect(
      asBob.send(new sdk.CreateGrantCommand({ KeyId: key, GranteePrincipal: `arn:aws:iam::${ACCOUNT}:user/bob`, Operations: ['Decrypt'], DryRun: true })),
    ).rejects.toHaveProperty('name', 'AccessDeniedException');
    await c.send(new sdk.DisableKeyCommand({ KeyId: key }));
    await expect(c.send(new sdk.EncryptCommand({ KeyId: key, Plaintext: Buffer.from('x'), DryRun: true }))).rejects.toHaveProperty('name', 'DisabledException');
    await expect(c.send(new sdk.GenerateDataKeyCommand({ KeyId: key, DryRun: true }))).rejects.toHaveProperty('name', 'ValidationException');
  });

  it('Recipient and CustomKeyStoreId are refused as AWS refuses them here, never ignored', async () => {
    const c = sdkClient();
    const key = (await c.send(new sdk.CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const blob = (await c.send(new sdk.EncryptCommand({ KeyId: key, Plaintext: Buffer.from('secret') }))).CiphertextBlob!;
    const e = await c
      .send(
        new sdk.DecryptCommand({
          CiphertextBlob: blob,
          Recipient: { KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', AttestationDocument: Buffer.from('not an attestation') },
        }),
      )
      .catch((x: Error) => x);
    expect((e as Error).name).toBe('ValidationException');
    expect((e as { Plaintext?: unknown }).Plaintext).toBeUndefined();
    await expect(c.send(new sdk.CreateKeyCommand({ CustomKeyStoreId: 'cks-1234567890abcdef0' }))).rejects.toHaveProperty(
      'name',
      'CustomKeyStoreNotFoundException',
    );
    await expect(c.send(new sdk.GenerateRandomCommand({ NumberOfBytes: 8, CustomKeyStoreId: 'cks-1234567890abcdef0' }))).rejects.toHaveProperty(
      'name',
      'CustomKeyStoreNotFoundException',
    );
  });
});

describe('HTTP that is not a valid request still gets an AWS-shaped answer', () => {
  const rawExchange = (payload: string | Buffer) =>
    new Promise<string>((resolve, reject) => {
      const u = new URL(server.url);
      const s = net.connect(Number(u.port), u.hostname, () => s.end(payload));
      let out = '';
      s.on('data', (d) => (out += d));
      s.on('end', () => resolve(out));
      s.on('error', reject);
    });

  it('garbage, a short Content-Length and oversized headers', async () => {
    for (const [payload, status, type] of [
      [Buffer.from([0x16, 0x03, 0x01, 0xde, 0xad, 0xbe, 0xef, 0x0d, 0x0a, 0x0d, 0x0a]), 400, 'SerializationException'],
      ['POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', 400, 'SerializationException'],
      [`POST / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`, 431, 'RequestHeaderSectionTooLarge'],
      [
        'POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: TrentService.ListKeys\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}',
        400,
        'MissingAuthenticationTokenException',
      ],
    ] as const) {
      const answer = await rawExchange(payload);
      expect(answer).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
      const body = answer.slice(answer.indexOf('\r\n\r\n') + 4);
      expect(JSON.parse(body).__type).toBe(type);
    }
  });
});
