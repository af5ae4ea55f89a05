import { describe, expect, it } from 'vitest';
import { cardGrantRequest } from '../../../src/card/grants.js';
import { assumeRole, createRole, createUser } from '../../../src/kms/iam.js';
import { putPolicy } from '../../../src/kms/iam-policies.js';
import { testKms } from '../../helpers/home.js';

/**
 * Adversarial review (breaker2). The card's principal is a session of the
 * role `kmsvol-card` named by the volume id, and every card grant names
 * `arn:aws:sts::ACCOUNT:assumed-role/kmsvol-card/<volume id>` (card/grants.ts).
 * kmsvol makes that role "the first time it is named" (iam.ts roleRow), as a
 * service-linked role -- but IAM CreateRole accepts the name too. A principal
 * allowed only iam:CreateRole (a delegated role admin, far less than an
 * administrator) who names it first writes its trust policy: trusting itself
 * by name, it then assumes kmsvol-card with RoleSessionName vol-<id> and uses
 * that volume's card grant (Decrypt of the volume's data key). In AWS a
 * service-linked role cannot be made with CreateRole. The name should be
 * reserved (CreateRole refused), whoever calls it.
 */
const ACCT = '000000000000';
const VOL = 'vol-0123456789abcdef0';

describe('the card role is reserved', () => {
  it('CreateRole kmsvol-card is refused (a role admin cannot take over the cards’ grants)', () => {
    const { kms } = testKms();
    const k = kms.ctx;
    createUser(k, 'mallory');
    putPolicy(
      k,
      'user',
      'mallory',
      'roles',
      JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iam:CreateRole', Resource: '*' }] }),
    );
    const trustMe = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCT}:user/mallory` }, Action: 'sts:AssumeRole' }],
    });
    // A volume's data key and its card grant, as attach makes them (before mallory acts, or after: the grant is by name).
    const key = kms.invoke('CreateKey', {}).KeyMetadata.Arn as string;
    const ctx = { 'aws:ebs:id': VOL };
    const { CiphertextBlob } = kms.invoke('GenerateDataKeyWithoutPlaintext', { KeyId: key, NumberOfBytes: 64, EncryptionContext: ctx });
    kms.invoke('CreateGrant', cardGrantRequest(key, VOL));
    let refused = false;
    try {
      createRole(k, 'kmsvol-card', trustMe);
    } catch {
      refused = true;
    }
    if (!refused) {
      // What the takeover gives: a session mallory alone may open, which the card grant names.
      const s = assumeRole(k, `arn:aws:iam::${ACCT}:user/mallory`, { RoleArn: `arn:aws:iam::${ACCT}:role/kmsvol-card`, RoleSessionName: VOL });
      const principal = s.AssumedRoleUser.Arn as string;
      const plain = kms.invokeAs(principal, 'Decrypt', { CiphertextBlob, EncryptionContext: ctx }).Plaintext as Buffer;
      expect(plain.length, `${principal} decrypted the volume's data key`).toBe(0);
    }
    expect(refused).toBe(true);
  });
});
