import { describe, expect, it } from 'vitest';
import { createUser } from '../../../src/kms/iam.js';
import { putPolicy } from '../../../src/kms/iam-policies.js';
import { requireIdentityAllow } from '../../../src/kms/identity.js';
import { errorName, testKms } from '../../helpers/home.js';

/**
 * Adversarial review (breaker2): a Deny conditioned on a key kmsvol does not
 * put in the request context never applies, so the policy fails OPEN.
 * docs/iam.md says a missing key makes the condition false "as IAM evaluates
 * a missing key" -- but IAM's request context always carries the global keys
 * below (aws:RequestedRegion, aws:PrincipalAccount, aws:username), so in AWS
 * these Deny statements deny. The safe choices are to fill the keys AWS
 * always sets (kmsvol knows all three) or to refuse a policy that conditions
 * on a key kmsvol never sets; silently dropping a Deny is neither. And the
 * IAM endpoint's own decisions (requireIdentityAllow) pass no condition keys
 * at all, so even aws:PrincipalArn -- which docs/iam.md lists as modelled --
 * never matches there.
 */
const ACCT = '000000000000';
const user = (n: string) => `arn:aws:iam::${ACCT}:user/${n}`;
const doc = (...s: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: s });
const ALLOW_ALL = { Effect: 'Allow', Action: '*', Resource: '*' };

describe('identity-policy Deny statements conditioned on global keys', () => {
  for (const [name, key, value] of [
    ['aws:RequestedRegion', 'StringEquals', (region: string) => ({ 'aws:RequestedRegion': region })],
    ['aws:PrincipalAccount', 'StringEquals', () => ({ 'aws:PrincipalAccount': ACCT })],
    ['aws:username', 'StringEquals', () => ({ 'aws:username': 'mallory' })],
  ] as const) {
    it(`a Deny on ${name} that matches the request denies it (not fail-open)`, () => {
      const { kms } = testKms();
      const k = kms.ctx;
      const keyArn = kms.invoke('CreateKey', {}).KeyMetadata.Arn as string;
      const blob = kms.invoke('Encrypt', { KeyId: keyArn, Plaintext: Buffer.from('x') }).CiphertextBlob;
      createUser(k, 'mallory');
      putPolicy(k, 'user', 'mallory', 'all', doc(ALLOW_ALL, { Effect: 'Deny', Action: 'kms:Decrypt', Resource: '*', Condition: { [key]: value(k.region) } }));
      expect(errorName(() => kms.invokeAs(user('mallory'), 'Decrypt', { CiphertextBlob: blob }))).toBe('AccessDeniedException');
    });
  }

  it('the control: a Deny on aws:PrincipalArn (a key kmsvol sets) denies a KMS call', () => {
    const { kms } = testKms();
    const k = kms.ctx;
    const keyArn = kms.invoke('CreateKey', {}).KeyMetadata.Arn as string;
    const blob = kms.invoke('Encrypt', { KeyId: keyArn, Plaintext: Buffer.from('x') }).CiphertextBlob;
    createUser(k, 'mallory');
    putPolicy(k, 'user', 'mallory', 'all', doc(ALLOW_ALL));
    expect(kms.invokeAs(user('mallory'), 'Decrypt', { CiphertextBlob: blob }).Plaintext.toString()).toBe('x');
    putPolicy(
      k,
      'user',
      'mallory',
      'all',
      doc(ALLOW_ALL, { Effect: 'Deny', Action: 'kms:Decrypt', Resource: '*', Condition: { ArnEquals: { 'aws:PrincipalArn': user('mallory') } } }),
    );
    expect(errorName(() => kms.invokeAs(user('mallory'), 'Decrypt', { CiphertextBlob: blob }))).toBe('AccessDeniedException');
  });

  it('an IAM action denied on aws:PrincipalArn (a key docs/iam.md says is modelled) is denied through the IAM endpoint', () => {
    const { kms } = testKms();
    const k = kms.ctx;
    createUser(k, 'mallory');
    putPolicy(
      k,
      'user',
      'mallory',
      'all',
      doc(ALLOW_ALL, { Effect: 'Deny', Action: 'iam:PutUserPolicy', Resource: '*', Condition: { ArnEquals: { 'aws:PrincipalArn': user('mallory') } } }),
    );
    expect(errorName(() => requireIdentityAllow(k.store, ACCT, user('mallory'), 'iam:PutUserPolicy', user('mallory')))).toBe('AccessDenied');
  });
});
