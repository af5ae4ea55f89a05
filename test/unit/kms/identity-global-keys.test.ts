import { describe, expect, it } from 'vitest';
import { assumeRole, createAccessKey, createRole, createUser, getRole, getUser, updateRoleMaxSessionDuration } from '../../../src/kms/iam.js';
import { getPolicy, putPolicy } from '../../../src/kms/iam-policies.js';
import { GLOBAL_SERVICE_REGION, globalConditionKeys, identityOf, requireIdentityAllow } from '../../../src/kms/identity.js';
import { PROVIDED_GLOBAL_KEYS } from '../../../src/kms/policy.js';
import { errorName, testKms } from '../../helpers/home.js';

/**
 * The global condition keys every identity decision sees (docs/iam.md,
 * "Condition keys"), the refusal of policies that name a global key kmsvol
 * does not provide, the card role's protection, and names unique without
 * regard to case.
 */
const ACCT = '000000000000';
const user = (n: string) => `arn:aws:iam::${ACCT}:user/${n}`;
const doc = (...s: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: s });
const ALLOW_ALL = { Effect: 'Allow', Action: '*', Resource: '*' };
const denyIf = (action: string, condition: object) => ({ Effect: 'Deny', Action: action, Resource: '*', Condition: condition });
const message = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return `${(e as Error).name}: ${(e as Error).message}`;
  }
  return 'no error';
};

describe('global condition keys', () => {
  it('every key the request context holds is one PROVIDED_GLOBAL_KEYS lists, and every listed key is set for a user', () => {
    const { kms } = testKms();
    createUser(kms.ctx, 'u');
    const keys = globalConditionKeys(kms.ctx.store, ACCT, user('u'), { region: 'eu-west-1', now: 0 });
    expect(new Set(Object.keys(keys))).toEqual(PROVIDED_GLOBAL_KEYS);
    expect(Object.entries(keys).filter(([, v]) => v === undefined)).toEqual([]);
    expect(keys).toMatchObject({
      'aws:principaltype': 'User',
      'aws:username': 'u',
      'aws:userid': getUser(kms.ctx, 'u').User.UserId,
      'aws:currenttime': '1970-01-01T00:00:00Z',
      'aws:epochtime': '0',
      'aws:securetransport': false,
      'aws:viaawsservice': false,
    });
  });

  it('a Deny on aws:SecureTransport false denies (the endpoint is plain HTTP), and one on aws:PrincipalType User', () => {
    const { kms } = testKms();
    const keyArn = kms.invoke('CreateKey', {}).KeyMetadata.Arn as string;
    createUser(kms.ctx, 'u');
    putPolicy(kms.ctx, 'user', 'u', 'p', doc(ALLOW_ALL, denyIf('kms:DescribeKey', { Bool: { 'aws:SecureTransport': 'false' } })));
    expect(errorName(() => kms.invokeAs(user('u'), 'DescribeKey', { KeyId: keyArn }))).toBe('AccessDeniedException');
    putPolicy(kms.ctx, 'user', 'u', 'p', doc(ALLOW_ALL, denyIf('kms:DescribeKey', { StringEquals: { 'aws:PrincipalType': 'User' } })));
    expect(errorName(() => kms.invokeAs(user('u'), 'DescribeKey', { KeyId: keyArn }))).toBe('AccessDeniedException');
    putPolicy(kms.ctx, 'user', 'u', 'p', doc(ALLOW_ALL, denyIf('kms:DescribeKey', { StringEquals: { 'aws:PrincipalType': 'AssumedRole' } })));
    expect(kms.invokeAs(user('u'), 'DescribeKey', { KeyId: keyArn }).KeyMetadata.Arn).toBe(keyArn);
  });

  it('requireIdentityAllow (the IAM endpoint, EBS, AssumeRole) decides with the region it is given', () => {
    const { kms } = testKms();
    createUser(kms.ctx, 'u');
    putPolicy(kms.ctx, 'user', 'u', 'p', doc(ALLOW_ALL, denyIf('iam:*', { StringEquals: { 'aws:RequestedRegion': GLOBAL_SERVICE_REGION } })));
    const ask = (region: string) => () => requireIdentityAllow(kms.ctx.store, ACCT, user('u'), 'iam:GetUser', user('u'), { region });
    expect(errorName(ask(GLOBAL_SERVICE_REGION))).toBe('AccessDenied');
    expect(ask('eu-west-1')).not.toThrow();
  });

  it('sts:AssumeRole through an account-wide trust sees the global keys', () => {
    const { kms } = testKms();
    const k = kms.ctx;
    createUser(k, 'u');
    createRole(k, 'r', doc({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCT}:root` }, Action: 'sts:AssumeRole' }));
    const assume = () => assumeRole(k, user('u'), { RoleArn: `arn:aws:iam::${ACCT}:role/r`, RoleSessionName: 's1' });
    putPolicy(k, 'user', 'u', 'p', doc(ALLOW_ALL));
    expect(assume().AssumedRoleUser.Arn).toBe(`arn:aws:sts::${ACCT}:assumed-role/r/s1`);
    putPolicy(k, 'user', 'u', 'p', doc(ALLOW_ALL, denyIf('sts:AssumeRole', { StringEquals: { 'aws:RequestedRegion': k.region } })));
    expect(errorName(assume)).toBe('AccessDenied');
  });

  it('a role session has aws:PrincipalType AssumedRole and aws:userid <role id>:<session>, and no aws:username', () => {
    const { kms } = testKms();
    const k = kms.ctx;
    createRole(k, 'r', doc({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCT}:root` }, Action: 'sts:AssumeRole' }));
    const keys = globalConditionKeys(k.store, ACCT, `arn:aws:sts::${ACCT}:assumed-role/r/s1`, { region: k.region });
    expect(keys['aws:principaltype']).toBe('AssumedRole');
    expect(keys['aws:userid']).toBe(`${getRole(k, 'r').Role.RoleId}:s1`);
    expect(keys['aws:username']).toBeUndefined();
    expect(globalConditionKeys(k.store, ACCT, `arn:aws:iam::${ACCT}:root`)).toMatchObject({ 'aws:principaltype': 'Account', 'aws:userid': ACCT });
  });

  for (const key of ['aws:SourceIp', 'aws:PrincipalTag/team', 'aws:MultiFactorAuthPresent', 'AWS:SOURCEVPC']) {
    it(`a policy conditioned on ${key}, a global key kmsvol does not provide, is refused when put, naming the key`, () => {
      const { kms } = testKms();
      createUser(kms.ctx, 'u');
      createRole(kms.ctx, 'r', doc({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCT}:root` }, Action: 'sts:AssumeRole' }));
      const policy = doc(ALLOW_ALL, denyIf('kms:Decrypt', { StringEquals: { [key]: 'x' } }));
      for (const kind of ['user', 'role'] as const) {
        const m = message(() => putPolicy(kms.ctx, kind, kind === 'user' ? 'u' : 'r', 'p', policy));
        expect(m).toMatch(/^MalformedPolicyDocument: /);
        expect(m).toContain(key);
      }
      const keyPolicy = JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCT}:root` }, Action: 'kms:*', Resource: '*' },
          { Effect: 'Deny', Principal: { AWS: '*' }, Action: 'kms:Decrypt', Resource: '*', Condition: { StringEquals: { [key]: 'x' } } },
        ],
      });
      const m = message(() => kms.invoke('CreateKey', { Policy: keyPolicy }));
      expect(m).toMatch(/^MalformedPolicyDocumentException: /);
      expect(m).toContain(key);
    });
  }
});

describe('the card role is kmsvol’s alone', () => {
  it('CreateRole in another case, PutRolePolicy, DeleteRolePolicy and UpdateRole on it are refused', () => {
    const { kms } = testKms();
    const k = kms.ctx;
    expect(errorName(() => createRole(k, 'KMSVOL-Card', doc({ Effect: 'Allow', Principal: { AWS: user('m') }, Action: 'sts:AssumeRole' })))).toBe(
      'EntityAlreadyExists',
    );
    expect(errorName(() => putPolicy(k, 'role', 'kmsvol-card', 'p', doc(ALLOW_ALL)))).toBe('UnmodifiableEntity');
    expect(errorName(() => updateRoleMaxSessionDuration(k, 'kmsvol-card', 7200))).toBe('UnmodifiableEntity');
    expect(getRole(k, 'kmsvol-card').Role.MaxSessionDuration).toBe(3600);
  });

  it('a kmsvol-card row an older kmsvol let CreateRole write keeps kmsvol’s trust and no identity policy', () => {
    const { kms } = testKms();
    const k = kms.ctx;
    k.store.write(() =>
      k.store.insertRole({
        role_name: 'kmsvol-card',
        role_id: 'AROAOLD',
        trust_policy: doc({ Effect: 'Allow', Principal: { AWS: user('m') }, Action: 'sts:AssumeRole' }),
        created: 0,
      }),
    );
    k.store.write(() => k.store.putIdentityPolicy({ kind: 'role', owner: 'kmsvol-card', policy_name: 'p', document: doc(ALLOW_ALL) }));
    expect(JSON.parse(getRole(k, 'kmsvol-card').Role.AssumeRolePolicyDocument).Statement[0].Principal.AWS).toBe(`arn:aws:iam::${ACCT}:root`);
    expect(identityOf(k.store, ACCT, `arn:aws:sts::${ACCT}:assumed-role/kmsvol-card/vol-1`)).toEqual({
      kind: 'policies',
      owner: `arn:aws:sts::${ACCT}:assumed-role/kmsvol-card/vol-1`,
      policies: [],
    });
  });
});

describe('IAM names are case-insensitive for uniqueness and case-preserving', () => {
  it('create-access-key CAROL when carol exists makes a key for carol, not a new administrator', () => {
    const { kms } = testKms();
    const k = kms.ctx;
    createUser(k, 'carol');
    const key = createAccessKey(k, 'CAROL');
    expect(key.AccessKey.UserName).toBe('carol');
    expect(k.store.userName('CAROL')).toBe('carol');
    expect(k.store.identityPolicies('user', 'CAROL')).toEqual([]);
    expect(createAccessKey(k, 'Carol', { mustExist: true }).AccessKey.UserName).toBe('carol');
  });

  it('a policy put for CAROL is carol’s, and GetUser CAROL answers carol', () => {
    const { kms } = testKms();
    const k = kms.ctx;
    createUser(k, 'carol');
    putPolicy(k, 'user', 'CAROL', 'p', doc(denyIf('kms:*', { StringEquals: { 'aws:username': 'carol' } })));
    expect(getPolicy(k, 'user', 'carol', 'p').UserName).toBe('carol');
    expect(identityOf(k.store, ACCT, user('carol'))).toMatchObject({ policies: [expect.anything()] });
    expect(getUser(k, 'CAROL').User.Arn).toBe(user('carol'));
  });

  it('CreateRole MyRole after myrole is EntityAlreadyExists', () => {
    const { kms } = testKms();
    const trust = doc({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCT}:root` }, Action: 'sts:AssumeRole' });
    createRole(kms.ctx, 'myrole', trust);
    expect(errorName(() => createRole(kms.ctx, 'MyRole', trust))).toBe('EntityAlreadyExists');
    expect(getRole(kms.ctx, 'MYROLE').Role.RoleName).toBe('myrole');
  });
});
