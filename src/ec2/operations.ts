import { attachForeground, attachVolume, checkAttach, startAttach } from '../card/attach.js';
import { checkDetach, startDetach } from '../card/detach.js';
import type { Ec2Context } from '../volume/context.js';
import { getSnapshot, getVolume, resolveKey } from '../volume/context.js';
import {
  getEbsDefaultKmsKeyId,
  getEbsEncryptionByDefault,
  modifyEbsDefaultKmsKeyId,
  resetEbsDefaultKmsKeyId,
  setEbsEncryptionByDefault,
} from '../volume/defaults.js';
import { Ec2Errors } from '../volume/errors.js';
import { describeInstances } from '../volume/instances.js';
import type { ModifyVolumeRequest } from '../volume/modify.js';
import { describeVolumeAttribute, describeVolumeStatus, describeVolumesModifications, planModification, startModifyVolume } from '../volume/modify.js';
import type { CopySnapshotRequest } from '../volume/snapshots.js';
import { deleteSnapshot, describeSnapshots, startCopySnapshot, startCreateSnapshot } from '../volume/snapshots.js';
import { createTags, deleteTags, describeTags, tagsFor } from '../volume/tags.js';
import type { CreateVolumeRequest } from '../volume/volumes.js';
import { deleteVolume, describeVolumes, planVolume, startCreateVolume } from '../volume/volumes.js';
import type { Ec2Operation } from './operation.js';
import { answered, checkKey, op } from './operation.js';

/**
 * The EC2 operation registry: one entry per operation kmsvol serves, from
 * which the rest is derived — the endpoint's Query decoding and XML answers
 * (server/ec2/), the `kmsvol ec2` commands, their options and paging
 * (cli/ec2.ts), and the TypeScript API (api.ts). A new operation is its
 * entry here, its handler in src/volume (or src/card), and its tests;
 * test/unit/ec2/model.test.ts holds every entry against botocore's model.
 */
const none = async () => undefined;
const need = (v: unknown, name: string) => {
  if (!v) throw Ec2Errors.missingParameter(`The request must contain the parameter ${name}`);
};
const PAGING = ['MaxResults', 'NextToken'] as const;
const OUTPOSTS = 'Outposts are not supported here; omit OutpostArn.';
const ATTACHMENT = ['AttachTime', 'Device', 'InstanceId', 'State', 'VolumeId', 'DeleteOnTermination'];
const VOLUME = ['AvailabilityZone', 'CreateTime', 'Encrypted', 'KmsKeyId', 'Size', 'SnapshotId', 'State', 'VolumeId', 'Iops'];
const SNAPSHOT = ['Description', 'Encrypted', 'OwnerId', 'Progress', 'SnapshotId', 'StartTime', 'State', 'VolumeId', 'VolumeSize', 'Tags'];

type AttachReq = { Device?: string; InstanceId?: string; VolumeId?: string };
type LocalAttachReq = { Device?: string; InstanceId?: string; VolumeId: string; Loop?: boolean; Foreground?: boolean };
type DetachReq = { Device?: string; Force?: boolean; InstanceId?: string; VolumeId?: string };

/** kmsvol's own attach (its CLI and API): Device is the directory the decrypted volume appears in, with or without a loop device, in this process or a card's. */
const localAttach = op<LocalAttachReq>({
  members: ['Device', 'InstanceId', 'VolumeId!', 'Loop', 'Foreground'],
  output: [...ATTACHMENT, 'LoopDevice'],
  help: {
    Device: 'directory where the decrypted volume file appears',
    InstanceId: "this host's instance id (describe-instances)",
  },
  async check(ctx, req) {
    const v = await checkAttach(ctx, req);
    if (v.kms_key_id) await checkKey(ctx, v.kms_key_id);
  },
  async run(ctx, req) {
    const r = { VolumeId: req.VolumeId, Device: req.Device, InstanceId: req.InstanceId, Loop: !!req.Loop };
    if (!req.Foreground) return { answer: await attachVolume(ctx, r) };
    const { attachment, stopped } = await attachForeground(ctx, r);
    return { answer: attachment, done: stopped, early: true };
  },
});

export const OPERATIONS = {
  CreateVolume: op<CreateVolumeRequest & { OutpostArn?: string }>({
    members: [
      'AvailabilityZone',
      'Encrypted',
      'Iops',
      'KmsKeyId',
      'OutpostArn',
      'Size',
      'SnapshotId',
      'VolumeType',
      'TagSpecifications',
      'MultiAttachEnabled',
      'Throughput',
      'ClientToken',
    ],
    defaults: { AvailabilityZone: "the region's first Availability Zone" },
    unsupported: { OutpostArn: OUTPOSTS },
    output: [...VOLUME, 'Tags', 'VolumeType', 'MultiAttachEnabled', 'Throughput'],
    async check(ctx, req) {
      const plan = planVolume(ctx, req);
      if (plan.encrypted) await checkKey(ctx, req.KmsKeyId ?? plan.snap?.kms_key_id ?? resolveKey(ctx, undefined));
    },
    async run(ctx, req) {
      const started = await startCreateVolume(ctx, req);
      return { answer: started.Volume, done: started.done };
    },
  }),

  DescribeVolumes: reading(describeVolumes, {
    members: ['Filters', 'VolumeIds', ...PAGING],
    output: ['Volumes', 'NextToken'],
    pages: 'Volumes',
    aliases: { VolumeIds: '--volume-id' },
  }),

  DeleteVolume: op<{ VolumeId?: string }>({
    members: ['VolumeId!'],
    output: null,
    async check(ctx, req) {
      need(req.VolumeId, 'VolumeId');
      const v = getVolume(ctx, req.VolumeId!);
      if (ctx.registry.getAttachment(v.volume_id)) throw Ec2Errors.volumeInUse(v.volume_id);
    },
    run: (ctx, req) => answered(deleteVolume(ctx, req)),
  }),

  AttachVolume: op<AttachReq>({
    members: ['Device!', 'InstanceId!', 'VolumeId!'],
    output: ATTACHMENT,
    async check(ctx, req) {
      const v = await checkAttach(ctx, ec2Attach(req));
      if (v.kms_key_id) await checkKey(ctx, v.kms_key_id);
    },
    async run(ctx, req) {
      // Through the EC2 API a volume is always a block device: a loop device, linked as /dev/kmsvol/<volume-id>.
      const started = await startAttach(ctx, ec2Attach(req));
      return { answer: started.Attachment, done: started.done };
    },
    local: localAttach,
  }),

  DetachVolume: op<DetachReq>({
    members: ['Device', 'Force', 'InstanceId', 'VolumeId!'],
    output: ATTACHMENT,
    help: { Device: "the attachment's Device (as describe-volumes shows it), or the directory attach-volume --device was given" },
    async check(ctx, req) {
      need(req.VolumeId, 'VolumeId');
      const v = getVolume(ctx, req.VolumeId!);
      checkDetach(ctx, v, ctx.registry.getAttachment(v.volume_id), req);
    },
    async run(ctx, req) {
      need(req.VolumeId, 'VolumeId');
      const started = await startDetach(ctx, { VolumeId: req.VolumeId!, Force: req.Force, InstanceId: req.InstanceId, Device: req.Device });
      return { answer: started.Attachment, done: started.done };
    },
  }),

  ModifyVolume: op<ModifyVolumeRequest>({
    members: ['VolumeId!', 'Size', 'VolumeType', 'Iops', 'Throughput', 'MultiAttachEnabled'],
    output: ['VolumeModification'],
    check: async (ctx, req) => void planModification(ctx, req),
    async run(ctx, req) {
      const started = startModifyVolume(ctx, req);
      return { answer: { VolumeModification: started.VolumeModification }, done: started.done };
    },
  }),

  DescribeVolumesModifications: reading(describeVolumesModifications, {
    members: ['VolumeIds', 'Filters', 'NextToken', 'MaxResults'],
    output: ['VolumesModifications', 'NextToken'],
    pages: 'VolumesModifications',
  }),

  DescribeVolumeStatus: reading(describeVolumeStatus, {
    members: ['Filters', 'MaxResults', 'NextToken', 'VolumeIds'],
    output: ['NextToken', 'VolumeStatuses'],
    pages: 'VolumeStatuses',
  }),

  DescribeVolumeAttribute: reading(describeVolumeAttribute, {
    members: ['Attribute!', 'VolumeId!'],
    output: ['AutoEnableIO', 'ProductCodes', 'VolumeId'],
  }),

  DescribeInstances: reading(describeInstances, {
    members: ['Filters', 'InstanceIds', ...PAGING],
    output: ['Reservations', 'NextToken'],
    pages: 'Reservations',
    // In an Instance, State is instanceState (elsewhere it is status).
    rename: { State: 'instanceState' },
  }),

  CreateSnapshot: op<Parameters<typeof startCreateSnapshot>[1] & { OutpostArn?: string }>({
    members: ['Description', 'OutpostArn', 'VolumeId!', 'TagSpecifications'],
    unsupported: { OutpostArn: OUTPOSTS },
    output: SNAPSHOT,
    async check(ctx, req) {
      need(req.VolumeId, 'VolumeId');
      getVolume(ctx, req.VolumeId!);
      tagsFor(req.TagSpecifications, 'snapshot');
    },
    async run(ctx, req) {
      const started = startCreateSnapshot(ctx, req);
      // EC2 answers without the key (it is in DescribeSnapshots once pending).
      const { KmsKeyId: _key, ...answer } = started.Snapshot;
      return { answer, done: started.done };
    },
  }),

  CopySnapshot: op<CopySnapshotRequest>({
    members: [
      'Description',
      'DestinationOutpostArn',
      'DestinationRegion',
      'Encrypted',
      'KmsKeyId',
      'PresignedUrl',
      'SourceRegion',
      'SourceSnapshotId!',
      'TagSpecifications',
    ],
    defaults: { SourceRegion: 'this region (snapshots are copied within it)' },
    output: ['SnapshotId', 'Tags'],
    async check(ctx, req) {
      need(req.SourceSnapshotId, 'SourceSnapshotId');
      const src = getSnapshot(ctx, req.SourceSnapshotId!);
      tagsFor(req.TagSpecifications, 'snapshot');
      if (src.encrypted || req.Encrypted) await checkKey(ctx, req.KmsKeyId ?? src.kms_key_id ?? resolveKey(ctx, undefined));
    },
    async run(ctx, req) {
      const started = startCopySnapshot(ctx, req);
      // EC2 answers only the new snapshot's id (and its tags).
      const { SnapshotId, Tags } = started.Snapshot;
      return { answer: { SnapshotId, ...(Tags.length ? { Tags } : {}) }, done: started.done };
    },
  }),

  DescribeSnapshots: reading(describeSnapshots, {
    members: ['Filters', 'MaxResults', 'NextToken', 'OwnerIds', 'RestorableByUserIds', 'SnapshotIds'],
    output: ['Snapshots', 'NextToken'],
    pages: 'Snapshots',
  }),

  DeleteSnapshot: op<{ SnapshotId?: string }>({
    members: ['SnapshotId!'],
    output: null,
    async check(ctx, req) {
      need(req.SnapshotId, 'SnapshotId');
      getSnapshot(ctx, req.SnapshotId!);
    },
    run: (ctx, req) => answered(deleteSnapshot(ctx, req)),
  }),

  CreateTags: op<Parameters<typeof createTags>[1]>({
    members: ['Resources!', 'Tags!'],
    output: null,
    check: none,
    run: (ctx, req) => answered(createTags(ctx, req)),
  }),

  DeleteTags: op<Parameters<typeof deleteTags>[1]>({
    members: ['Resources!', 'Tags'],
    output: null,
    check: none,
    run: (ctx, req) => answered(deleteTags(ctx, req)),
  }),

  DescribeTags: reading(describeTags, {
    members: ['Filters', ...PAGING],
    output: ['NextToken', 'Tags'],
    pages: 'Tags',
  }),

  EnableEbsEncryptionByDefault: setting((ctx) => setEbsEncryptionByDefault(ctx, true), ['EbsEncryptionByDefault']),
  DisableEbsEncryptionByDefault: setting((ctx) => setEbsEncryptionByDefault(ctx, false), ['EbsEncryptionByDefault']),
  GetEbsEncryptionByDefault: setting(getEbsEncryptionByDefault, ['EbsEncryptionByDefault']),
  GetEbsDefaultKmsKeyId: setting(getEbsDefaultKmsKeyId, ['KmsKeyId']),

  ModifyEbsDefaultKmsKeyId: op<{ KmsKeyId?: string }>({
    members: ['KmsKeyId!'],
    output: ['KmsKeyId'],
    async check(ctx, req) {
      need(req.KmsKeyId, 'KmsKeyId');
      await checkKey(ctx, req.KmsKeyId!);
    },
    async run(ctx, req) {
      need(req.KmsKeyId, 'KmsKeyId');
      return answered(modifyEbsDefaultKmsKeyId(ctx, req.KmsKeyId!));
    },
  }),

  ResetEbsDefaultKmsKeyId: setting(resetEbsDefaultKmsKeyId, ['KmsKeyId']),
};

export type Ec2OperationName = keyof typeof OPERATIONS;

/** A read-only operation: its dry-run check is the read itself, its answer the read's result. */
function reading<Req>(read: (ctx: Ec2Context, req: Req) => unknown, spec: Omit<Ec2Operation<Req>, 'check' | 'run'>) {
  return op<Req>({ ...spec, check: async (ctx, req) => void (await read(ctx, req)), run: (ctx, req) => answered(read(ctx, req)) });
}

/** An account setting (encryption by default, the default key): no members, nothing to check. */
function setting(read: (ctx: Ec2Context) => unknown, output: string[]) {
  return op<Record<string, never>>({ members: [], output, check: none, run: (ctx) => answered(read(ctx)) });
}

/** EC2's AttachVolume: all three members required; Device is the device name the attachment shows (/dev/sdf). */
function ec2Attach(req: AttachReq) {
  for (const p of ['Device', 'InstanceId', 'VolumeId'] as const) need(req[p], p);
  return { VolumeId: req.VolumeId!, DeviceName: req.Device, InstanceId: req.InstanceId, Loop: true };
}
