import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';

const keyOf = (home: string, vol: string) => kmsvol(home, ['ec2', 'describe-volumes', '--volume-ids', vol]).json.Volumes[0].KmsKeyId;

describe('EBS encryption by default and the default KMS key', () => {
  it('off by default; when on, create-volume encrypts under the default key; --no-encrypted is refused', () => {
    const home = tempHome();
    expect(kmsvol(home, ['ec2', 'get-ebs-encryption-by-default']).json).toEqual({ EbsEncryptionByDefault: false });
    expect(kmsvol(home, ['ec2', 'get-ebs-default-kms-key-id']).json).toEqual({ KmsKeyId: 'alias/aws/ebs' });
    const plain = kmsvol(home, ['ec2', 'create-volume', '--size', '1']).json;
    expect(plain.Encrypted).toBe(false);
    expect(plain.KmsKeyId).toBeUndefined();

    expect(kmsvol(home, ['ec2', 'enable-ebs-encryption-by-default']).json).toEqual({ EbsEncryptionByDefault: true });
    const managed = kmsvol(home, ['ec2', 'create-volume', '--size', '1']).json;
    expect(managed.Encrypted).toBe(true);
    // As EC2 answers: no key named, none in the answer; describe-volumes shows the one used.
    expect(managed.KmsKeyId).toBeUndefined();
    const ebsKey = kmsvol(home, ['kms', 'describe-key', '--key-id', 'alias/aws/ebs']).json.KeyMetadata;
    expect(ebsKey.KeyManager).toBe('AWS');
    expect(keyOf(home, managed.VolumeId)).toBe(ebsKey.Arn);

    const mine = kmsvol(home, ['kms', 'create-key']).json.KeyMetadata;
    kmsvol(home, ['kms', 'create-alias', '--alias-name', 'alias/ebs-default', '--target-key-id', mine.KeyId]);
    expect(kmsvol(home, ['ec2', 'modify-ebs-default-kms-key-id', '--kms-key-id', 'alias/ebs-default']).json).toEqual({ KmsKeyId: mine.Arn });
    expect(keyOf(home, kmsvol(home, ['ec2', 'create-volume', '--size', '1']).json.VolumeId)).toBe(mine.Arn);
    const bad = kmsvol(home, ['ec2', 'modify-ebs-default-kms-key-id', '--kms-key-id', 'alias/nope']);
    expect(bad.code).toBe(254);
    expect(bad.stderr).toContain('(NotFoundException)');

    const refused = kmsvol(home, ['ec2', 'create-volume', '--size', '1', '--no-encrypted']);
    expect(refused.code).toBe(254);
    expect(refused.stderr).toContain('(InvalidParameterValue)');

    expect(kmsvol(home, ['ec2', 'reset-ebs-default-kms-key-id']).json).toEqual({ KmsKeyId: 'alias/aws/ebs' });
    expect(keyOf(home, kmsvol(home, ['ec2', 'create-volume', '--size', '1']).json.VolumeId)).toBe(ebsKey.Arn);
    expect(kmsvol(home, ['ec2', 'disable-ebs-encryption-by-default']).json).toEqual({ EbsEncryptionByDefault: false });
    expect(kmsvol(home, ['ec2', 'create-volume', '--size', '1']).json.Encrypted).toBe(false);
  });

  it('create-volume validates like EC2', () => {
    const home = tempHome();
    const cases: [string[], string][] = [
      [['--size', '0'], 'InvalidParameterValue'],
      [['--size', '16385'], 'InvalidParameterValue'],
      [['--size', '1', '--volume-type', 'nvme9'], 'InvalidParameterValue'],
      [['--size', '1', '--kms-key-id', 'alias/x'], 'InvalidParameterDependency'],
      [[], 'MissingParameter'],
    ];
    for (const [args, name] of cases) {
      const r = kmsvol(home, ['ec2', 'create-volume', ...args]);
      expect(r.code, args.join(' ')).toBe(254);
      expect(r.stderr).toContain(`(${name})`);
    }
    const kmsRefused = kmsvol(home, ['ec2', 'create-volume', '--size', '1', '--encrypted', '--kms-key-id', 'alias/missing']);
    expect(kmsRefused.code).toBe(254);
    expect(kmsRefused.stderr).toContain('(NotFoundException)');
    expect(kmsvol(home, ['ec2', 'describe-volumes']).json.Volumes).toEqual([]);
    const ev = kmsvol(home, ['events']).json.Events.at(-1);
    expect(ev.detail).toMatchObject({ event: 'createVolume', result: 'failed' });
  });
});
