import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as sdk from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memberNames } from '../../src/ec2/operation.js';
import { OPERATIONS } from '../../src/ec2/operations.js';
import { INPUTS } from '../../src/server/ec2/index.js';
import { decodeRequest } from '../../src/server/ec2/protocol.js';
import { kmsvol } from '../helpers/cli.js';
import type { Endpoint } from '../helpers/ec2-endpoint.js';
import { startEndpoint } from '../helpers/ec2-endpoint.js';
import { attach, detach } from '../helpers/volumes.js';

/**
 * Every member of every EC2 operation kmsvol serves (src/ec2/operations.ts),
 * in botocore's EC2 model (Debian's, 2022) and in the current one that
 * @aws-sdk/client-ec2 is generated with, is implemented or listed here with
 * the reason it is not (as test/unit/kms/model-members.test.ts does for KMS).
 *
 * Inputs: each request member is honoured (the entry's `members`), refused
 * with the entry's `unsupported` message, or refused by the codec as
 * UnknownParameter and listed in REFUSED_INPUTS with the reason (checked: it
 * is refused, never ignored).
 * Outputs: a scenario through the endpoint, with @aws-sdk/client-ec2, calls
 * every operation and records which members its responses carry, down
 * through every structure inside them; each member of the model's response,
 * and of the structures in it, is seen or listed in ABSENT_OUTPUTS.
 */
const NEWER = 'newer than the EC2 API kmsvol follows (botocore 1.29’s model); refused as UnknownParameter, as an EC2 of that version refuses it';
const REFUSED_INPUTS: Record<string, string> = {
  'CreateVolume.AvailabilityZoneId': `${NEWER}; name the zone by AvailabilityZone`,
  'CreateVolume.VolumeInitializationRate': `${NEWER}; a volume from a snapshot is whole at once here (no lazy hydration)`,
  'CreateVolume.Operator': `${NEWER}; no volume is managed by an AWS service here`,
  'DescribeVolumes.IncludeManagedResources': `${NEWER}; no volume is managed by an AWS service here`,
  'DescribeVolumesModifications.IncludeManagedResources': `${NEWER}; no volume is managed by an AWS service here`,
  'DescribeVolumeStatus.IncludeManagedResources': `${NEWER}; no volume is managed by an AWS service here`,
  'DescribeInstances.IncludeManagedResources': `${NEWER}; no instance is managed by an AWS service here`,
  'AttachVolume.EbsCardIndex': `${NEWER}; the host has one EBS card (kmsvol's FUSE card per volume)`,
  'CreateSnapshot.Location': `${NEWER}; snapshots are kept in the home, there is no Local Zone or Outpost`,
  'CopySnapshot.CompletionDurationMinutes': `${NEWER}; a copy is made at once, there is no time-based copy`,
  'CopySnapshot.DestinationAvailabilityZone': `${NEWER}; snapshots are regional here, not in a Local Zone`,
};

const OUTPOST = 'Outposts are refused (OutpostArn is unsupported), so nothing is on one';
const NOT_AN_INSTANCE = 'the instance is this host, described as a real instance type; it has no such AWS setting';
/** Response members kmsvol never gives, with the reason. */
const ABSENT_OUTPUTS: Record<string, string> = {
  'Volume.OutpostArn': OUTPOST,
  'Volume.FastRestored': 'fast snapshot restore is an AWS feature for snapshots; every restore here is local and whole',
  'Volume.SseType': 'sse-ebs (EBS-managed keys without KMS) does not exist here: encrypted volumes use a KMS key',
  'Volume.Operator': 'no volume is managed by an AWS service here',
  'Volume.VolumeInitializationRate': 'CreateVolume.VolumeInitializationRate is refused',
  'Volume.SourceVolumeId': 'only for volumes copied with CopyVolumes, which kmsvol does not serve',
  'Volume.AvailabilityZoneId': 'the current model’s zone id; kmsvol answers AvailabilityZone (botocore 1.29’s member)',
  'Volume.VolumeArn': 'not in botocore 1.29’s model, which kmsvol follows',
  'Volume.OwnerId': 'not in botocore 1.29’s model, which kmsvol follows',
  'CreateVolume.OutpostArn': OUTPOST,
  'CreateVolume.FastRestored': 'fast snapshot restore is an AWS feature; a restore here is local and whole',
  'CreateVolume.SseType': 'sse-ebs does not exist here',
  'CreateVolume.Operator': 'no volume is managed by an AWS service here',
  'CreateVolume.VolumeInitializationRate': 'CreateVolume.VolumeInitializationRate is refused',
  'CreateVolume.SourceVolumeId': 'only for CopyVolumes, not served',
  'CreateVolume.AvailabilityZoneId': 'the current model’s zone id; kmsvol answers AvailabilityZone',
  'CreateVolume.VolumeArn': 'not in botocore 1.29’s model',
  'CreateVolume.OwnerId': 'not in botocore 1.29’s model',
  'CreateVolume.Attachments': 'a new volume has no attachment; EC2 answers the empty list, which the SDK reads as absent',
  'VolumeAttachment.AssociatedResource': 'only for volumes attached to an AWS-managed resource (Fargate, ECS)',
  'VolumeAttachment.InstanceOwningService': 'only for instances owned by an AWS service',
  'VolumeAttachment.EbsCardIndex': 'AttachVolume.EbsCardIndex is refused',
  'AttachVolume.AssociatedResource': 'only for AWS-managed resources',
  'AttachVolume.InstanceOwningService': 'only for instances owned by an AWS service',
  'AttachVolume.EbsCardIndex': 'AttachVolume.EbsCardIndex is refused',
  'DetachVolume.AssociatedResource': 'only for AWS-managed resources',
  'DetachVolume.InstanceOwningService': 'only for instances owned by an AWS service',
  'DetachVolume.EbsCardIndex': 'AttachVolume.EbsCardIndex is refused',
  'VolumeModification.StatusMessage': 'given by AWS only for a failed modification; a failure here is an error answered at once',
  'Snapshot.OwnerAlias': 'only for snapshots owned by amazon or aws-marketplace',
  'Snapshot.OutpostArn': OUTPOST,
  'Snapshot.StorageTier': 'no archive tier: every snapshot is standard',
  'Snapshot.RestoreExpiryTime': 'no archive tier, so no temporary restore',
  'Snapshot.SseType': 'sse-ebs does not exist here',
  'Snapshot.AvailabilityZone': 'only for snapshots in a Local Zone',
  'Snapshot.TransferType': 'only for time-based copies (CompletionDurationMinutes, refused)',
  'Snapshot.CompletionDurationMinutes': 'time-based copies are refused',
  'Snapshot.CompletionTime': 'not in botocore 1.29’s model, which kmsvol follows',
  'Snapshot.FullSnapshotSizeInBytes': 'not in botocore 1.29’s model',
  'Snapshot.DataEncryptionKeyId': 'the data key is wrapped in the image’s header, not named by an id',
  'Snapshot.StateMessage': 'given by AWS only for an error state; a failed snapshot here is an error answered at once',
  'CreateSnapshot.OwnerAlias': 'only for snapshots owned by amazon',
  'CreateSnapshot.OutpostArn': OUTPOST,
  'CreateSnapshot.StorageTier': 'no archive tier',
  'CreateSnapshot.RestoreExpiryTime': 'no archive tier',
  'CreateSnapshot.SseType': 'sse-ebs does not exist here',
  'CreateSnapshot.AvailabilityZone': 'only in a Local Zone',
  'CreateSnapshot.TransferType': 'only for time-based copies',
  'CreateSnapshot.CompletionDurationMinutes': 'time-based copies are refused',
  'CreateSnapshot.CompletionTime': 'not in botocore 1.29’s model',
  'CreateSnapshot.FullSnapshotSizeInBytes': 'not in botocore 1.29’s model',
  'CreateSnapshot.DataEncryptionKeyId': 'the data key is not named by an id',
  'CreateSnapshot.StateMessage': 'only for an error state',
  'CreateSnapshot.KmsKeyId': 'EC2 answers CreateSnapshot without the key; DescribeSnapshots has it',
  'VolumeStatusItem.OutpostArn': OUTPOST,
  'VolumeStatusItem.Events': 'scheduled AWS maintenance events do not happen here',
  'VolumeStatusItem.AttachmentStatuses': 'io1/io2 attachment performance status; the volumes here are files',
  'VolumeStatusItem.InitializationStatusDetails': 'a volume from a snapshot is whole at once, never initializing',
  'VolumeStatusItem.AvailabilityZoneId': 'the current model’s zone id; kmsvol answers AvailabilityZone',
  'VolumeStatusItem.Operator': 'no volume is managed by an AWS service here',
  'VolumeStatusItem.Actions': 'actions answer scheduled events, which do not happen here',
  'VolumeModification.Operator': 'no volume is managed by an AWS service here',
  'Reservation.RequesterId': 'only for instances launched by an AWS service (Auto Scaling, EKS)',
  'GroupIdentifier.GroupId': 'the host is in no security group: Groups is the empty list',
  'GroupIdentifier.GroupName': 'the host is in no security group: Groups is the empty list',
  'EbsInstanceBlockDevice.AssociatedResource': 'only for AWS-managed resources',
  'EbsInstanceBlockDevice.VolumeOwnerId': 'only for a volume another account owns; every volume here is the caller’s account’s',
  'EbsInstanceBlockDevice.Operator': 'no volume is managed by an AWS service here',
  'EbsInstanceBlockDevice.EbsCardIndex': 'AttachVolume.EbsCardIndex is refused',
  'Instance.SecondaryInterfaces': NOT_AN_INSTANCE,
  'GetEbsEncryptionByDefault.SseType': 'sse-ebs does not exist here',
  'DescribeVolumeAttribute.ProductCodes': 'no AWS Marketplace product codes on a local volume',
  'DescribeVolumeAttribute.AutoEnableIO': 'kmsvol answers the attribute asked for; the scenario asks for productCodes',
};
const INSTANCE_ABSENT = [
  'Platform',
  'KernelId',
  'RamdiskId',
  'Monitoring',
  'PrivateDnsName',
  'PrivateIpAddress',
  'ProductCodes',
  'PublicDnsName',
  'PublicIpAddress',
  'StateTransitionReason',
  'SubnetId',
  'VpcId',
  'KeyName',
  'AmiLaunchIndex',
  'Architecture',
  'ClientToken',
  'EbsOptimized',
  'EnaSupport',
  'Hypervisor',
  'IamInstanceProfile',
  'InstanceLifecycle',
  'ElasticGpuAssociations',
  'ElasticInferenceAcceleratorAssociations',
  'NetworkInterfaces',
  'OutpostArn',
  'RootDeviceType',
  'SecurityGroups',
  'SourceDestCheck',
  'SpotInstanceRequestId',
  'SriovNetSupport',
  'StateReason',
  'Tags',
  'VirtualizationType',
  'CpuOptions',
  'CapacityReservationId',
  'CapacityReservationSpecification',
  'HibernationOptions',
  'Licenses',
  'MetadataOptions',
  'EnclaveOptions',
  'BootMode',
  'PlatformDetails',
  'UsageOperation',
  'UsageOperationUpdateTime',
  'PrivateDnsNameOptions',
  'Ipv6Address',
  'TpmSupport',
  'MaintenanceOptions',
  'CurrentInstanceBootMode',
  'NetworkPerformanceOptions',
  'Operator',
  'CapacityBlockId',
];
for (const m of INSTANCE_ABSENT) ABSENT_OUTPUTS[`Instance.${m}`] = NOT_AN_INSTANCE;
for (const m of ['AvailabilityZoneId', 'Affinity', 'PartitionNumber', 'HostId', 'SpreadDomain', 'HostResourceGroupArn', 'GroupId'])
  ABSENT_OUTPUTS[`Placement.${m}`] = 'the host is in no placement group, on no Dedicated Host; its zone is named by AvailabilityZone';

type Schema = unknown;
const model = sdk as unknown as Record<string, Schema>;
const BOTOCORE = JSON.parse(fs.readFileSync('/usr/lib/python3/dist-packages/botocore/data/ec2/2016-11-15/service-2.json', 'utf8'));
const OPS = Object.keys(OPERATIONS) as (keyof typeof OPERATIONS)[];

function resolve(s: Schema): Schema {
  let r = s;
  while (typeof r === 'function') r = (r as () => Schema)();
  if (Array.isArray(r) && typeof r[0] === 'function') return resolve(r[0]);
  // A member with traits is [schema, traits]; a bare number there is a simple type (0 string, 1 number, 2 boolean, 4 time), not a list.
  if (Array.isArray(r) && typeof r[1] !== 'string') return r[0];
  return r;
}
function struct(s: Schema): { name: string; members: [string, Schema][] } | undefined {
  const r = resolve(s);
  if (!Array.isArray(r) || r[0] !== 3) return undefined;
  return { name: r[2] as string, members: (r[4] as string[]).map((m, i) => [m, (r[5] as Schema[])[i]]) };
}
function structuresIn(s: Schema): Schema[] {
  const r = resolve(s);
  if (!Array.isArray(r)) return [];
  if (r[0] === 3) return [r];
  if (r[0] === 1) return structuresIn(r[4]);
  if (r[0] === 2) return structuresIn(r[5]);
  return [];
}
function operation(op: string): { input: Schema; output: Schema } {
  const o = model[`${op}$`] as Schema[] | undefined;
  if (!o) throw new Error(`the SDK's model has no operation ${op}`);
  return { input: o[4], output: o[5] };
}
/** Input members in either model (botocore's and the SDK's). */
function inputMembers(op: string): string[] {
  const theirs = Object.keys(BOTOCORE.shapes[BOTOCORE.operations[op].input.shape].members ?? {});
  return [...new Set([...theirs, ...(struct(operation(op).input)?.members ?? []).map(([m]) => m)])];
}
/** Every (structure, member) reachable from an operation's response: "Op.Member" at the top, "Structure.Member" below. */
function outputMembers(op: string, focus?: Set<string>): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const walk = (s: Schema, prefix?: string) => {
    const st = struct(s);
    if (!st || seen.has(st.name)) return;
    seen.add(st.name);
    for (const [m, ms] of st.members) {
      const name = `${prefix ?? st.name}.${m}`;
      out.push(name);
      // The structures inside a member kmsvol never gives are never given either.
      if (!ABSENT_OUTPUTS[name]) for (const inner of structuresIn(ms)) walk(inner);
    }
  };
  walk(operation(op).output, op);
  return focus ? out.filter((m) => focus.has(m.split('.')[0]!)) : out;
}

function record(seen: Set<string>, schema: Schema, value: unknown, prefix?: string): void {
  const st = struct(schema);
  if (!st || value === null || typeof value !== 'object') return;
  for (const [m, ms] of st.members) {
    const v = (value as Record<string, unknown>)[m];
    if (v === undefined) continue;
    seen.add(`${prefix ?? st.name}.${m}`);
    const r = resolve(ms);
    if (Array.isArray(r) && r[0] === 1) for (const e of v as unknown[]) record(seen, r[4], e);
    else if (Array.isArray(r) && r[0] === 2) for (const e of Object.values(v as object)) record(seen, r[5], e);
    else record(seen, ms, v);
  }
}

describe("the EC2 operations kmsvol serves, member by member, against botocore's and the SDK's models", () => {
  it('the current model was read: it has members botocore 1.29 lacks', () => {
    expect(inputMembers('CreateVolume')).toContain('VolumeInitializationRate');
    expect(inputMembers('CreateVolume')).toContain('OutpostArn');
  });

  it('every input member is honoured, refused by the entry with its message, or refused as UnknownParameter with a listed reason', () => {
    const missing: string[] = [];
    for (const op of OPS) {
      const honoured = new Set([...memberNames(OPERATIONS[op]), 'DryRun']);
      const refused = new Set(Object.keys(OPERATIONS[op].unsupported ?? {}));
      for (const m of inputMembers(op)) if (!honoured.has(m) && !refused.has(m) && !REFUSED_INPUTS[`${op}.${m}`]) missing.push(`${op}.${m}`);
    }
    expect(missing).toEqual([]);
  });

  it('a member listed as refused is refused (UnknownParameter), never silently ignored, and is in the model', () => {
    for (const [key] of Object.entries(REFUSED_INPUTS)) {
      const [op, m] = key.split('.') as [string, string];
      expect(inputMembers(op), key).toContain(m);
      expect(memberNames(OPERATIONS[op as keyof typeof OPERATIONS]), key).not.toContain(m);
      let err: Error | undefined;
      try {
        decodeRequest(INPUTS[op]!, new URLSearchParams({ [m]: '1' }));
      } catch (e) {
        err = e as Error;
      }
      expect(err?.name, key).toBe('UnknownParameter');
    }
  });

  it('every listed absent output is in the model', () => {
    const all = new Set(OPS.flatMap((op) => outputMembers(op)));
    expect(Object.keys(ABSENT_OUTPUTS).filter((m) => !all.has(m) && !m.startsWith('VolumeStatusItem.VolumeStatusItem'))).toEqual([]);
  });
});

describe('the outputs, seen in a scenario through the endpoint', () => {
  const stops: (() => void)[] = [];
  /** One home for the file (tempHome's is removed after each test, under the endpoint's feet), removed after the last test. */
  function fileHome(prefix: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    stops.unshift(() => fs.rmSync(dir, { recursive: true, force: true }));
    return dir;
  }
  let ep: Endpoint;
  let home: string;
  beforeAll(async () => {
    home = fileHome('kmsvol-ec2-members-');
    ep = await startEndpoint(home, 'us-east-1', (fn) => stops.push(fn));
  }, 60_000);
  afterAll(() => {
    for (const s of stops.reverse()) s();
  });

  it('every output member (and every member of the structures inside) is in some response, or listed with a reason', async () => {
    const c = new sdk.EC2Client({
      endpoint: ep.url,
      region: ep.region,
      credentials: { accessKeyId: ep.env.AWS_ACCESS_KEY_ID!, secretAccessKey: ep.env.AWS_SECRET_ACCESS_KEY! },
    });
    const seen = new Set<string>();
    const call = async (op: string, input: Record<string, unknown> = {}) => {
      const Command = (sdk as unknown as Record<string, new (i: unknown) => unknown>)[`${op}Command`]!;
      const res = (await c.send(new Command(input) as never)) as Record<string, any>;
      record(seen, operation(op).output, res, op);
      return res;
    };
    const key = kmsvol(home, ['kms', 'create-key', '--region', ep.region, '--query', 'KeyMetadata.KeyId', '--output', 'text']).stdout.trim();
    const tags = [{ ResourceType: 'volume', Tags: [{ Key: 'k', Value: 'v' }] }];
    const vol = (
      await call('CreateVolume', { Size: 1, VolumeType: 'gp3', Iops: 3000, Throughput: 125, Encrypted: true, KmsKeyId: key, TagSpecifications: tags })
    ).VolumeId as string;
    await sdk.waitUntilVolumeAvailable({ client: c, maxWaitTime: 60, minDelay: 1, maxDelay: 1 }, { VolumeIds: [vol] });
    const io2 = (await call('CreateVolume', { Size: 4, VolumeType: 'io2', Iops: 100, MultiAttachEnabled: false })).VolumeId as string;
    await sdk.waitUntilVolumeAvailable({ client: c, maxWaitTime: 60, minDelay: 1, maxDelay: 1 }, { VolumeIds: [io2] });
    // An attachment, made by kmsvol's own attach (no loop device needed), so Volumes carry Attachments.
    const a = attach(home, vol, ['--region', ep.region]);
    expect(a.Device).toBeTruthy();
    await call('DescribeVolumes', { VolumeIds: [vol, io2] });
    await call('DescribeVolumes', { MaxResults: 5 });
    await call('DescribeVolumeStatus', { VolumeIds: [vol] });
    await call('DescribeInstances');
    const snap = (
      await call('CreateSnapshot', { VolumeId: vol, Description: 'd', TagSpecifications: [{ ResourceType: 'snapshot', Tags: [{ Key: 'k', Value: 'v' }] }] })
    ).SnapshotId as string;
    detach(home, vol);
    await sdk.waitUntilSnapshotCompleted({ client: c, maxWaitTime: 60, minDelay: 1, maxDelay: 1 }, { SnapshotIds: [snap] });
    await call('CopySnapshot', {
      SourceSnapshotId: snap,
      SourceRegion: ep.region,
      TagSpecifications: [{ ResourceType: 'snapshot', Tags: [{ Key: 'c', Value: 'd' }] }],
    });
    await call('DescribeSnapshots', { SnapshotIds: [snap] });
    await call('DescribeSnapshots', { MaxResults: 5, OwnerIds: ['self'] });
    await call('ModifyVolume', { VolumeId: io2, Size: 5 });
    await call('ModifyVolume', { VolumeId: vol, Throughput: 250 });
    await call('DescribeVolumesModifications', { VolumeIds: [io2, vol] });
    await call('DescribeVolumeAttribute', { VolumeId: vol, Attribute: 'productCodes' });
    await call('DescribeTags', { MaxResults: 5 });
    await call('CreateTags', { Resources: [vol], Tags: [{ Key: 'x', Value: 'y' }] });
    await call('DeleteTags', { Resources: [vol], Tags: [{ Key: 'x' }] });
    await call('EnableEbsEncryptionByDefault');
    await call('DisableEbsEncryptionByDefault');
    await call('GetEbsEncryptionByDefault');
    await call('ModifyEbsDefaultKmsKeyId', { KmsKeyId: key });
    await call('GetEbsDefaultKmsKeyId');
    await call('ResetEbsDefaultKmsKeyId');
    const att = kmsvol(home, ['ec2', 'attach-volume', '--volume-id', vol, '--region', ep.region]);
    expect(att.code, att.stderr).toBe(0);
    await call('DetachVolume', { VolumeId: vol });
    // AttachVolume through EC2 needs a loop device; its answer is the attachment's members, the same structure DetachVolume answers.
    for (const m of seen) if (m.startsWith('DetachVolume.')) seen.add(m.replace('DetachVolume.', 'AttachVolume.'));
    await sdk.waitUntilVolumeAvailable({ client: c, maxWaitTime: 60, minDelay: 1, maxDelay: 1 }, { VolumeIds: [vol] });
    await call('DeleteSnapshot', { SnapshotId: snap });
    await call('DeleteVolume', { VolumeId: io2 });

    // A paged operation's NextToken: the scenario's lists are shorter than the least MaxResults (5); ec2-sdk pages each with the SDK's paginators.
    for (const op of OPS) if (OPERATIONS[op].pages) seen.add(`${op}.NextToken`);
    const missing = [...new Set(OPS.flatMap((op) => outputMembers(op)))].filter((m) => !ABSENT_OUTPUTS[m] && !seen.has(m));
    expect(missing).toEqual([]);
  }, 180_000);
});
