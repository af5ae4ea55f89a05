import os from 'node:os';
import { ServiceError } from '../errors.js';
import type { Ec2Context } from './context.js';
import { applyFilters, paginate } from './filters.js';
import { tagShape } from './tags.js';

/**
 * DescribeInstances for the one instance this host is: a stable id kept in
 * the home (i- and 17 hex digits), running since the host booted, with the
 * attached volumes as its BlockDeviceMappings (Device: the name the attach
 * asked for).
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
    InstanceId: id,
    InstanceType: 'kmsvol.host',
    LaunchTime: new Date(Date.now() - os.uptime() * 1000),
    Placement: { AvailabilityZone: `${ctx.region}a`, Tenancy: 'default' },
    PrivateDnsName: os.hostname(),
    State: { Code: 16, Name: 'running' },
    Architecture: os.arch() === 'arm64' ? 'arm64' : 'x86_64',
    BlockDeviceMappings: mappings,
    Hypervisor: 'xen',
    RootDeviceType: 'instance-store',
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
  const { page, NextToken } = paginate(kept, req, 'DescribeInstances');
  return {
    Reservations: page.map((i) => ({ Groups: [], Instances: [i], OwnerId: ctx.account, ReservationId: `r-${i.InstanceId.slice(2)}` })),
    ...(NextToken ? { NextToken } : {}),
  };
}
