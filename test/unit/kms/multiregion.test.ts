import { describe, expect, it } from 'vitest';
import { Kms } from '../../../src/kms/kms.js';
import { DAY, errorName, onCleanup, testKms } from '../../helpers/home.js';

function inRegion(home: string, clock: ReturnType<typeof testKms>['clock'], region: string): Kms {
  const k = Kms.open({ home, clock, region });
  onCleanup(() => k.close());
  return k;
}

describe('multi-Region keys', () => {
  it('a blob encrypted in one region decrypts with the replica in another', () => {
    const { home, clock } = testKms();
    const east = inRegion(home, clock, 'us-east-1');
    const west = inRegion(home, clock, 'eu-west-1');
    const md = east.invoke('CreateKey', { MultiRegion: true }).KeyMetadata;
    expect(md.KeyId).toMatch(/^mrk-[0-9a-f]{32}$/);
    expect(md.MultiRegionConfiguration).toEqual({ MultiRegionKeyType: 'PRIMARY', PrimaryKey: { Arn: md.Arn, Region: 'us-east-1' }, ReplicaKeys: [] });
    const rep = east.invoke('ReplicateKey', { KeyId: md.KeyId, ReplicaRegion: 'eu-west-1', Description: 'replica' });
    expect(rep.ReplicaKeyMetadata.Arn).toBe(`arn:aws:kms:eu-west-1:000000000000:key/${md.KeyId}`);
    expect(rep.ReplicaKeyMetadata.MultiRegionConfiguration).toMatchObject({ MultiRegionKeyType: 'REPLICA', PrimaryKey: { Region: 'us-east-1' } });
    const blob = east.invoke('Encrypt', { KeyId: md.KeyId, Plaintext: Buffer.from('across regions'), EncryptionContext: { r: '1' } }).CiphertextBlob;
    expect(west.invoke('Decrypt', { CiphertextBlob: blob, EncryptionContext: { r: '1' } }).Plaintext.toString()).toBe('across regions');
    const back = west.invoke('Encrypt', { KeyId: md.KeyId, Plaintext: Buffer.from('and back') }).CiphertextBlob;
    expect(east.invoke('Decrypt', { CiphertextBlob: back }).KeyId).toBe(md.Arn);
    expect(east.invoke('DescribeKey', { KeyId: md.KeyId }).KeyMetadata.MultiRegionConfiguration?.ReplicaKeys).toEqual([
      { Arn: rep.ReplicaKeyMetadata.Arn, Region: 'eu-west-1' },
    ]);
    expect(errorName(() => east.invoke('ReplicateKey', { KeyId: md.KeyId, ReplicaRegion: 'eu-west-1' }))).toBe('AlreadyExistsException');
    expect(errorName(() => west.invoke('ReplicateKey', { KeyId: md.KeyId, ReplicaRegion: 'ap-south-1' }))).toBe('UnsupportedOperationException');
    const single = east.invoke('CreateKey', {}).KeyMetadata.KeyId;
    expect(errorName(() => east.invoke('ReplicateKey', { KeyId: single, ReplicaRegion: 'eu-west-1' }))).toBe('UnsupportedOperationException');
  });

  it('rotation is set on the primary only and shared; UpdatePrimaryRegion moves it', () => {
    const { home, clock } = testKms();
    const east = inRegion(home, clock, 'us-east-1');
    const west = inRegion(home, clock, 'eu-west-1');
    const id = east.invoke('CreateKey', { MultiRegion: true }).KeyMetadata.KeyId;
    east.invoke('ReplicateKey', { KeyId: id, ReplicaRegion: 'eu-west-1' });
    expect(errorName(() => west.invoke('EnableKeyRotation', { KeyId: id }))).toBe('UnsupportedOperationException');
    east.invoke('EnableKeyRotation', { KeyId: id, RotationPeriodInDays: 90 });
    expect(west.invoke('GetKeyRotationStatus', { KeyId: id })).toMatchObject({ KeyRotationEnabled: true, RotationPeriodInDays: 90 });
    const old = west.invoke('Encrypt', { KeyId: id, Plaintext: Buffer.from('v1') }).CiphertextBlob;
    const before = east.invoke('DescribeKey', { KeyId: id }).KeyMetadata.CurrentKeyMaterialId;
    clock.advance(91 * DAY);
    // The primary rotates: new material, and the replica uses the same new material.
    const after = east.invoke('DescribeKey', { KeyId: id }).KeyMetadata.CurrentKeyMaterialId;
    expect(after).not.toBe(before);
    expect(west.invoke('DescribeKey', { KeyId: id }).KeyMetadata.CurrentKeyMaterialId).toBe(after);
    expect(east.invoke('ListKeyRotations', { KeyId: id }).Rotations).toEqual([expect.objectContaining({ RotationType: 'AUTOMATIC' })]);
    expect(east.invoke('Decrypt', { CiphertextBlob: old }).Plaintext.toString()).toBe('v1');
    east.invoke('UpdatePrimaryRegion', { KeyId: id, PrimaryRegion: 'eu-west-1' });
    expect(west.invoke('DescribeKey', { KeyId: id }).KeyMetadata.MultiRegionConfiguration?.MultiRegionKeyType).toBe('PRIMARY');
    expect(west.invoke('GetKeyRotationStatus', { KeyId: id })).toMatchObject({ KeyRotationEnabled: true, RotationPeriodInDays: 90 });
    expect(errorName(() => east.invoke('RotateKeyOnDemand', { KeyId: id }))).toBe('UnsupportedOperationException');
    west.invoke('RotateKeyOnDemand', { KeyId: id });
  });

  it('the primary can only be deleted after its replicas', () => {
    const { home, clock } = testKms();
    const east = inRegion(home, clock, 'us-east-1');
    const west = inRegion(home, clock, 'eu-west-1');
    const id = east.invoke('CreateKey', { MultiRegion: true }).KeyMetadata.KeyId;
    east.invoke('ReplicateKey', { KeyId: id, ReplicaRegion: 'eu-west-1' });
    const blob = east.invoke('Encrypt', { KeyId: id, Plaintext: Buffer.from('x') }).CiphertextBlob;
    expect(errorName(() => east.invoke('ScheduleKeyDeletion', { KeyId: id, PendingWindowInDays: 7 }))).toBe('KMSInvalidStateException');
    west.invoke('ScheduleKeyDeletion', { KeyId: id, PendingWindowInDays: 7 });
    expect(errorName(() => east.invoke('ScheduleKeyDeletion', { KeyId: id, PendingWindowInDays: 7 }))).toBe('KMSInvalidStateException');
    clock.advance(7 * DAY);
    expect(errorName(() => west.invoke('DescribeKey', { KeyId: id }))).toBe('NotFoundException');
    // The primary still decrypts: the replica's deletion left the shared material alone.
    expect(east.invoke('Decrypt', { CiphertextBlob: blob }).Plaintext.toString()).toBe('x');
    east.invoke('ScheduleKeyDeletion', { KeyId: id, PendingWindowInDays: 7 });
    clock.advance(7 * DAY);
    expect(errorName(() => east.invoke('Decrypt', { CiphertextBlob: blob }))).toBe('NotFoundException');
    expect(east.ctx.store.materials(id)).toHaveLength(0);
  });
});
