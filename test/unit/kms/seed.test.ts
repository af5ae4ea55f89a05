import { describe, expect, it } from 'vitest';
import { Kms } from '../../../src/kms/kms.js';
import { applySeed } from '../../../src/kms/seed.js';
import { DAY, errorName, onCleanup, testKms } from '../../helpers/home.js';

const A = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
const B = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';
const M = `mrk-${'c'.repeat(32)}`;

describe('seed files (library)', () => {
  it('places keys in their Region, schedules PendingDeletion keys, and makes mrk- ids multi-Region', () => {
    const { kms, home, clock } = testKms();
    const r = applySeed(kms, [
      { KeyId: A, Region: 'eu-west-1', Aliases: ['alias/eu'] },
      { KeyId: B, KeyState: 'PendingDeletion', PendingWindowInDays: 7 },
      { KeyId: M, KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' },
    ]);
    expect(r.Created).toEqual([
      `arn:aws:kms:eu-west-1:000000000000:key/${A}`,
      `arn:aws:kms:us-east-1:000000000000:key/${B}`,
      `arn:aws:kms:us-east-1:000000000000:key/${M}`,
    ]);
    expect(errorName(() => kms.invoke('DescribeKey', { KeyId: A }))).toBe('NotFoundException');
    const eu = Kms.open({ home, clock, region: 'eu-west-1' });
    onCleanup(() => eu.close());
    expect(eu.invoke('DescribeKey', { KeyId: 'alias/eu' }).KeyMetadata.KeyId).toBe(A);
    expect(kms.invoke('DescribeKey', { KeyId: B }).KeyMetadata).toMatchObject({
      KeyState: 'PendingDeletion',
      DeletionDate: new Date(clock.now().getTime() + 7 * DAY),
    });
    expect(kms.invoke('DescribeKey', { KeyId: M }).KeyMetadata).toMatchObject({ MultiRegion: true, KeySpec: 'ECC_NIST_P256' });
  });

  it('is all or nothing: an entry that fails leaves the store as it was; an alias on another key is a conflict', () => {
    const { kms, clock } = testKms();
    // ECC_NIST_P256 has two usages, so KeyUsage must be given.
    expect(errorName(() => applySeed(kms, [{ KeyId: A }, { KeyId: M, KeySpec: 'ECC_NIST_P256' }]))).toBe('ValidationException');
    expect(kms.invoke('ListKeys', {}).Keys).toEqual([]);
    applySeed(kms, [{ KeyId: A, Aliases: ['alias/x'] }]);
    expect(errorName(() => applySeed(kms, [{ KeyId: B, Aliases: ['alias/x'] }]))).toBe('SeedConflictException');
    expect(kms.invoke('ListKeys', {}).Keys.map((k) => k.KeyId)).toEqual([A]);
    // A key pending deletion differs in KeyState; once deleted, its id is never reused.
    kms.invoke('ScheduleKeyDeletion', { KeyId: A, PendingWindowInDays: 7 });
    expect(() => applySeed(kms, [{ KeyId: A }])).toThrow(/field KeyState is "PendingDeletion" in the store but "Enabled"/);
    clock.advance(8 * DAY);
    expect(kms.invoke('ListKeys', {}).Keys).toEqual([]);
    expect(() => applySeed(kms, [{ KeyId: A }])).toThrow(/names a key that was deleted from this store; key ids are never reused/);
  });
});
