import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { kmsvol } from '../helpers/cli.js';
import { startEndpoint } from '../helpers/ec2-endpoint.js';
import { tempHome } from '../helpers/home.js';

/**
 * Seed 003's EC2 commands (shared/seeds/003_*.txt) replayed with the AWS CLI
 * v2 from Debian against kmsvol serve: the same commands, and answers with
 * the transcript's fields, in its order, and its states.
 */
function aws(env: Record<string, string>, url: string, args: string[]): any {
  const r = spawnSync('/usr/bin/aws', [...args, '--endpoint-url', url, '--output', 'json'], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`aws ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
}

describe("seed 003's EC2 transcript through aws ec2 --endpoint-url", () => {
  it('describe-volumes, create-snapshot, create-volume from it under another key, disable-key, delete-volume, delete-snapshot', async () => {
    const home = tempHome('kmsvol-seed003-');
    const ep = await startEndpoint(home, 'us-east-1');
    const run = (args: string[]) => aws({ ...ep.env, AWS_ENDPOINT_URL: '' }, ep.url, args);
    const keyA = run(['kms', 'create-key']).KeyMetadata.KeyId;
    const keyB = run(['kms', 'create-key']).KeyMetadata.KeyId;
    // The transcript starts from an existing 10 GiB gp3 volume under key A.
    const vol = run([
      'ec2',
      'create-volume',
      '--availability-zone',
      'us-east-1a',
      '--size',
      '10',
      '--encrypted',
      '--kms-key-id',
      keyA,
      '--volume-type',
      'gp3',
    ]).VolumeId;
    run(['ec2', 'wait', 'volume-available', '--volume-ids', vol]);

    const described = run(['ec2', 'describe-volumes', '--volume-id', vol]);
    expect(Object.keys(described)).toEqual(['Volumes']);
    const v = described.Volumes[0];
    expect(Object.keys(v)).toEqual([
      'Attachments',
      'AvailabilityZone',
      'CreateTime',
      'Encrypted',
      'KmsKeyId',
      'Size',
      'SnapshotId',
      'State',
      'VolumeId',
      'Iops',
      'VolumeType',
      'MultiAttachEnabled',
      'Throughput',
    ]);
    expect(v).toMatchObject({
      Attachments: [],
      AvailabilityZone: 'us-east-1a',
      Encrypted: true,
      KmsKeyId: `arn:aws:kms:us-east-1:000000000000:key/${keyA}`,
      Size: 10,
      SnapshotId: '',
      State: 'available',
      VolumeId: vol,
      Iops: 3000,
      VolumeType: 'gp3',
      MultiAttachEnabled: false,
      Throughput: 125,
    });
    expect(v.CreateTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$/);

    const snap = run(['ec2', 'create-snapshot', '--volume-id', vol]);
    expect(Object.keys(snap)).toEqual([
      'Description',
      'Encrypted',
      'OwnerId',
      'Progress',
      'SnapshotId',
      'StartTime',
      'State',
      'VolumeId',
      'VolumeSize',
      'Tags',
    ]);
    expect(snap).toMatchObject({
      Description: '',
      Encrypted: true,
      OwnerId: '000000000000',
      Progress: '',
      State: 'pending',
      VolumeId: vol,
      VolumeSize: 10,
      Tags: [],
    });
    expect(snap.SnapshotId).toMatch(/^snap-[0-9a-f]{17}$/);
    run(['ec2', 'wait', 'snapshot-completed', '--snapshot-ids', snap.SnapshotId]);

    const created = run([
      'ec2',
      'create-volume',
      '--availability-zone',
      'us-east-1a',
      '--encrypted',
      '--kms-key-id',
      keyB,
      '--snapshot-id',
      snap.SnapshotId,
      '--volume-type',
      'gp3',
    ]);
    expect(Object.keys(created)).toEqual([
      'AvailabilityZone',
      'CreateTime',
      'Encrypted',
      'KmsKeyId',
      'Size',
      'SnapshotId',
      'State',
      'VolumeId',
      'Iops',
      'Tags',
      'VolumeType',
      'MultiAttachEnabled',
      'Throughput',
    ]);
    expect(created).toMatchObject({
      AvailabilityZone: 'us-east-1a',
      Encrypted: true,
      KmsKeyId: keyB,
      Size: 10,
      SnapshotId: snap.SnapshotId,
      State: 'creating',
      Iops: 3000,
      Tags: [],
      VolumeType: 'gp3',
      MultiAttachEnabled: false,
      Throughput: 125,
    });
    run(['ec2', 'wait', 'volume-available', '--volume-ids', created.VolumeId]);

    expect(run(['kms', 'disable-key', '--key-id', keyA])).toBeUndefined();
    expect(run(['ec2', 'delete-volume', '--volume-id', vol])).toBeUndefined();
    expect(run(['ec2', 'delete-snapshot', '--snapshot-id', snap.SnapshotId])).toBeUndefined();
    // The volume made from the snapshot has its own data key under key B: it outlives key A and the snapshot.
    expect(run(['ec2', 'describe-volumes', '--volume-ids', created.VolumeId]).Volumes[0]).toMatchObject({
      State: 'available',
      KmsKeyId: `arn:aws:kms:us-east-1:000000000000:key/${keyB}`,
    });
    expect(run(['ec2', 'describe-volumes', '--filters', `Name=volume-id,Values=${vol}`]).Volumes).toEqual([]);
  }, 180_000);

  it('the same commands with kmsvol in place of aws: the same fields, in the same order, and states', () => {
    const home = tempHome('kmsvol-seed003-');
    const run = (args: string[]) => {
      const r = kmsvol(home, args);
      if (r.code !== 0) throw new Error(`kmsvol ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
      return r.json;
    };
    const keyA = run(['kms', 'create-key']).KeyMetadata.KeyId;
    const keyB = run(['kms', 'create-key']).KeyMetadata.KeyId;
    const vol = run([
      'ec2',
      'create-volume',
      '--availability-zone',
      'us-east-1a',
      '--size',
      '10',
      '--encrypted',
      '--kms-key-id',
      keyA,
      '--volume-type',
      'gp3',
    ]).VolumeId;

    const v = run(['ec2', 'describe-volumes', '--volume-id', vol]).Volumes[0];
    expect(Object.keys(v)).toEqual([
      'Attachments',
      'AvailabilityZone',
      'CreateTime',
      'Encrypted',
      'KmsKeyId',
      'Size',
      'SnapshotId',
      'State',
      'VolumeId',
      'Iops',
      'VolumeType',
      'MultiAttachEnabled',
      'Throughput',
    ]);
    expect(v).toMatchObject({
      Attachments: [],
      Encrypted: true,
      KmsKeyId: `arn:aws:kms:us-east-1:000000000000:key/${keyA}`,
      Size: 10,
      SnapshotId: '',
      State: 'available',
      Iops: 3000,
      VolumeType: 'gp3',
      MultiAttachEnabled: false,
      Throughput: 125,
    });

    const snap = run(['ec2', 'create-snapshot', '--volume-id', vol]);
    expect(Object.keys(snap)).toEqual([
      'Description',
      'Encrypted',
      'OwnerId',
      'Progress',
      'SnapshotId',
      'StartTime',
      'State',
      'VolumeId',
      'VolumeSize',
      'Tags',
    ]);
    expect(snap).toMatchObject({ Description: '', Encrypted: true, Progress: '', State: 'pending', VolumeId: vol, VolumeSize: 10, Tags: [] });

    const created = run([
      'ec2',
      'create-volume',
      '--availability-zone',
      'us-east-1a',
      '--encrypted',
      '--kms-key-id',
      keyB,
      '--snapshot-id',
      snap.SnapshotId,
      '--volume-type',
      'gp3',
    ]);
    expect(Object.keys(created)).toEqual([
      'AvailabilityZone',
      'CreateTime',
      'Encrypted',
      'KmsKeyId',
      'Size',
      'SnapshotId',
      'State',
      'VolumeId',
      'Iops',
      'Tags',
      'VolumeType',
      'MultiAttachEnabled',
      'Throughput',
    ]);
    expect(created).toMatchObject({ Encrypted: true, KmsKeyId: keyB, Size: 10, SnapshotId: snap.SnapshotId, State: 'creating', Tags: [] });

    expect(run(['kms', 'disable-key', '--key-id', keyA])).toBeUndefined();
    expect(run(['ec2', 'delete-volume', '--volume-id', vol])).toBeUndefined();
    expect(run(['ec2', 'delete-snapshot', '--snapshot-id', snap.SnapshotId])).toBeUndefined();
    expect(run(['ec2', 'describe-volumes', '--volume-ids', created.VolumeId]).Volumes[0].State).toBe('available');
  }, 120_000);
});
