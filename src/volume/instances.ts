import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { ServiceError } from '../errors.js';
import type { Ec2Context } from './context.js';
import { applyFilters, paginate } from './filters.js';
import { tagShape } from './tags.js';
import { defaultZone } from './zones.js';

/**
 * The real instance type this host is reported as: the largest size of a
 * current general-purpose family (m5 on x86_64, m6g on arm64; t2.micro for a
 * single x86 CPU) whose vCPUs this host has, so clients that look types up
 * (their vCPUs, EBS-optimization, Nitro) find a type that exists.
 */
const SIZES: readonly (readonly [vcpus: number, x86: string, arm: string])[] = [
  [96, 'm5.24xlarge', 'm6g.16xlarge'],
  [64, 'm5.16xlarge', 'm6g.16xlarge'],
  [48, 'm5.12xlarge', 'm6g.12xlarge'],
  [32, 'm5.8xlarge', 'm6g.8xlarge'],
  [16, 'm5.4xlarge', 'm6g.4xlarge'],
  [8, 'm5.2xlarge', 'm6g.2xlarge'],
  [4, 'm5.xlarge', 'm6g.xlarge'],
  [2, 'm5.large', 'm6g.large'],
  [1, 't2.micro', 'm6g.medium'],
];

export function instanceTypeFor(cpus: number, arch: string): string {
  const row = SIZES.find(([n]) => cpus >= n) ?? SIZES[SIZES.length - 1]!;
  return arch === 'arm64' ? row[2] : row[1];
}

/**
 * DescribeInstances for the one instance this host is: a stable id kept in
 * the home (i- and 17 hex digits), running since the host booted, of a real
 * instance type matching its CPUs, in the region's first zone, booted from
 * /dev/xvda, with the attached volumes as its BlockDeviceMappings (Device:
 * the name the attach asked for).
 */
function thisInstance(ctx: Ec2Context) {
  const id = ctx.registry.instanceId();
  const mappings = ctx.registry
    .listVolumes()
    .map((v) => ctx.registry.getAttachment(v.volume_id))
    .filter((a) => a !== undefined)
    .map((a) => ({
      DeviceName: a.device_name ?? a.volume_file,
      Ebs: { AttachTime: new Date(a.attach_time), DeleteOnTermination: false, Status: a.state, VolumeId: a.volume_id },
    }));
  const tags = tagShape(ctx.registry, id);
  return {
    AmiLaunchIndex: 0,
    // A stable AMI id for this host's image (ami- and 17 hex digits, as EC2's ids are).
    ImageId: `ami-${crypto.createHash('sha256').update(id).digest('hex').slice(0, 17)}`,
    InstanceId: id,
    InstanceType: instanceTypeFor(os.availableParallelism(), os.arch()),
    // The kernel's boot time (btime, whole seconds): the same on every call, where now minus the uptime drifts by milliseconds.
    LaunchTime: new Date(Number(/^btime (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'utf8'))![1]) * 1000),
    Placement: { AvailabilityZone: defaultZone(ctx.region), GroupName: '', Tenancy: 'default' },
    PrivateDnsName: os.hostname(),
    State: { Code: 16, Name: 'running' },
    Architecture: os.arch() === 'arm64' ? 'arm64' : 'x86_64',
    BlockDeviceMappings: mappings,
    EbsOptimized: true,
    EnaSupport: true,
    Hypervisor: 'xen',
    RootDeviceName: '/dev/xvda',
    RootDeviceType: 'ebs',
    VirtualizationType: 'hvm',
    ...(tags.length ? { Tags: tags } : {}),
  };
}

type InstanceShape = ReturnType<typeof thisInstance>;

const FILTERS = {
  'instance-id': (i: InstanceShape) => i.InstanceId,
  'instance-state-name': (i: InstanceShape) => i.State.Name,
  'instance-state-code': (i: InstanceShape) => String(i.State.Code),
  'availability-zone': (i: InstanceShape) => i.Placement.AvailabilityZone,
  'block-device-mapping.volume-id': (i: InstanceShape) => i.BlockDeviceMappings.map((m) => m.Ebs.VolumeId),
  'block-device-mapping.device-name': (i: InstanceShape) => i.BlockDeviceMappings.map((m) => m.DeviceName),
  'block-device-mapping.status': (i: InstanceShape) => i.BlockDeviceMappings.map((m) => m.Ebs.Status),
};

export function describeInstances(
  ctx: Ec2Context,
  req: { InstanceIds?: string[]; Filters?: { Name: string; Values: string[] }[]; MaxResults?: number; NextToken?: string },
) {
  const me = thisInstance(ctx);
  const missing = (req.InstanceIds ?? []).filter((id) => id !== me.InstanceId);
  if (missing.length)
    throw new ServiceError('InvalidInstanceID.NotFound', `The instance ID '${missing.join(', ')}' does not exist. This host is instance ${me.InstanceId}.`);
  if (req.InstanceIds?.length && req.MaxResults !== undefined)
    throw new ServiceError('InvalidParameterCombination', 'The parameter instancesSet cannot be used with the parameter maxResults.');
  const kept = applyFilters([me], req.Filters, FILTERS, (i) => i.InstanceId, ctx.registry);
  const { page, NextToken } = paginate(kept, req, 'DescribeInstances', (i) => [i.InstanceId]);
  return {
    Reservations: page.map((i) => ({ Groups: [], Instances: [i], OwnerId: ctx.account, ReservationId: `r-${i.InstanceId.slice(2)}` })),
    ...(NextToken ? { NextToken } : {}),
  };
}
