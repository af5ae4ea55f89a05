import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ec2 from '@aws-sdk/client-ec2';
import * as kms from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kmsvol } from '../../src/api.js';
import { kmsvol } from '../helpers/cli.js';
import type { Endpoint } from '../helpers/ec2-endpoint.js';
import { startEndpoint } from '../helpers/ec2-endpoint.js';

/**
 * EC2 conformance through @aws-sdk/client-ec2 (a client nobody here wrote):
 * field names and types, pagination, filters, tags, DryRun both ways, the
 * documented errors, and each waiter. One endpoint for the file.
 */
let home: string;
let ep: Endpoint;
let c: ec2.EC2Client;
let k: kms.KMSClient;
const cleanups: (() => void)[] = [];

beforeAll(async () => {
  // One home and one endpoint for the file, removed in afterAll (the per-test helpers clean up after each test).
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-ec2sdk-'));
  cleanups.push(() => fs.rmSync(home, { recursive: true, force: true }));
  ep = await startEndpoint(home, 'us-east-1', (fn) => cleanups.push(fn));
  const credentials = { accessKeyId: ep.env.AWS_ACCESS_KEY_ID!, secretAccessKey: ep.env.AWS_SECRET_ACCESS_KEY! };
  c = new ec2.EC2Client({ endpoint: ep.url, region: ep.region, credentials });
  k = new kms.KMSClient({ endpoint: ep.url, region: ep.region, credentials });
}, 60_000);

afterAll(() => {
  while (cleanups.length) cleanups.pop()!();
});

async function fails(p: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number } }> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x as Error,
  );
  if (!e) throw new Error('expected the call to fail, but it succeeded');
  return e;
}

/** Poll until the volume's attachment is attached (no SDK waiter looks at the attachment's state). */
async function attached(volumeId: string): Promise<void> {
  const end = Date.now() + 60_000;
  for (;;) {
    const a = (await c.send(new ec2.DescribeVolumesCommand({ VolumeIds: [volumeId] }))).Volumes![0]!.Attachments![0];
    if (a?.State === 'attached') return;
    if (Date.now() > end) throw new Error(`${volumeId} is not attached after 60 s (attachment: ${JSON.stringify(a)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const WAIT = { maxWaitTime: 60, minDelay: 1, maxDelay: 2 };

async function newVolume(input: Partial<ec2.CreateVolumeCommandInput> = {}) {
  const v = await c.send(new ec2.CreateVolumeCommand({ Size: 1, AvailabilityZone: `${ep.region}a`, ...input }));
  await ec2.waitUntilVolumeAvailable({ client: c, ...WAIT }, { VolumeIds: [v.VolumeId!] });
  return v;
}

describe('@aws-sdk/client-ec2 against kmsvol', () => {
  it('CreateVolume answers creating with EC2 types; the waiter sees available; DescribeVolumes shows the key ARN; ClientToken is idempotent', async () => {
    const key = (await k.send(new kms.CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const v = await c.send(
      new ec2.CreateVolumeCommand({
        // 4,000 IOPS needs 8 GiB: gp3 allows at most 500 IOPS per GiB.
        Size: 8,
        Encrypted: true,
        KmsKeyId: key,
        AvailabilityZone: `${ep.region}a`,
        VolumeType: 'gp3',
        Iops: 4000,
        Throughput: 250,
        ClientToken: 'token-1',
      }),
    );
    expect(v.State).toBe('creating');
    expect(v.VolumeId).toMatch(/^vol-[0-9a-f]{17}$/);
    expect(v.CreateTime).toBeInstanceOf(Date);
    expect(v.Size).toBe(8);
    expect(v.Encrypted).toBe(true);
    expect(v.KmsKeyId).toBe(key);
    expect([v.Iops, v.Throughput, v.VolumeType, v.MultiAttachEnabled, v.SnapshotId]).toEqual([4000, 250, 'gp3', false, '']);
    await ec2.waitUntilVolumeAvailable({ client: c, ...WAIT }, { VolumeIds: [v.VolumeId!] });
    const d = (await c.send(new ec2.DescribeVolumesCommand({ VolumeIds: [v.VolumeId!] }))).Volumes![0]!;
    expect(d.State).toBe('available');
    expect(d.KmsKeyId).toBe(`arn:aws:kms:${ep.region}:000000000000:key/${key}`);
    expect(d.Attachments).toEqual([]);
    const again = await c.send(
      new ec2.CreateVolumeCommand({
        // 4,000 IOPS needs 8 GiB: gp3 allows at most 500 IOPS per GiB.
        Size: 8,
        Encrypted: true,
        KmsKeyId: key,
        AvailabilityZone: `${ep.region}a`,
        VolumeType: 'gp3',
        Iops: 4000,
        Throughput: 250,
        ClientToken: 'token-1',
      }),
    );
    expect(again.VolumeId).toBe(v.VolumeId);
    const other = await fails(c.send(new ec2.CreateVolumeCommand({ Size: 3, AvailabilityZone: `${ep.region}a`, ClientToken: 'token-1' })));
    expect(other.name).toBe('IdempotentParameterMismatch');
    await c.send(new ec2.DeleteVolumeCommand({ VolumeId: v.VolumeId! }));
    await ec2.waitUntilVolumeDeleted({ client: c, ...WAIT }, { VolumeIds: [v.VolumeId!] });
  }, 60_000);

  it('pagination: MaxResults 5 over 7 volumes gives two pages; the paginator sees all; MaxResults with VolumeIds is refused', async () => {
    const made: string[] = [];
    for (let i = 0; i < 7; i++)
      made.push((await newVolume({ TagSpecifications: [{ ResourceType: 'volume', Tags: [{ Key: 'batch', Value: 'paged' }] }] })).VolumeId!);
    const filter = [{ Name: 'tag:batch', Values: ['paged'] }];
    const p1 = await c.send(new ec2.DescribeVolumesCommand({ Filters: filter, MaxResults: 5 }));
    expect(p1.Volumes).toHaveLength(5);
    expect(typeof p1.NextToken).toBe('string');
    const p2 = await c.send(new ec2.DescribeVolumesCommand({ Filters: filter, MaxResults: 5, NextToken: p1.NextToken }));
    expect(p2.Volumes).toHaveLength(2);
    expect(p2.NextToken).toBeUndefined();
    expect([...p1.Volumes!, ...p2.Volumes!].map((v) => v.VolumeId).sort()).toEqual([...made].sort());
    const seen: string[] = [];
    for await (const page of ec2.paginateDescribeVolumes({ client: c, pageSize: 5 }, { Filters: filter })) seen.push(...page.Volumes!.map((v) => v.VolumeId!));
    expect(seen.sort()).toEqual([...made].sort());
    expect((await fails(c.send(new ec2.DescribeVolumesCommand({ VolumeIds: [made[0]!], MaxResults: 5 })))).name).toBe('InvalidParameterCombination');
    expect((await fails(c.send(new ec2.DescribeVolumesCommand({ MaxResults: 4 })))).name).toBe('InvalidParameterValue');
    expect((await fails(c.send(new ec2.DescribeVolumesCommand({ NextToken: 'not-a-token' })))).name).toBe('InvalidParameterValue');
    for (const id of made) await c.send(new ec2.DeleteVolumeCommand({ VolumeId: id }));
  }, 60_000);

  it('filters (wildcards, tags, attachment.status) and tags (CreateTags, DescribeTags, DeleteTags by key and by value)', async () => {
    const a = (await newVolume({ VolumeType: 'gp2', TagSpecifications: [{ ResourceType: 'volume', Tags: [{ Key: 'team', Value: 'blue' }] }] })).VolumeId!;
    const b = (await newVolume({ VolumeType: 'gp3', Size: 2 })).VolumeId!;
    const ids = async (Filters: ec2.Filter[]) =>
      (await c.send(new ec2.DescribeVolumesCommand({ Filters, VolumeIds: [a, b] }))).Volumes!.map((v) => v.VolumeId).sort();
    expect(await ids([{ Name: 'volume-type', Values: ['gp*'] }])).toEqual([a, b].sort());
    expect(await ids([{ Name: 'volume-type', Values: ['gp2'] }])).toEqual([a]);
    expect(await ids([{ Name: 'size', Values: ['2'] }])).toEqual([b]);
    expect(await ids([{ Name: 'tag:team', Values: ['bl?e'] }])).toEqual([a]);
    expect(
      await ids([
        { Name: 'tag-key', Values: ['team'] },
        { Name: 'status', Values: ['available'] },
      ]),
    ).toEqual([a]);
    expect(await ids([{ Name: 'attachment.status', Values: ['attached'] }])).toEqual([]);
    expect((await fails(c.send(new ec2.DescribeVolumesCommand({ Filters: [{ Name: 'colour', Values: ['x'] }] })))).name).toBe('InvalidParameterValue');

    await c.send(
      new ec2.CreateTagsCommand({
        Resources: [a, b],
        Tags: [
          { Key: 'env', Value: 'test' },
          { Key: 'owner', Value: 'me' },
        ],
      }),
    );
    const tags = (await c.send(new ec2.DescribeTagsCommand({ Filters: [{ Name: 'resource-id', Values: [b] }] }))).Tags!;
    expect(tags).toEqual([
      { Key: 'env', ResourceId: b, ResourceType: 'volume', Value: 'test' },
      { Key: 'owner', ResourceId: b, ResourceType: 'volume', Value: 'me' },
    ]);
    await c.send(new ec2.DeleteTagsCommand({ Resources: [b], Tags: [{ Key: 'env', Value: 'other' }, { Key: 'owner' }] }));
    expect((await c.send(new ec2.DescribeVolumesCommand({ VolumeIds: [b] }))).Volumes![0]!.Tags).toEqual([{ Key: 'env', Value: 'test' }]);
    expect((await fails(c.send(new ec2.CreateTagsCommand({ Resources: ['vol-0123456789abcdef0'], Tags: [{ Key: 'x', Value: 'y' }] })))).name).toBe(
      'InvalidVolume.NotFound',
    );
    expect((await fails(c.send(new ec2.CreateTagsCommand({ Resources: [a], Tags: [{ Key: 'aws:reserved', Value: 'y' }] })))).name).toBe(
      'InvalidParameterValue',
    );
    for (const id of [a, b]) await c.send(new ec2.DeleteVolumeCommand({ VolumeId: id }));
    expect((await c.send(new ec2.DescribeTagsCommand({ Filters: [{ Name: 'resource-id', Values: [a, b] }] }))).Tags).toEqual([]);
  }, 60_000);

  it('DryRun: DryRunOperation when it would succeed, UnauthorizedOperation when the caller may not use the key, the error otherwise; nothing is made', async () => {
    const key = (await k.send(new kms.CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const before = (await c.send(new ec2.DescribeVolumesCommand({}))).Volumes!.length;
    const ok = await fails(c.send(new ec2.CreateVolumeCommand({ Size: 1, Encrypted: true, KmsKeyId: key, AvailabilityZone: `${ep.region}a`, DryRun: true })));
    expect([ok.name, ok.$metadata?.httpStatusCode]).toEqual(['DryRunOperation', 412]);
    expect(ok.message).toBe('Request would have succeeded, but DryRun flag is set.');
    expect((await c.send(new ec2.DescribeVolumesCommand({}))).Volumes!.length).toBe(before);

    const tester = 'arn:aws:iam::000000000000:user/tester';
    await k.send(
      new kms.PutKeyPolicyCommand({
        KeyId: key,
        PolicyName: 'default',
        Policy: JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: tester }, Action: 'kms:*', Resource: '*' }] }),
      }),
    );
    const bk = kmsvol(home, ['iam', 'create-access-key', '--user-name', 'bob', '--region', ep.region]).json.AccessKey;
    const bob = new ec2.EC2Client({ endpoint: ep.url, region: ep.region, credentials: { accessKeyId: bk.AccessKeyId, secretAccessKey: bk.SecretAccessKey } });
    const no = await fails(bob.send(new ec2.CreateVolumeCommand({ Size: 1, Encrypted: true, KmsKeyId: key, AvailabilityZone: `${ep.region}a`, DryRun: true })));
    expect([no.name, no.$metadata?.httpStatusCode]).toEqual(['UnauthorizedOperation', 403]);
    const bad = await fails(c.send(new ec2.CreateVolumeCommand({ Size: 0, AvailabilityZone: `${ep.region}a`, DryRun: true })));
    expect(bad.name).toBe('InvalidParameterValue');
    const missing = await fails(c.send(new ec2.DeleteVolumeCommand({ VolumeId: 'vol-0123456789abcdef0', DryRun: true })));
    expect(missing.name).toBe('InvalidVolume.NotFound');
    const v = (await newVolume()).VolumeId!;
    expect((await fails(c.send(new ec2.DeleteVolumeCommand({ VolumeId: v, DryRun: true })))).name).toBe('DryRunOperation');
    expect((await c.send(new ec2.DescribeVolumesCommand({ VolumeIds: [v] }))).Volumes![0]!.State).toBe('available');
    await c.send(new ec2.DeleteVolumeCommand({ VolumeId: v }));
  }, 60_000);

  it('documented errors: NotFound, Malformed, MissingParameter, VolumeInUse, IncorrectState, InvalidParameterCombination, InvalidKMSKey, InvalidSnapshot.NotFound, InvalidInstanceID.NotFound', async () => {
    const code = async (p: Promise<unknown>) => {
      const e = await fails(p);
      expect(e.$metadata?.httpStatusCode, e.name).toBeGreaterThanOrEqual(400);
      return e.name;
    };
    expect(await code(c.send(new ec2.DescribeVolumesCommand({ VolumeIds: ['vol-0123456789abcdef0'] })))).toBe('InvalidVolume.NotFound');
    expect(await code(c.send(new ec2.DescribeVolumesCommand({ Filters: [{ Values: ['x'] }] })))).toBe('MissingParameter');
    expect(await code(c.send(new ec2.DescribeVolumesCommand({ Filters: [{ Name: 'status' }] })))).toBe('InvalidParameterValue');
    expect(await code(c.send(new ec2.DeleteVolumeCommand({ VolumeId: 'vol-xyz' })))).toBe('InvalidVolumeID.Malformed');
    expect(await code(c.send(new ec2.CreateVolumeCommand({ AvailabilityZone: `${ep.region}a` })))).toBe('MissingParameter');
    expect(await code(c.send(new ec2.CreateVolumeCommand({ Size: 1, VolumeType: 'gp2', Throughput: 200, AvailabilityZone: `${ep.region}a` })))).toBe(
      'InvalidParameterCombination',
    );
    expect(await code(c.send(new ec2.CreateVolumeCommand({ Size: 1, VolumeType: 'io9', AvailabilityZone: `${ep.region}a` })))).toBe('InvalidParameterValue');
    expect(await code(c.send(new ec2.CreateVolumeCommand({ Size: 1, KmsKeyId: 'alias/nope', AvailabilityZone: `${ep.region}a` })))).toBe(
      'InvalidParameterDependency',
    );
    expect(await code(c.send(new ec2.ModifyEbsDefaultKmsKeyIdCommand({ KmsKeyId: 'alias/no-such-key' })))).toBe('InvalidKMSKey.NotFound');
    expect(await code(c.send(new ec2.CreateVolumeCommand({ Size: 1, SnapshotId: 'snap-0123456789abcdef0', AvailabilityZone: `${ep.region}a` })))).toBe(
      'InvalidSnapshot.NotFound',
    );
    const instance = (await c.send(new ec2.DescribeInstancesCommand({}))).Reservations![0]!.Instances![0]!.InstanceId!;
    expect(instance).toMatch(/^i-[0-9a-f]{17}$/);
    expect(await code(c.send(new ec2.DescribeInstancesCommand({ InstanceIds: ['i-0123456789abcdef0'] })))).toBe('InvalidInstanceID.NotFound');
    const v = (await newVolume()).VolumeId!;
    expect(await code(c.send(new ec2.DetachVolumeCommand({ VolumeId: v })))).toBe('IncorrectState');
    expect(await code(c.send(new ec2.AttachVolumeCommand({ VolumeId: v, InstanceId: 'i-0123456789abcdef0', Device: '/dev/sdf' })))).toBe(
      'InvalidInstanceID.NotFound',
    );
    expect(await code(c.send(new ec2.AttachVolumeCommand({ VolumeId: v, InstanceId: instance, Device: 'sdf' })))).toBe('InvalidParameterValue');
    await c.send(new ec2.AttachVolumeCommand({ VolumeId: v, InstanceId: instance, Device: '/dev/sdg' }));
    await ec2.waitUntilVolumeInUse({ client: c, ...WAIT }, { VolumeIds: [v] });
    // in-use comes with the attach request; the attachment is attaching until the card serves the volume.
    await attached(v);
    expect(await code(c.send(new ec2.DeleteVolumeCommand({ VolumeId: v })))).toBe('VolumeInUse');
    expect(await code(c.send(new ec2.AttachVolumeCommand({ VolumeId: v, InstanceId: instance, Device: '/dev/sdh' })))).toBe('VolumeInUse');
    const mapping = (await c.send(new ec2.DescribeInstancesCommand({ Filters: [{ Name: 'block-device-mapping.volume-id', Values: [v] }] }))).Reservations![0]!
      .Instances![0]!.BlockDeviceMappings!;
    expect(mapping.find((m) => m.Ebs?.VolumeId === v)?.DeviceName).toBe('/dev/sdg');
    const det = await c.send(new ec2.DetachVolumeCommand({ VolumeId: v, Force: true }));
    expect([det.State, det.Device, det.InstanceId]).toEqual(['detaching', '/dev/sdg', instance]);
    await ec2.waitUntilVolumeAvailable({ client: c, ...WAIT }, { VolumeIds: [v] });
    await c.send(new ec2.DeleteVolumeCommand({ VolumeId: v }));
  }, 90_000);

  it('snapshots: CreateSnapshot answers pending with Progress "", the waiter sees completed; CopySnapshot answers only SnapshotId; DescribeSnapshots by owner and filter; DeleteSnapshot', async () => {
    const key = (await k.send(new kms.CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const v = (await newVolume({ Encrypted: true, KmsKeyId: key })).VolumeId!;
    const s = await c.send(
      new ec2.CreateSnapshotCommand({ VolumeId: v, Description: 'first', TagSpecifications: [{ ResourceType: 'snapshot', Tags: [{ Key: 'k', Value: 'v' }] }] }),
    );
    expect([s.State, s.Progress, s.Encrypted, s.VolumeSize, s.OwnerId, s.Description]).toEqual(['pending', '', true, 1, '000000000000', 'first']);
    expect(s.StartTime).toBeInstanceOf(Date);
    expect(s.Tags).toEqual([{ Key: 'k', Value: 'v' }]);
    await ec2.waitUntilSnapshotCompleted({ client: c, ...WAIT }, { SnapshotIds: [s.SnapshotId!] });
    const copy = await c.send(new ec2.CopySnapshotCommand({ SourceSnapshotId: s.SnapshotId!, SourceRegion: ep.region }));
    expect(Object.keys(copy).filter((x) => x !== '$metadata')).toEqual(['SnapshotId']);
    await ec2.waitUntilSnapshotCompleted({ client: c, ...WAIT }, { SnapshotIds: [copy.SnapshotId!] });
    const mine = (await c.send(new ec2.DescribeSnapshotsCommand({ OwnerIds: ['self'], Filters: [{ Name: 'volume-id', Values: [v] }] }))).Snapshots!;
    expect(mine.map((x) => x.SnapshotId).sort()).toEqual([s.SnapshotId, copy.SnapshotId].sort());
    expect(mine.every((x) => x.State === 'completed' && x.Progress === '100%' && x.KmsKeyId === `arn:aws:kms:${ep.region}:000000000000:key/${key}`)).toBe(true);
    expect((await c.send(new ec2.DescribeSnapshotsCommand({ OwnerIds: ['123456789012'] }))).Snapshots).toEqual([]);
    for (const id of [s.SnapshotId!, copy.SnapshotId!]) await c.send(new ec2.DeleteSnapshotCommand({ SnapshotId: id }));
    expect((await fails(c.send(new ec2.DescribeSnapshotsCommand({ SnapshotIds: [s.SnapshotId!] })))).name).toBe('InvalidSnapshot.NotFound');
    await c.send(new ec2.DeleteVolumeCommand({ VolumeId: v }));
  }, 60_000);

  it("reattach the moment a detach shows the volume available, 6 rounds: every reattach is attached (the detach still retiring the card grant does not take the new card's)", async () => {
    const key = (await k.send(new kms.CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const v = (await newVolume({ Encrypted: true, KmsKeyId: key })).VolumeId!;
    const instance = (await c.send(new ec2.DescribeInstancesCommand({}))).Reservations![0]!.Instances![0]!.InstanceId!;
    const state = async () => (await c.send(new ec2.DescribeVolumesCommand({ VolumeIds: [v] }))).Volumes![0]!;
    for (let round = 0; round < 6; round++) {
      await c.send(new ec2.AttachVolumeCommand({ VolumeId: v, InstanceId: instance, Device: '/dev/sdf' }));
      for (let s = await state(); s.Attachments?.[0]?.State !== 'attached'; s = await state()) {
        // A card that fails gives the volume back: available with no attachment.
        expect(s.State, `round ${round}: the attach failed (see the volume's events)`).toBe('in-use');
        await new Promise((r) => setTimeout(r, 20));
      }
      await c.send(new ec2.DetachVolumeCommand({ VolumeId: v }));
      for (let s = await state(); s.State !== 'available'; s = await state()) await new Promise((r) => setTimeout(r, 5));
    }
  }, 120_000);

  it('across processes: the endpoint detaches (and retires the card grant) while this process attaches the moment the volume shows available, 8 rounds: every attach is attached', async () => {
    const key = (await k.send(new kms.CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const v = (await newVolume({ Encrypted: true, KmsKeyId: key })).VolumeId!;
    // The library on the same home, in this test's process: its attach shares nothing in memory with the endpoint's detach.
    const kv = Kmsvol.open({ home, region: ep.region });
    try {
      for (let round = 0; round < 8; round++) {
        const a = await kv.attachVolume(v).catch((e: Error) => e);
        expect(a instanceof Error ? `${a.name}: ${a.message}` : a.State, `round ${round}`).toBe('attached');
        await c.send(new ec2.DetachVolumeCommand({ VolumeId: v }));
        const state = async () => (await kv.describeVolumes({ VolumeIds: [v] })).Volumes[0]!.State;
        for (const end = Date.now() + 30_000; (await state()) !== 'available'; ) {
          if (Date.now() > end) throw new Error(`round ${round}: ${v} is not available 30 s after DetachVolume`);
          await new Promise((r) => setImmediate(r));
        }
      }
      // The last card's grant is retired by the last detach; none is left behind.
      for (const end = Date.now() + 30_000; (await k.send(new kms.ListGrantsCommand({ KeyId: key }))).Grants!.length > 0; ) {
        if (Date.now() > end) throw new Error('the card grant was not retired 30 s after the last detach');
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await kv.close();
    }
  }, 180_000);

  it('EBS encryption by default and the default key', async () => {
    const key = (await k.send(new kms.CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    expect((await c.send(new ec2.GetEbsEncryptionByDefaultCommand({}))).EbsEncryptionByDefault).toBe(false);
    expect((await c.send(new ec2.EnableEbsEncryptionByDefaultCommand({}))).EbsEncryptionByDefault).toBe(true);
    expect((await c.send(new ec2.GetEbsEncryptionByDefaultCommand({}))).EbsEncryptionByDefault).toBe(true);
    expect((await c.send(new ec2.GetEbsDefaultKmsKeyIdCommand({}))).KmsKeyId).toBe('alias/aws/ebs');
    const arn = `arn:aws:kms:${ep.region}:000000000000:key/${key}`;
    expect((await c.send(new ec2.ModifyEbsDefaultKmsKeyIdCommand({ KmsKeyId: key }))).KmsKeyId).toBe(arn);
    const v = await newVolume();
    expect((await c.send(new ec2.DescribeVolumesCommand({ VolumeIds: [v.VolumeId!] }))).Volumes![0]).toMatchObject({ Encrypted: true, KmsKeyId: arn });
    expect((await c.send(new ec2.ResetEbsDefaultKmsKeyIdCommand({}))).KmsKeyId).toBe('alias/aws/ebs');
    expect((await c.send(new ec2.DisableEbsEncryptionByDefaultCommand({}))).EbsEncryptionByDefault).toBe(false);
    await c.send(new ec2.DeleteVolumeCommand({ VolumeId: v.VolumeId! }));
  }, 60_000);
});
