import { describe, expect, it } from 'vitest';
import { KMS_HANDLERS } from '../../../src/kms/kms.js';
import { errorName, testKms } from '../../helpers/home.js';
import { fileTimeout } from '../../helpers/timeouts.js';

// The slowest test took 208 ms (test/helpers/timeouts.ts).
fileTimeout(1000);

/**
 * Precondition: nothing is allowed outside a call. The handlers are public
 * (the library exports them as KMS_OPERATIONS); one reached without a caller —
 * not through Kms.invoke or invokeAs — is refused with AccessDeniedException
 * and changes nothing, whatever kind of authorization it needs.
 */
type Handler = (k: unknown, req: Record<string, unknown>) => unknown;
const direct = (op: keyof typeof KMS_HANDLERS) => KMS_HANDLERS[op] as unknown as Handler;

function setup() {
  const t = testKms();
  const id = t.kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
  return { ...t, id };
}

describe('authorization fails closed without a caller', () => {
  it('an operation on a key (DisableKey) reached without a caller is AccessDeniedException and the key stays Enabled', () => {
    const { kms, id } = setup();
    expect(errorName(() => direct('DisableKey')(kms.ctx, { KeyId: id }))).toBe('AccessDeniedException');
    expect(kms.invoke('DescribeKey', { KeyId: id }).KeyMetadata.KeyState).toBe('Enabled');
  });

  it('a cryptographic operation (Decrypt) reached without a caller is AccessDeniedException and returns no plaintext', () => {
    const { kms, id } = setup();
    const blob = kms.invoke('Encrypt', { KeyId: id, Plaintext: Buffer.from('secret') }).CiphertextBlob;
    let out: unknown;
    const name = errorName(() => {
      out = direct('Decrypt')(kms.ctx, { CiphertextBlob: blob });
    });
    expect(name).toBe('AccessDeniedException');
    expect(out).toBeUndefined();
  });

  it('an action IAM alone controls (CreateKey) reached without a caller is AccessDeniedException and creates no key', () => {
    const { kms } = setup();
    const before = kms.invoke('ListKeys', {}).Keys.length;
    expect(errorName(() => direct('CreateKey')(kms.ctx, {}))).toBe('AccessDeniedException');
    expect(kms.invoke('ListKeys', {}).Keys).toHaveLength(before);
  });

  it('CreateGrant and RetireGrant reached without a caller are AccessDeniedException and leave the grants as they were', () => {
    const { kms, id } = setup();
    const grantee = 'arn:aws:iam::000000000000:user/alice';
    const { GrantId } = kms.invoke('CreateGrant', { KeyId: id, GranteePrincipal: grantee, Operations: ['Decrypt'] });
    expect(errorName(() => direct('CreateGrant')(kms.ctx, { KeyId: id, GranteePrincipal: grantee, Operations: ['Encrypt'] }))).toBe('AccessDeniedException');
    expect(errorName(() => direct('RetireGrant')(kms.ctx, { KeyId: id, GrantId }))).toBe('AccessDeniedException');
    expect(kms.invoke('ListGrants', { KeyId: id }).Grants.map((g) => g.GrantId)).toEqual([GrantId]);
  });

  it('the same operations through invoke, with a caller, are allowed (the refusal above is for the missing caller)', () => {
    const { kms, id } = setup();
    kms.invoke('DisableKey', { KeyId: id });
    expect(kms.invoke('DescribeKey', { KeyId: id }).KeyMetadata.KeyState).toBe('Disabled');
  });
});
