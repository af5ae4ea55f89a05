import { describe, expect, it } from 'vitest';
import { createUser } from '../../../src/kms/iam.js';
import { errorName, testKms } from '../../helpers/home.js';

/**
 * Adversarial review (breaker2). IAM user names are unique regardless of
 * case (IAM User Guide, "IAM identifiers": "User names are not distinguished
 * by case. For example, you cannot create users named both TESTUSER and
 * testuser"). kmsvol lets `carol` and `CAROL` coexist as two principals, so
 * a key policy, grant or Deny written for user/carol does not reach the
 * second one, and `kmsvol iam create-access-key --user-name Carol` (a typo)
 * silently makes a new administrator instead of a key for carol.
 */
describe('IAM user names are unique without regard to case', () => {
  it('CreateUser CAROL after carol is EntityAlreadyExists', () => {
    const { kms } = testKms();
    createUser(kms.ctx, 'carol');
    expect(errorName(() => createUser(kms.ctx, 'carol'))).toBe('EntityAlreadyExists'); // the control: the same name
    expect(errorName(() => createUser(kms.ctx, 'CAROL'))).toBe('EntityAlreadyExists');
  });
});
