import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { createAccessKey, createUser } from '../../../src/kms/iam.js';
import { wildcard } from '../../../src/kms/policy.js';
import { errorName, testKms } from '../../helpers/home.js';

const ACCT = '000000000000';
const ROOT = `arn:aws:iam::${ACCT}:root`;
const ALICE = `arn:aws:iam::${ACCT}:user/alice`; // key administrator
const BOB = `arn:aws:iam::${ACCT}:user/bob`; // key user
const CAROL = `arn:aws:iam::${ACCT}:user/carol`;

/** Seed 002's separation: administrators manage the key but cannot use it; users use it but cannot manage it. */
function adminUserPolicy(extra: object[] = []) {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'Allow access for Key Administrators',
        Effect: 'Allow',
        Principal: { AWS: ALICE },
        Action: [
          'kms:Create*',
          'kms:Describe*',
          'kms:Enable*',
          'kms:List*',
          'kms:Put*',
          'kms:Update*',
          'kms:Revoke*',
          'kms:Disable*',
          'kms:Get*',
          'kms:Delete*',
          'kms:ScheduleKeyDeletion',
          'kms:CancelKeyDeletion',
        ],
        Resource: '*',
      },
      {
        Sid: 'Allow use of the key',
        Effect: 'Allow',
        Principal: { AWS: [BOB] },
        Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:DescribeKey'],
        Resource: '*',
      },
      ...extra,
    ],
  });
}

function keyWith(policy: string) {
  const t = testKms();
  const id = t.kms.invoke('CreateKey', { Policy: policy, BypassPolicyLockoutSafetyCheck: true }).KeyMetadata.KeyId;
  return { ...t, id };
}

describe('key policies', () => {
  it('the default policy lets the account root, and IAM users whose identity policy allows, do everything; GetKeyPolicy and ListKeyPolicies show it', () => {
    const { kms } = testKms();
    // alice and bob are administrators (the create-access-key shortcut's kmsvol-admin policy); carol has no policy.
    createAccessKey(kms.ctx, 'alice');
    createAccessKey(kms.ctx, 'bob');
    createUser(kms.ctx, 'carol');
    const id = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    expect(kms.invoke('ListKeyPolicies', { KeyId: id })).toEqual({ PolicyNames: ['default'], Truncated: false });
    const p = kms.invoke('GetKeyPolicy', { KeyId: id, PolicyName: 'default' });
    expect(p.PolicyName).toBe('default');
    expect(JSON.parse(p.Policy).Statement).toEqual([
      { Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: ROOT }, Action: 'kms:*', Resource: '*' },
    ]);
    const blob = kms.invokeAs(ALICE, 'Encrypt', { KeyId: id, Plaintext: Buffer.from('x') }).CiphertextBlob;
    expect(kms.invokeAs(BOB, 'Decrypt', { CiphertextBlob: blob }).Plaintext.toString()).toBe('x');
    // A user without an identity policy has no permission ("By default, IAM users and roles don't have any permissions").
    expect(errorName(() => kms.invokeAs(`arn:aws:iam::${ACCT}:user/carol`, 'Decrypt', { CiphertextBlob: blob }))).toBe('AccessDeniedException');
    // Nor has a session of a role without policies.
    expect(errorName(() => kms.invokeAs(`arn:aws:sts::${ACCT}:assumed-role/r/s`, 'Decrypt', { CiphertextBlob: blob }))).toBe('AccessDeniedException');
    expect(errorName(() => kms.invoke('GetKeyPolicy', { KeyId: id, PolicyName: 'other' }))).toBe('ValidationException');
  });

  it('separates key administrators from key users (seed 002)', () => {
    const { kms, id } = keyWith(adminUserPolicy());
    const table: [string, string, object, 'ok' | 'AccessDeniedException'][] = [
      [ALICE, 'DisableKey', { KeyId: id }, 'ok'],
      [ALICE, 'EnableKey', { KeyId: id }, 'ok'],
      [ALICE, 'Encrypt', { KeyId: id, Plaintext: Buffer.from('a') }, 'AccessDeniedException'],
      [ALICE, 'GenerateDataKey', { KeyId: id, KeySpec: 'AES_256' }, 'AccessDeniedException'],
      [ALICE, 'UpdateKeyDescription', { KeyId: id, Description: 'managed' }, 'ok'],
      [BOB, 'Encrypt', { KeyId: id, Plaintext: Buffer.from('b') }, 'ok'],
      [BOB, 'GenerateDataKeyWithoutPlaintext', { KeyId: id, NumberOfBytes: 64 }, 'ok'],
      [BOB, 'DescribeKey', { KeyId: id }, 'ok'],
      [BOB, 'DisableKey', { KeyId: id }, 'AccessDeniedException'],
      [BOB, 'ScheduleKeyDeletion', { KeyId: id }, 'AccessDeniedException'],
      [BOB, 'PutKeyPolicy', { KeyId: id, Policy: adminUserPolicy() }, 'AccessDeniedException'],
      [CAROL, 'DescribeKey', { KeyId: id }, 'AccessDeniedException'],
      [ROOT, 'Decrypt', { CiphertextBlob: Buffer.alloc(0) }, 'AccessDeniedException'],
    ];
    for (const [who, op, req, want] of table) {
      if (op === 'Decrypt') continue; // below, with a real blob
      const got = (() => {
        try {
          kms.invokeAs(who, op as never, req as never);
          return 'ok';
        } catch (e) {
          return (e as Error).name;
        }
      })();
      expect(got, `${who.split('/').pop()} ${op}`).toBe(want);
    }
    const blob = kms.invokeAs(BOB, 'Encrypt', { KeyId: id, Plaintext: Buffer.from('secret') }).CiphertextBlob;
    expect(kms.invokeAs(BOB, 'Decrypt', { CiphertextBlob: blob }).Plaintext.toString()).toBe('secret');
    for (const who of [ALICE, ROOT]) {
      try {
        kms.invokeAs(who, 'Decrypt', { CiphertextBlob: blob });
        expect.unreachable();
      } catch (e) {
        expect((e as Error).name).toBe('AccessDeniedException');
        expect((e as Error).message).toBe(
          `User: ${who} is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:${ACCT}:key/${id} because no resource-based policy allows the kms:Decrypt action`,
        );
      }
    }
  });

  it('an explicit Deny overrides any Allow', () => {
    const deny = { Sid: 'NoDeletion', Effect: 'Deny', Principal: { AWS: '*' }, Action: ['kms:ScheduleKeyDeletion', 'kms:Decrypt'], Resource: '*' };
    const { kms, id } = keyWith(JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: ROOT }, Action: 'kms:*', Resource: '*' }, deny] }));
    const blob = kms.invoke('Encrypt', { KeyId: id, Plaintext: Buffer.from('x') }).CiphertextBlob;
    try {
      kms.invoke('ScheduleKeyDeletion', { KeyId: id });
      expect.unreachable();
    } catch (e) {
      expect((e as Error).name).toBe('AccessDeniedException');
      expect((e as Error).message).toMatch(/kms:ScheduleKeyDeletion on resource: .* with an explicit deny in a resource-based policy$/);
    }
    expect(errorName(() => kms.invoke('Decrypt', { CiphertextBlob: blob }))).toBe('AccessDeniedException');
    // A grant does not get past an explicit Deny either.
    kms.invoke('CreateGrant', { KeyId: id, GranteePrincipal: BOB, Operations: ['Decrypt'] });
    expect(errorName(() => kms.invokeAs(BOB, 'Decrypt', { CiphertextBlob: blob }))).toBe('AccessDeniedException');
  });

  it('encryption-context conditions: StringEquals on a key, ForAllValues and ForAnyValue on the key set, IfExists', () => {
    const use = (cond: object) => ({ Effect: 'Allow', Principal: { AWS: CAROL }, Action: ['kms:Encrypt', 'kms:Decrypt'], Resource: '*', Condition: cond });
    const { kms, id } = keyWith(
      adminUserPolicy([
        use({ StringEquals: { 'kms:EncryptionContext:Department': 'IT' } }),
        {
          Effect: 'Deny',
          Principal: { AWS: '*' },
          Action: 'kms:Encrypt',
          Resource: '*',
          Condition: { 'ForAnyValue:StringLike': { 'kms:EncryptionContextKeys': 'tmp-*' } },
        },
        {
          Effect: 'Allow',
          Principal: { AWS: `arn:aws:iam::${ACCT}:user/dave` },
          Action: 'kms:Encrypt',
          Resource: '*',
          Condition: { 'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ['app', 'env'] } },
        },
        {
          Effect: 'Allow',
          Principal: { AWS: `arn:aws:iam::${ACCT}:user/erin` },
          Action: 'kms:Encrypt',
          Resource: '*',
          Condition: { StringEqualsIfExists: { 'kms:EncryptionContext:env': 'prod' } },
        },
      ]),
    );
    const enc = (who: string, ctx?: Record<string, string>) => {
      try {
        kms.invokeAs(who, 'Encrypt', { KeyId: id, Plaintext: Buffer.from('p'), ...(ctx ? { EncryptionContext: ctx } : {}) });
        return 'ok';
      } catch (e) {
        return (e as Error).name;
      }
    };
    expect(enc(CAROL, { Department: 'IT' })).toBe('ok');
    expect(enc(CAROL, { Department: 'IT', project: 'x' })).toBe('ok');
    expect(enc(CAROL, { Department: 'HR' })).toBe('AccessDeniedException');
    expect(enc(CAROL)).toBe('AccessDeniedException');
    expect(enc(CAROL, { Department: 'IT', 'tmp-1': 'y' })).toBe('AccessDeniedException'); // the Deny
    const dave = `arn:aws:iam::${ACCT}:user/dave`;
    expect(enc(dave, { app: 'a', env: 'e' })).toBe('ok');
    expect(enc(dave, { app: 'a' })).toBe('ok');
    expect(enc(dave, {})).toBe('ok'); // ForAllValues holds for no keys, as in AWS
    expect(enc(dave, { app: 'a', other: 'o' })).toBe('AccessDeniedException');
    const erin = `arn:aws:iam::${ACCT}:user/erin`;
    expect(enc(erin)).toBe('ok');
    expect(enc(erin, { env: 'prod' })).toBe('ok');
    expect(enc(erin, { env: 'dev' })).toBe('AccessDeniedException');
  });

  it('kms:EncryptionContext:<key> names its key without case, compares its value with it; keys differing only in case are read as the denying reading', () => {
    // AWS (conditions-kms, "Case sensitivity of the encryption context condition"): the condition key, kms:EncryptionContext: and the
    // context key, is not case sensitive; the operator decides for the value. kms:EncryptionContextKeys compares keys as its operator says.
    const DAVE = `arn:aws:iam::${ACCT}:user/dave`;
    const { kms, id } = keyWith(
      adminUserPolicy([
        {
          Effect: 'Allow',
          Principal: { AWS: CAROL },
          Action: 'kms:Encrypt',
          Resource: '*',
          Condition: { StringEquals: { 'kms:EncryptionContext:Dept': 'IT' } },
        },
        {
          Effect: 'Deny',
          Principal: { AWS: '*' },
          Action: 'kms:Encrypt',
          Resource: '*',
          Condition: { StringEquals: { 'kms:ENCRYPTIONCONTEXT:stage': 'Restricted' } },
        },
        {
          Effect: 'Allow',
          Principal: { AWS: DAVE },
          Action: 'kms:Encrypt',
          Resource: '*',
          Condition: { StringNotEquals: { 'kms:EncryptionContext:tier': 'secret' }, 'ForAnyValue:StringEquals': { 'kms:EncryptionContextKeys': 'Tier' } },
        },
      ]),
    );
    const enc = (who: string, ctx: Record<string, string>) => {
      try {
        kms.invokeAs(who, 'Encrypt', { KeyId: id, Plaintext: Buffer.from('p'), EncryptionContext: ctx });
        return 'ok';
      } catch (e) {
        return (e as Error).name;
      }
    };
    expect(enc(CAROL, { Dept: 'IT' })).toBe('ok');
    expect(enc(CAROL, { dept: 'IT' })).toBe('ok');
    expect(enc(CAROL, { DEPT: 'IT' })).toBe('ok');
    expect(enc(CAROL, { Dept: 'it' })).toBe('AccessDeniedException');
    // Two spellings of one key: the Allow must hold for both, in either order.
    expect(enc(CAROL, { Dept: 'HR', dept: 'IT' })).toBe('AccessDeniedException');
    expect(enc(CAROL, { dept: 'IT', Dept: 'HR' })).toBe('AccessDeniedException');
    // The Deny applies when any spelling carries its value, whatever else the context says.
    expect(enc(CAROL, { Dept: 'IT', Stage: 'Restricted' })).toBe('AccessDeniedException');
    expect(enc(CAROL, { Dept: 'IT', Stage: 'Restricted', stage: 'Test' })).toBe('AccessDeniedException');
    expect(enc(CAROL, { Dept: 'IT', stage: 'Test', STAGE: 'Restricted' })).toBe('AccessDeniedException');
    expect(enc(CAROL, { Dept: 'IT', Stage: 'restricted' })).toBe('ok');
    expect(enc(BOB, { stage: 'Test', Stage: 'Restricted' })).toBe('AccessDeniedException');
    expect(enc(BOB, { Stage: 'Test' })).toBe('ok');
    // A negated operator in an Allow: no spelling may carry the value. kms:EncryptionContextKeys with StringEquals is case sensitive.
    expect(enc(DAVE, { Tier: 'public' })).toBe('ok');
    expect(enc(DAVE, { tier: 'public' })).toBe('AccessDeniedException');
    expect(enc(DAVE, { Tier: 'public', TIER: 'secret' })).toBe('AccessDeniedException');
    expect(enc(DAVE, { TIER: 'secret', Tier: 'public' })).toBe('AccessDeniedException');
  });

  it('kms:ViaService and kms:CallerAccount limit a key to one service of one account', () => {
    const { kms, id } = keyWith(
      JSON.stringify({
        Statement: [
          {
            Sid: 'admin',
            Effect: 'Allow',
            Principal: { AWS: ALICE },
            Action: 'kms:*',
            Resource: '*',
            Condition: { Bool: { 'kms:GrantIsForAWSResource': 'true' } },
          },
          {
            Sid: 'via-ebs',
            Effect: 'Allow',
            Principal: { AWS: '*' },
            Action: ['kms:GenerateDataKey*', 'kms:Decrypt'],
            Resource: '*',
            Condition: { StringEquals: { 'kms:ViaService': 'ec2.local.amazonaws.com', 'kms:CallerAccount': ACCT } },
          },
        ],
      }),
    );
    const gdk = (caller: Parameters<typeof kms.invokeAs>[0]) => () => kms.invokeAs(caller, 'GenerateDataKeyWithoutPlaintext', { KeyId: id, NumberOfBytes: 32 });
    expect(errorName(gdk(BOB))).toBe('AccessDeniedException');
    expect(gdk({ principal: BOB, viaService: 'ec2.local.amazonaws.com' })().KeyId).toContain(id);
    expect(errorName(gdk({ principal: BOB, viaService: 's3.local.amazonaws.com' }))).toBe('AccessDeniedException');
    expect(errorName(gdk({ principal: 'arn:aws:iam::111122223333:user/mallory', viaService: 'ec2.local.amazonaws.com' }))).toBe('AccessDeniedException');
    // Only principals with IAM permission can call through a service: a role session's claim is ignored.
    expect(errorName(gdk({ principal: `arn:aws:sts::${ACCT}:assumed-role/kmsvol-card/vol-1`, viaService: 'ec2.local.amazonaws.com' }))).toBe(
      'AccessDeniedException',
    );
    // kms:GrantIsForAWSResource is true only for CreateGrant through a service.
    expect(errorName(() => kms.invokeAs(ALICE, 'CreateGrant', { KeyId: id, GranteePrincipal: BOB, Operations: ['Decrypt'] }))).toBe('AccessDeniedException');
    expect(
      kms.invokeAs({ principal: ALICE, viaService: 'ec2.local.amazonaws.com' }, 'CreateGrant', { KeyId: id, GranteePrincipal: BOB, Operations: ['Decrypt'] })
        .GrantId,
    ).toMatch(/^[0-9a-f]{64}$/);
  });

  it('PutKeyPolicy refuses a policy that would lock the caller out, unless the safety check is bypassed', () => {
    const { kms } = testKms();
    const id = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    const lockout = adminUserPolicy(); // names alice and bob, not the caller (root)
    createAccessKey(kms.ctx, 'alice'); // an administrator: the default policy's account statement lets her in
    try {
      kms.invoke('PutKeyPolicy', { KeyId: id, Policy: lockout });
      expect.unreachable();
    } catch (e) {
      expect((e as Error).name).toBe('MalformedPolicyDocumentException');
      expect((e as Error).message).toMatch(/^The new key policy will not allow you to update the key policy in the future/);
    }
    expect(errorName(() => kms.invoke('CreateKey', { Policy: lockout }))).toBe('MalformedPolicyDocumentException');
    // alice may put it: she keeps kms:Put*.
    kms.invokeAs(ALICE, 'PutKeyPolicy', { KeyId: id, Policy: lockout });
    expect(kms.invokeAs(ALICE, 'GetKeyPolicy', { KeyId: id }).Policy).toBe(lockout);
    expect(errorName(() => kms.invoke('GetKeyPolicy', { KeyId: id }))).toBe('AccessDeniedException');
    // With the bypass flag, a caller may lock itself out on purpose.
    const other = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    kms.invoke('PutKeyPolicy', { KeyId: other, Policy: lockout, BypassPolicyLockoutSafetyCheck: true });
    expect(errorName(() => kms.invoke('PutKeyPolicy', { KeyId: other, Policy: lockout }))).toBe('AccessDeniedException');
  });

  it('malformed policies name what is wrong', () => {
    const { kms } = testKms();
    const id = kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
    const cases: [string, RegExp][] = [
      ['not json', /not valid JSON/],
      ['{"Statement":[]}', /no Statement/],
      ['{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"kms:*","Resource":"*"}]}', /Effect must be "Allow" or "Deny"/],
      ['{"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}', /Principal/],
      ['{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}]}', /not a KMS action/],
      [
        '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"NumericSoon":{"a":"1"}}}]}',
        /condition operator NumericSoon/,
      ],
    ];
    for (const [policy, why] of cases) {
      try {
        kms.invoke('PutKeyPolicy', { KeyId: id, Policy: policy, BypassPolicyLockoutSafetyCheck: true });
        expect.unreachable(policy);
      } catch (e) {
        expect((e as Error).name, policy).toBe('MalformedPolicyDocumentException');
        expect((e as Error).message, policy).toMatch(why);
      }
    }
  });

  it('the audit log records every policy decision with its principal', () => {
    const { kms, id, home } = keyWith(adminUserPolicy());
    kms.invokeAs(ALICE, 'DisableKey', { KeyId: id });
    expect(errorName(() => kms.invokeAs(BOB, 'EnableKey', { KeyId: id }))).toBe('AccessDeniedException');
    kms.flushAudit();
    const lines = fs
      .readFileSync(`${home}/audit.log`, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const disable = lines.find((l) => l.eventName === 'DisableKey');
    expect(disable.userIdentity).toEqual({ type: 'IAMUser', arn: ALICE });
    expect(disable.additionalEventData.authorization).toEqual([
      {
        action: 'kms:DisableKey',
        resource: `arn:aws:kms:us-east-1:${ACCT}:key/${id}`,
        effect: 'Allow',
        by: 'key policy statement Allow access for Key Administrators',
      },
    ]);
    const enable = lines.find((l) => l.eventName === 'EnableKey');
    expect(enable).toMatchObject({ userIdentity: { arn: BOB }, errorCode: 'AccessDeniedException' });
    expect(enable.additionalEventData.authorization).toEqual([
      { action: 'kms:EnableKey', resource: `arn:aws:kms:us-east-1:${ACCT}:key/${id}`, effect: 'Deny', by: 'no policy or grant' },
    ]);
  });
});

describe('IAM wildcards', () => {
  /** The obvious regular-expression reading of a pattern, as a reference on small inputs. */
  const reference = (pattern: string, value: string) =>
    new RegExp(
      `^${pattern
        .split('')
        .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
        .join('')}$`,
      's',
    ).test(value);

  it('match exactly as the regular-expression reading does, for every pattern and value up to 4 characters over {a, b, *, ?}', () => {
    const words = (alphabet: string[], max: number): string[] => {
      const out = [''];
      for (let n = 1; n <= max; n++) for (const w of out.filter((x) => x.length === n - 1)) for (const c of alphabet) out.push(w + c);
      return out;
    };
    const values = words(['a', 'b'], 4);
    let checked = 0;
    for (const pattern of words(['a', 'b', '*', '?'], 4)) {
      for (const value of values) {
        expect(wildcard(pattern, value), `${pattern} ~ ${value}`).toBe(reference(pattern, value));
        checked++;
      }
    }
    expect(checked).toBe(341 * 31);
  });

  it('a pattern written to make a backtracking matcher take exponential time is answered (a policy is caller input)', async () => {
    // Run in a worker: a matcher that backtracks exponentially blocks its thread for good (with a regex, 120
    // characters blocked the server for minutes), and only a thread of its own can be given up on.
    // The compiled module (npm test compiles first), so the worker needs no TypeScript loader.
    const src = `const { wildcard } = await import(${JSON.stringify(new URL('../../../dist/kms/policy.js', import.meta.url).href)});
      const { parentPort } = await import('node:worker_threads');
      parentPort.postMessage([wildcard('*a*a*a*a*a*a*a*a*b', 'a'.repeat(4096)), wildcard('*a*a*a*a*a*a*a*a*b', 'a'.repeat(4096) + 'b')]);`;
    const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(src)}`));
    try {
      const answer = await new Promise((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
        setTimeout(() => reject(new Error('the matcher did not answer within 60 s: it backtracks')), 60_000).unref();
      });
      expect(answer).toEqual([false, true]);
    } finally {
      await worker.terminate();
    }
  });
});
