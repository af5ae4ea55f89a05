import { checkAttach, checkDetach, startAttach, startDetach } from '../../card/attach.js';
import { Ec2Errors } from '../../volume/errors.js';
import type { CreateVolumeRequest, DescribeVolumesRequest } from '../../volume/volumes.js';
import { deleteVolume, describeVolumes, getVolume, planVolume, resolveKey, startCreateVolume } from '../../volume/volumes.js';
import type { Operation } from './operation.js';
import { action, checkKey, inBackground } from './operation.js';
import { S } from './protocol.js';

/** CreateVolume, DescribeVolumes, DeleteVolume, AttachVolume, DetachVolume. */
export const volumeOperations: Record<string, Operation> = {
  CreateVolume: action<CreateVolumeRequest & { MultiAttachEnabled?: boolean; OutpostArn?: string }>({
    input: {
      AvailabilityZone: S.str,
      Encrypted: S.bool,
      Iops: S.int,
      KmsKeyId: S.str,
      OutpostArn: S.str,
      Size: S.int,
      SnapshotId: S.str,
      VolumeType: S.str,
      TagSpecifications: S.tagSpecifications,
      MultiAttachEnabled: S.bool,
      Throughput: S.int,
      ClientToken: S.str,
    },
    async check(ctx, req) {
      refuseUnsupported(req);
      const plan = planVolume(ctx, req);
      if (plan.encrypted) await checkKey(ctx, req.KmsKeyId ?? plan.snap?.kms_key_id ?? resolveKey(ctx, undefined));
    },
    async run(ctx, req) {
      refuseUnsupported(req);
      const started = await startCreateVolume(ctx, req);
      inBackground(started.done);
      return started.Volume;
    },
  }),

  DescribeVolumes: action<DescribeVolumesRequest>({
    input: { Filters: S.filters, VolumeIds: S.strList('VolumeId'), MaxResults: S.int, NextToken: S.str },
    async check(ctx, req) {
      await describeVolumes(ctx, req);
    },
    run: (ctx, req) => describeVolumes(ctx, req),
  }),

  DeleteVolume: action<{ VolumeId?: string }>({
    input: { VolumeId: S.str },
    async check(ctx, req) {
      if (!req.VolumeId) throw Ec2Errors.missingParameter('The request must contain the parameter VolumeId');
      const v = getVolume(ctx, req.VolumeId);
      if (ctx.registry.getAttachment(v.volume_id)) throw Ec2Errors.volumeInUse(v.volume_id);
    },
    async run(ctx, req) {
      await deleteVolume(ctx, req);
      return undefined;
    },
  }),

  AttachVolume: action<{ Device?: string; InstanceId?: string; VolumeId?: string }>({
    input: { Device: S.str, InstanceId: S.str, VolumeId: S.str },
    async check(ctx, req) {
      requireAttach(req);
      const v = await checkAttach(ctx, attachRequest(req));
      if (v.kms_key_id) await checkKey(ctx, v.kms_key_id);
    },
    async run(ctx, req) {
      requireAttach(req);
      // Through the EC2 API a volume is always a block device: a loop device, linked as /dev/kmsvol/<volume-id>.
      const started = await startAttach(ctx, attachRequest(req));
      inBackground(started.done);
      return started.Attachment;
    },
  }),

  DetachVolume: action<{ Device?: string; Force?: boolean; InstanceId?: string; VolumeId?: string }>({
    input: { Device: S.str, Force: S.bool, InstanceId: S.str, VolumeId: S.str },
    async check(ctx, req) {
      if (!req.VolumeId) throw Ec2Errors.missingParameter('The request must contain the parameter VolumeId');
      const v = getVolume(ctx, req.VolumeId);
      checkDetach(ctx, v, ctx.registry.getAttachment(v.volume_id), req);
    },
    async run(ctx, req) {
      if (!req.VolumeId) throw Ec2Errors.missingParameter('The request must contain the parameter VolumeId');
      const started = await startDetach(ctx, { VolumeId: req.VolumeId, Force: req.Force, InstanceId: req.InstanceId, Device: req.Device });
      inBackground(started.done);
      return started.Attachment;
    },
  }),
};

function refuseUnsupported(req: { MultiAttachEnabled?: boolean; OutpostArn?: string }): void {
  if (req.MultiAttachEnabled)
    throw Ec2Errors.invalidParameter('Multi-Attach is not supported here: a kmsvol volume has one card, attached to this one instance.');
  if (req.OutpostArn) throw Ec2Errors.invalidParameter('Outposts are not supported here; omit OutpostArn.');
}

function requireAttach(req: {
  Device?: string;
  InstanceId?: string;
  VolumeId?: string;
}): asserts req is { Device: string; InstanceId: string; VolumeId: string } {
  for (const p of ['Device', 'InstanceId', 'VolumeId'] as const) if (!req[p]) throw Ec2Errors.missingParameter(`The request must contain the parameter ${p}`);
}

function attachRequest(req: { Device: string; InstanceId: string; VolumeId: string }) {
  return { VolumeId: req.VolumeId, DeviceName: req.Device, InstanceId: req.InstanceId, Loop: true };
}
