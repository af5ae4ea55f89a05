import os from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { Kmsvol } from '../../../src/api.js';
import { assumeRole, createAccessKey, createRole } from '../../../src/kms/iam.js';
import { describeInstances, instanceTypeFor } from '../../../src/volume/instances.js';
import { checkSize, performance } from '../../../src/volume/limits.js';
import { modifyVolume } from '../../../src/volume/modify.js';

/**
 * AWS's defaults and limits for EBS and STS, as kmsvol applies them (issue
 * 26): gp2 by default, today's per-type limits, ModifyVolume's rate on the
 * project's clock, a role's MaxSessionDuration, DescribeInstances as a real
 * instance. The control plane only: no card, no endpoint.
 */
const open: Kmsvol[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

function api(): Kmsvol {
  const kv = Kmsvol.open({ region: 'us-east-1' });
  open.push(kv);
  return kv;
}

async function refusal(p: Promise<unknown>): Promise<{ name: string; message: string }> {
  return p.then(
    () => ({ name: 'succeeded', message: '' }),
    (e: Error) => ({ name: e.name, message: e.message }),
  );
}

const HOUR = 3_600_000;

describe('CreateVolume', () => {
  it('makes gp2 when no VolumeType is named, with gp2 baseline IOPS (3 per GiB, at least 100) and no throughput', async () => {
    const kv = api();
    const v = await kv.createVolume({ Size: 50 });
    expect(v).toMatchObject({ VolumeType: 'gp2', Iops: 150 });
    expect(v).not.toHaveProperty('Throughput');
  });
});

describe("Today's EBS volume type limits", () => {
  it('gp3: 3,000-80,000 IOPS at most 500 per GiB, 125-2,000 MiB/s at most 0.25 per IOPS, 1 GiB-64 TiB', () => {
    expect(performance('gp3', 160, 80000, 2000)).toEqual({ iops: 80000, throughput: 2000 });
    expect(performance('gp3', 1, undefined, undefined)).toEqual({ iops: 3000, throughput: 125 });
    expect(() => performance('gp3', 1000, 80001, undefined)).toThrow(/Iops \(80001\) for gp3 volumes must be 3000-80000/);
    expect(() => performance('gp3', 100, 60000, undefined)).toThrow(/ratio of 600 is too high; maximum is 500/);
    expect(() => performance('gp3', 1000, 16000, 2001)).toThrow(/Throughput \(2001\) for gp3 volumes must be 125-2000/);
    expect(() => performance('gp3', 1000, 4000, 1001)).toThrow(/maximum is 0.25 MiB\/s per iops/);
    expect(() => checkSize('gp3', 65536)).not.toThrow();
    expect(() => checkSize('gp3', 65537)).toThrow(/1-65536GiB for gp3/);
    expect(() => checkSize('gp2', 16385)).toThrow(/1-16384GiB for gp2/);
  });

  it('io2: up to 256,000 IOPS (1,000 per GiB) and 64 TiB; io1 64,000 IOPS (50 per GiB) and 16 TiB; st1/sc1 from 125 GiB; standard to 1 TiB', () => {
    expect(performance('io2', 256, 256000, undefined)).toEqual({ iops: 256000, throughput: null });
    expect(() => performance('io2', 1000, 256001, undefined)).toThrow(/100-256000/);
    expect(() => checkSize('io2', 65536)).not.toThrow();
    expect(() => performance('io1', 2000, 64001, undefined)).toThrow(/100-64000/);
    expect(() => checkSize('io1', 16385)).toThrow(/4-16384GiB/);
    expect(() => checkSize('st1', 124)).toThrow(/125-16384GiB/);
    expect(() => checkSize('standard', 1025)).toThrow(/1-1024GiB/);
    expect(() => performance('io2', 10, undefined, undefined)).toThrow(expect.objectContaining({ name: 'MissingParameter' }));
    expect(() => performance('gp2', 10, 300, undefined)).toThrow(expect.objectContaining({ name: 'InvalidParameterCombination' }));
  });
});

describe("ModifyVolume's rate: 4 modifications in a rolling 24 hours, on the project's clock", () => {
  it('a fifth modification within 24 hours of the first is VolumeModificationRateExceeded naming when; once the clock passes that, it is taken', async () => {
    const kv = api();
    const start = kv.clock.now().getTime();
    const v = await kv.createVolume({ Size: 1 });
    for (let i = 0; i < 4; i++) {
      await modifyVolume(kv.ctx, { VolumeId: v.VolumeId, Size: 2 + i });
      kv.clock.advance(HOUR);
    }
    const r = await refusal(modifyVolume(kv.ctx, { VolumeId: v.VolumeId, Size: 10 }));
    expect(r.name).toBe('VolumeModificationRateExceeded');
    const until = new Date(start + 24 * HOUR).toISOString();
    expect(r.message).toBe(
      `You've reached the maximum modification rate per volume limit: ${v.VolumeId} was modified 4 times in the last 24 hours (at most 4). Wait until ${until} to modify it again.`,
    );
    // Refused: nothing changed.
    expect((await kv.describeVolumes({ VolumeIds: [v.VolumeId] })).Volumes[0]!.Size).toBe(5);
    kv.clock.set(start + 24 * HOUR + 1);
    expect((await modifyVolume(kv.ctx, { VolumeId: v.VolumeId, Size: 10 })).TargetSize).toBe(10);
    // The window rolls: the second modification (1 h after the first) still counts until 25 h.
    expect((await refusal(modifyVolume(kv.ctx, { VolumeId: v.VolumeId, Size: 11 }))).name).toBe('VolumeModificationRateExceeded');
  });

  it('a record of starts is kept only while it can refuse: a volume last modified more than 24 hours ago has none', async () => {
    const kv = api();
    const a = await kv.createVolume({ Size: 1 });
    const b = await kv.createVolume({ Size: 1 });
    await modifyVolume(kv.ctx, { VolumeId: a.VolumeId, Size: 2 });
    expect(kv.ctx.registry.getSetting(`modification_starts:${a.VolumeId}`)).toBeDefined();
    kv.clock.advance(24 * HOUR + 1);
    await modifyVolume(kv.ctx, { VolumeId: b.VolumeId, Size: 2 });
    expect(kv.ctx.registry.getSetting(`modification_starts:${a.VolumeId}`)).toBeUndefined();
    expect(kv.ctx.registry.getSetting(`modification_starts:${b.VolumeId}`)).toBe(JSON.stringify([kv.clock.now().getTime()]));
  });

  it("another volume's modifications do not count", async () => {
    const kv = api();
    const a = await kv.createVolume({ Size: 1 });
    const b = await kv.createVolume({ Size: 1 });
    for (let i = 0; i < 4; i++) await modifyVolume(kv.ctx, { VolumeId: a.VolumeId, Size: 2 + i });
    expect((await modifyVolume(kv.ctx, { VolumeId: b.VolumeId, Size: 2 })).ModificationState).toBe('completed');
  });
});

describe("AssumeRole and the role's MaxSessionDuration (1 hour, AWS's default)", () => {
  it('3,600 s is granted; 3,601 s and 7,200 s are ValidationError in STS words', async () => {
    const kv = api();
    const k = kv.kms.ctx;
    createRole(k, 'app', JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${k.account}:root` }, Action: 'sts:AssumeRole' }] }));
    const caller = `arn:aws:iam::${k.account}:user/alice`;
    createAccessKey(k, 'alice'); // an administrator: the account-wide trust lets her assume the role
    const RoleArn = `arn:aws:iam::${k.account}:role/app`;
    expect(assumeRole(k, caller, { RoleArn, RoleSessionName: 'ok', DurationSeconds: 3600 }).Credentials.Expiration.getTime()).toBe(k.now() + 3600_000);
    for (const DurationSeconds of [3601, 7200])
      expect(() => assumeRole(k, caller, { RoleArn, RoleSessionName: 'long', DurationSeconds })).toThrow(
        expect.objectContaining({
          name: 'ValidationError',
          message: expect.stringMatching(/^The requested DurationSeconds exceeds the MaxSessionDuration set for this role\./),
        }),
      );
  });
});

describe('DescribeInstances: this host as an instance of a real type', () => {
  it("has ImageId, RootDeviceName, an EBS root, Placement in the region's first zone and an instance type AWS has for this host's CPUs", async () => {
    const kv = api();
    const i = describeInstances(kv.ctx, {}).Reservations[0]!.Instances[0]!;
    expect(i.ImageId).toMatch(/^ami-[0-9a-f]{17}$/);
    expect(i).toMatchObject({ RootDeviceName: '/dev/xvda', RootDeviceType: 'ebs', Placement: { AvailabilityZone: 'us-east-1a', Tenancy: 'default' } });
    expect(i.InstanceType).toBe(instanceTypeFor(os.availableParallelism(), os.arch()));
    expect(describeInstances(kv.ctx, {}).Reservations[0]!.Instances[0]!.ImageId).toBe(i.ImageId);
  });

  it('the type is the largest m5 (x86_64) or m6g (arm64) size whose vCPUs the host has', () => {
    expect(instanceTypeFor(2, 'x64')).toBe('m5.large');
    expect(instanceTypeFor(3, 'x64')).toBe('m5.large');
    expect(instanceTypeFor(4, 'x64')).toBe('m5.xlarge');
    expect(instanceTypeFor(128, 'x64')).toBe('m5.24xlarge');
    expect(instanceTypeFor(1, 'x64')).toBe('t2.micro');
    expect(instanceTypeFor(8, 'arm64')).toBe('m6g.2xlarge');
  });
});
