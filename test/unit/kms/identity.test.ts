import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { assumeRole, createAccessKey, createRole, createUser } from '../../../src/kms/iam.js';
import { putPolicy } from '../../../src/kms/iam-policies.js';
import { SCHEMA_VERSION } from '../../../src/kms/schema.js';
import { KmsStore } from '../../../src/kms/store.js';
import { ROOT as REPO } from '../../helpers/cli.js';
import { errorName, tempHome, testKms } from '../../helpers/home.js';

/**
 * IAM identity policies in KMS decisions, as AWS documents them ("Determining
 * access to an AWS KMS key", "Default key policy"), and the seed's policy
 * claims (seeds/002: "No principal, including root, can access key unless
 * explicitly allowed"; the default policy "gives account that owns key
 * permission to use IAM policies to allow access to all KMS operations";
 * "Grantee: user who uses generated grant").
 */
const ACCT = '000000000000';
const ROOT = `arn:aws:iam::${ACCT}:root`;
const user = (n: string) => `arn:aws:iam::${ACCT}:user/${n}`;
const doc = (...s: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: s });
const ROOT_STATEMENT = { Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: ROOT }, Action: 'kms:*', Resource: '*' };

function setup() {
  const { kms } = testKms();
  const key = kms.invoke('CreateKey', {}).KeyMetadata.Arn;
  const blob = kms.invoke('Encrypt', { KeyId: key, Plaintext: Buffer.from('x') }).CiphertextBlob;
  return { kms, k: kms.ctx, key, blob };
}

describe('identity policies and the default key policy (seed 002)', () => {
  it('the default policy delegates to IAM: the root user may do everything, a user only what its identity policy allows', () => {
    const { kms, k, key, blob } = setup();
    createUser(k, 'nopolicy');
    createUser(k, 'reader');
    putPolicy(k, 'user', 'reader', 'dec', doc({ Effect: 'Allow', Action: 'kms:Decrypt', Resource: key }));
    expect(kms.invokeAs(ROOT, 'Decrypt', { CiphertextBlob: blob }).Plaintext.toString()).toBe('x');
    expect(errorName(() => kms.invokeAs(user('nopolicy'), 'Decrypt', { CiphertextBlob: blob }))).toBe('AccessDeniedException');
    expect(errorName(() => kms.invokeAs(user('nopolicy'), 'ListKeys', {}))).toBe('AccessDeniedException');
    expect(kms.invokeAs(user('reader'), 'Decrypt', { CiphertextBlob: blob }).Plaintext.toString()).toBe('x');
    expect(errorName(() => kms.invokeAs(user('reader'), 'DisableKey', { KeyId: key }))).toBe('AccessDeniedException');
    // A user kmsvol has never heard of has no identity policies at all.
    expect(errorName(() => kms.invokeAs(user('ghost'), 'Decrypt', { CiphertextBlob: blob }))).toBe('AccessDeniedException');
    // An identity policy on another resource does not reach this key.
    putPolicy(k, 'user', 'nopolicy', 'other', doc({ Effect: 'Allow', Action: 'kms:*', Resource: `${key}-other` }));
    expect(errorName(() => kms.invokeAs(user('nopolicy'), 'Decrypt', { CiphertextBlob: blob }))).toBe('AccessDeniedException');
  });

  it('no principal, including root, can use a key whose policy does not allow it; an identity policy alone is not enough', () => {
    const { kms, k, key, blob } = setup();
    createAccessKey(k, 'admin'); // kmsvol-admin: every action
    const onlyBob = doc({ Effect: 'Allow', Principal: { AWS: user('bob') }, Action: 'kms:*', Resource: '*' });
    kms.invoke('PutKeyPolicy', { KeyId: key, Policy: onlyBob, BypassPolicyLockoutSafetyCheck: true });
    expect(errorName(() => kms.invokeAs(ROOT, 'Decrypt', { CiphertextBlob: blob }))).toBe('AccessDeniedException');
    expect(errorName(() => kms.invokeAs(user('admin'), 'Decrypt', { CiphertextBlob: blob }))).toBe('AccessDeniedException');
    // bob is named: the key policy alone lets him in, with no identity policy.
    expect(kms.invokeAs(user('bob'), 'Decrypt', { CiphertextBlob: blob }).Plaintext.toString()).toBe('x');
  });

  it('an explicit Deny in an identity policy wins over the key policy naming the user and over a grant', () => {
    const { kms, k, key, blob } = setup();
    createUser(k, 'dave');
    kms.invoke('PutKeyPolicy', {
      KeyId: key,
      Policy: doc(ROOT_STATEMENT, { Effect: 'Allow', Principal: { AWS: user('dave') }, Action: 'kms:Decrypt', Resource: '*' }),
    });
    kms.invoke('CreateGrant', { KeyId: key, GranteePrincipal: user('dave'), Operations: ['Decrypt'] });
    expect(kms.invokeAs(user('dave'), 'Decrypt', { CiphertextBlob: blob }).Plaintext.toString()).toBe('x');
    putPolicy(k, 'user', 'dave', 'deny', doc({ Effect: 'Deny', Action: 'kms:*', Resource: '*' }));
    expect(() => kms.invokeAs(user('dave'), 'Decrypt', { CiphertextBlob: blob })).toThrow(/with an explicit deny in an identity-based policy/);
  });

  it('a grantee with no identity policy uses the key through its grant (the grant is the permission)', () => {
    const { kms, k, key, blob } = setup();
    createUser(k, 'grantee');
    expect(errorName(() => kms.invokeAs(user('grantee'), 'Decrypt', { CiphertextBlob: blob }))).toBe('AccessDeniedException');
    kms.invoke('CreateGrant', { KeyId: key, GranteePrincipal: user('grantee'), Operations: ['Decrypt'] });
    expect(kms.invokeAs(user('grantee'), 'Decrypt', { CiphertextBlob: blob }).Plaintext.toString()).toBe('x');
  });

  it("a role session has its role's policies, conditions included", () => {
    const { kms, k, key } = setup();
    createRole(k, 'app', doc({ Effect: 'Allow', Principal: { AWS: ROOT }, Action: 'sts:AssumeRole' }));
    const session = `arn:aws:sts::${ACCT}:assumed-role/app/s1`;
    const ctx = { EncryptionContext: { app: 'web' } };
    expect(errorName(() => kms.invokeAs(session, 'Encrypt', { KeyId: key, Plaintext: Buffer.from('y'), ...ctx }))).toBe('AccessDeniedException');
    putPolicy(
      k,
      'role',
      'app',
      'enc',
      doc({ Effect: 'Allow', Action: ['kms:Encrypt', 'kms:Decrypt'], Resource: '*', Condition: { StringEquals: { 'kms:EncryptionContext:app': 'web' } } }),
    );
    const blob = kms.invokeAs(session, 'Encrypt', { KeyId: key, Plaintext: Buffer.from('y'), ...ctx }).CiphertextBlob;
    expect(kms.invokeAs(session, 'Decrypt', { CiphertextBlob: blob, ...ctx }).Plaintext.toString()).toBe('y');
    expect(errorName(() => kms.invokeAs(session, 'Encrypt', { KeyId: key, Plaintext: Buffer.from('y'), EncryptionContext: { app: 'db' } }))).toBe(
      'AccessDeniedException',
    );
  });

  it('AssumeRole: a trust naming only the account needs sts:AssumeRole in the caller identity policy; one naming the caller does not; MaxSessionDuration bounds it', () => {
    const { k } = setup();
    createUser(k, 'erin');
    createRole(k, 'by-account', doc({ Effect: 'Allow', Principal: { AWS: ROOT }, Action: 'sts:AssumeRole' }), { maxSessionDuration: 7200 });
    createRole(k, 'by-name', doc({ Effect: 'Allow', Principal: { AWS: user('erin') }, Action: 'sts:AssumeRole' }));
    const assume = (role: string, DurationSeconds?: number) =>
      assumeRole(k, user('erin'), { RoleArn: `arn:aws:iam::${ACCT}:role/${role}`, RoleSessionName: 's1', DurationSeconds });
    expect(errorName(() => assume('by-account'))).toBe('AccessDenied');
    expect(assume('by-name').AssumedRoleUser.Arn).toBe(`arn:aws:sts::${ACCT}:assumed-role/by-name/s1`);
    expect(errorName(() => assume('by-name', 3601))).toBe('ValidationError');
    putPolicy(k, 'user', 'erin', 'assume', doc({ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: `arn:aws:iam::${ACCT}:role/by-*` }));
    expect(assume('by-account', 7200).AssumedRoleUser.Arn).toBe(`arn:aws:sts::${ACCT}:assumed-role/by-account/s1`);
    expect(errorName(() => assume('by-account', 7201))).toBe('ValidationError');
  });

  it('identity policies are checked when put: no Principal, a Resource, actions of any service', () => {
    const { k } = setup();
    createUser(k, 'u');
    const bad = (d: string) => errorName(() => putPolicy(k, 'user', 'u', 'p', d));
    expect(bad(doc({ Effect: 'Allow', Principal: '*', Action: 'kms:Decrypt', Resource: '*' }))).toBe('MalformedPolicyDocument');
    expect(bad(doc({ Effect: 'Allow', Action: 'kms:Decrypt' }))).toBe('MalformedPolicyDocument');
    expect(bad('not json')).toBe('MalformedPolicyDocument');
    expect(putPolicy(k, 'user', 'u', 'p', doc({ Effect: 'Allow', Action: ['kms:Decrypt', 'sts:AssumeRole', 'iam:Get*'], Resource: '*' }))).toEqual({});
    expect(errorName(() => putPolicy(k, 'user', 'nobody', 'p', doc({ Effect: 'Allow', Action: '*', Resource: '*' })))).toBe('NoSuchEntity');
  });
});

describe('KMS store schema version 4 (IAM users and identity policies, imported materials pending rotation)', () => {
  it('a version 3 store is migrated: users of its access keys become users with the kmsvol-admin policy, roles get a 1-hour MaxSessionDuration', () => {
    expect(SCHEMA_VERSION).toBe('4');
    const dir = tempHome('kmsvol-v3-');
    const file = path.join(dir, 'kms.db');
    fs.copyFileSync(path.join(REPO, 'test/fixtures/home-v0/kms.db'), file, fs.constants.COPYFILE_EXCL);
    fs.chmodSync(file, 0o600);
    const db = new Database(file);
    expect(db.prepare("SELECT v FROM meta WHERE k = 'schema_version'").pluck().get()).toBe('3');
    db.prepare('INSERT INTO iam_access_keys VALUES (?, ?, ?, ?)').run('AKIAOLD', 'olduser', Buffer.alloc(8), 1);
    db.prepare('INSERT INTO iam_roles VALUES (?, ?, ?, ?)').run('oldrole', 'AROAOLD', '{}', 1);
    db.close();
    const store = new KmsStore(file);
    try {
      expect(store.getMeta('schema_version')).toBe('4');
      expect(store.user('olduser')).toBeDefined();
      expect(store.identityPolicies('user', 'olduser').map((p) => [p.policy_name, JSON.parse(p.document)])).toEqual([
        ['kmsvol-admin', { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] }],
      ]);
      expect(store.role('oldrole')).toMatchObject({ max_session_duration: 3600, description: null });
      // Materials gain their pending-rotation flag and description (ImportType NEW_KEY_MATERIAL, KeyMaterialDescription).
      expect(store.db.prepare('SELECT count(*) FROM materials WHERE pending <> 0 OR description IS NOT NULL').pluck().get()).toBe(0);
    } finally {
      store.close();
    }
  });

  it('a version 1 store (no IAM tables yet) is migrated to version 4', () => {
    const dir = tempHome('kmsvol-v1-');
    const file = path.join(dir, 'kms.db');
    fs.copyFileSync(path.join(REPO, 'test/fixtures/volume-v1/kms.db'), file, fs.constants.COPYFILE_EXCL);
    fs.chmodSync(file, 0o600);
    const store = new KmsStore(file);
    try {
      expect(store.getMeta('schema_version')).toBe('4');
      expect(store.insertUser({ user_name: 'u', user_id: 'AIDAX', created: 1 })).toBe(true);
    } finally {
      store.close();
    }
  });
});
