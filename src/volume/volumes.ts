import fs from 'node:fs';
import path from 'node:path';
import { ServiceError } from '../errors.js';
import { ensureDir, openPrivate } from '../home.js';
import { createLogger } from '../log.js';
import { lockExclusive } from '../native/index.js';
import { withSnapshotImage } from './blockmap.js';
import { changesPath } from './changefile.js';
import { startChangesAt } from './changes.js';
import type { Ec2Context } from './context.js';
import { getSnapshot, getVolume, refuseMultiAttach, resolveKey } from './context.js';
import { Ec2Errors } from './errors.js';
import type { Filter, FilterSpec } from './filters.js';
import { describePage, refusePagedIds, sharedFilters } from './filters.js';
import { copyImage, imageFile, imagePath, removeRunFiles, volumeLockPath, writeEncryptedImage, writeImageAtomically } from './images.js';
import { checkSize, checkVolumeType, DEFAULT_VOLUME_TYPE, performance } from './limits.js';
import { GiB } from './offsets.js';
import type { AttachmentRow, VolumeRow } from './registry.js';
import { newId } from './registry.js';
import type { TagSpecification } from './tags.js';
import { putTags, tagShape, tagsFor } from './tags.js';
import { checkText } from './text.js';
import { checkZone } from './zones.js';

// What callers outside volume/ have long imported from here (the context and lookups now live in context.ts, the images in images.ts).
export type { CardOps, Ec2Context, ImageSide } from './context.js';
export { EBS_CONTEXT_KEY, getVolume, resolveKey } from './context.js';
export type { Filter } from './filters.js';
export { imageFile, imagePath, volumeLockPath } from './images.js';

export { VOLUME_TYPES } from './limits.js';

export interface CreateVolumeRequest {
  SnapshotId?: string;
  Size?: number;
  Encrypted?: boolean;
  KmsKeyId?: string;
  AvailabilityZone?: string;
  VolumeType?: string;
  Iops?: number;
  Throughput?: number;
  TagSpecifications?: TagSpecification[];
  /** Refused when true (refuseMultiAttach). */
  MultiAttachEnabled?: boolean;
  /** Idempotency: a retry with the same token and request answers the same volume. */
  ClientToken?: string;
}

/** The EC2 VolumeAttachment shape. */
export function attachmentShape(a: AttachmentRow, instanceId: string) {
  return {
    AttachTime: new Date(a.attach_time),
    Device: a.device_name ?? a.volume_file,
    InstanceId: instanceId,
    State: a.state,
    VolumeId: a.volume_id,
    DeleteOnTermination: false,
    ...(a.loop_device ? { LoopDevice: a.loop_device } : {}),
  };
}

/** The members of EC2's Volume in the model's order (the order the AWS CLI prints them in). */
const VOLUME_ORDER = [
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
  'Tags',
  'VolumeType',
  'MultiAttachEnabled',
  'Throughput',
];

function inVolumeOrder<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => VOLUME_ORDER.indexOf(a) - VOLUME_ORDER.indexOf(b))) as T;
}

/** The EC2 Volume shape of describe-volumes and create-volume (Tags only when the volume has some, as DescribeVolumes answers; always, as CreateVolume does). */
export function volumeShape(ctx: Ec2Context, v: VolumeRow, a?: AttachmentRow, opts: { tags?: 'always' } = {}) {
  const tags = tagShape(ctx.registry, v.volume_id);
  return {
    Attachments: a ? [attachmentShape(a, ctx.registry.instanceId())] : [],
    AvailabilityZone: v.availability_zone,
    CreateTime: new Date(v.create_time),
    Encrypted: v.encrypted === 1,
    ...(v.kms_key_id ? { KmsKeyId: v.kms_key_id } : {}),
    Size: v.size,
    SnapshotId: v.snapshot_id,
    State: v.state,
    VolumeId: v.volume_id,
    ...(v.iops !== null ? { Iops: v.iops } : {}),
    ...(tags.length || opts.tags === 'always' ? { Tags: tags } : {}),
    VolumeType: v.volume_type,
    MultiAttachEnabled: false,
    ...(v.throughput !== null ? { Throughput: v.throughput } : {}),
  };
}

export interface CreateStarted {
  /** The answer EC2 gives at once: state `creating`, KmsKeyId as the caller named it. */
  Volume: Omit<ReturnType<typeof volumeShape>, 'Attachments'>;
  /** Settles when the volume is `available` (with its final shape), or rejects (the volume is gone, and an event says why). */
  done: Promise<ReturnType<typeof volumeShape>>;
}

/** Everything CreateVolume checks before it records anything (also what a DryRun checks). */
export function planVolume(ctx: Ec2Context, req: CreateVolumeRequest) {
  refuseMultiAttach(req);
  const snap = req.SnapshotId ? getSnapshot(ctx, req.SnapshotId) : undefined;
  const size = req.Size ?? snap?.volume_size;
  if (size === undefined) throw Ec2Errors.missingParameter('The request must contain the parameter size or snapshotId');
  const type = checkVolumeType(req.VolumeType ?? DEFAULT_VOLUME_TYPE);
  // The type's own members first (io1 without Iops is MissingParameter whatever its size), then its size range.
  const perf = performance(type, size, req.Iops, req.Throughput);
  checkSize(type, size);
  if (snap && size < snap.volume_size)
    throw Ec2Errors.invalidParameter(`Volume of ${size}GiB is too small; minimum is ${snap.volume_size}GiB (the size of ${snap.snapshot_id}).`);
  const zone = checkZone(ctx.region, req.AvailabilityZone);
  const tags = tagsFor(req.TagSpecifications, 'volume');
  const byDefault = ctx.registry.getSetting('ebs_encryption_by_default') === 'true';
  if (req.Encrypted === false && (byDefault || snap?.encrypted)) {
    throw Ec2Errors.invalidParameter(
      snap?.encrypted
        ? `Snapshot ${snap.snapshot_id} is encrypted; a volume created from it is always encrypted.`
        : 'Encryption by default is enabled for this account and Region; volumes are always encrypted. Disable it with disable-ebs-encryption-by-default first.',
    );
  }
  const encrypted = req.Encrypted ?? (byDefault || snap?.encrypted === 1);
  if (req.KmsKeyId === '')
    throw Ec2Errors.invalidParameter(
      "Value ('') for parameter KmsKeyId is invalid. Name a key by id, ARN or alias, or leave the parameter out for the default key.",
    );
  if (req.KmsKeyId && !encrypted) throw new ServiceError('InvalidParameterDependency', 'The parameter KmsKeyId requires the parameter Encrypted to be set.');

  return { snap, size, type, perf, zone, tags, encrypted };
}

/**
 * CreateVolume as EC2 does it: the request is checked and the volume
 * recorded as `creating` at once; the data key, the image and any snapshot
 * copy follow. A KMS refusal removes the volume (it never was), as EC2 does.
 */
export async function startCreateVolume(ctx: Ec2Context, req: CreateVolumeRequest): Promise<CreateStarted> {
  checkText('ClientToken', req.ClientToken);
  if (req.ClientToken !== undefined) {
    const seen = ctx.registry.getClientToken(req.ClientToken);
    if (seen) {
      if (seen.operation !== 'CreateVolume' || seen.request !== JSON.stringify({ ...req, ClientToken: undefined })) {
        throw new ServiceError(
          'IdempotentParameterMismatch',
          `The client token '${req.ClientToken}' was used before with a different request. Use a new client token for a new volume.`,
        );
      }
      const v = ctx.registry.getVolume(seen.resource_id);
      if (!v || v.state === 'deleted') throw Ec2Errors.volumeNotFound(seen.resource_id);
      const shape = volumeShape(ctx, v, ctx.registry.getAttachment(v.volume_id));
      return { Volume: shape, done: Promise.resolve(shape) };
    }
  }
  const { snap, size, type, perf, zone, tags, encrypted } = planVolume(ctx, req);
  ensureDir(ctx.home.volumesDir);
  const id = newId('vol');
  const file = imagePath(ctx.home, id);
  const row: VolumeRow = {
    volume_id: id,
    size,
    state: 'creating',
    encrypted: encrypted ? 1 : 0,
    kms_key_id: null,
    create_time: ctx.clock.now().getTime(),
    snapshot_id: snap?.snapshot_id ?? '',
    availability_zone: zone,
    volume_type: type,
    iops: perf.iops,
    throughput: perf.throughput,
    image: path.relative(ctx.home.root, file),
  };
  ctx.registry.write(() => {
    ctx.registry.insertVolume(row);
    putTags(ctx.registry, id, tags);
    if (req.ClientToken !== undefined) ctx.registry.putClientToken(req.ClientToken, 'CreateVolume', JSON.stringify({ ...req, ClientToken: undefined }), id);
  });
  // EC2 answers with the key as the caller named it (none when it was not named).
  // CreateVolume's answer has no Attachments and always has Tags (DescribeVolumes' has Tags only when there are some).
  const { Attachments: _none, ...created } = volumeShape(ctx, row, undefined, { tags: 'always' });
  const first = req.KmsKeyId ? inVolumeOrder({ ...created, KmsKeyId: req.KmsKeyId }) : created;
  const done = (async () => {
    try {
      if (encrypted) {
        // A volume from an encrypted snapshot keeps the snapshot's key unless another is named.
        const keyRef = req.KmsKeyId ?? snap?.kms_key_id ?? resolveKey(ctx, undefined);
        row.kms_key_id = await writeEncryptedImage(ctx, file, id, keyRef, size * GiB);
      } else {
        writeImageAtomically(file, undefined, size * GiB);
      }
      // The new volume has its own data key: the snapshot's data is re-encrypted into it.
      if (snap) {
        await withSnapshotImage(ctx, snap, (from) =>
          copyImage(ctx, from, snap.encrypted === 1, file, encrypted, snap.volume_size * GiB, (f) => ctx.onProgress?.(`${id} from ${snap.snapshot_id}`, f)),
        );
        startChangesAt(ctx, id, file, size * GiB, snap.snapshot_id); // its image is the snapshot's: that is its base, nothing changed yet
      }
      row.state = 'available';
      ctx.registry.write(() => ctx.registry.updateVolume(id, { state: row.state, kms_key_id: row.kms_key_id }));
      ctx.events.record(id, 'createVolume', 'available');
      return volumeShape(ctx, row);
    } catch (e) {
      // If the KMS refused (or the copy failed), no volume is created.
      fs.rmSync(file, { force: true });
      fs.rmSync(changesPath(ctx.home, id), { force: true });
      ctx.registry.write(() => {
        ctx.registry.deleteVolume(id);
        ctx.registry.deleteTagsOf(id);
      });
      ctx.events.record(id, 'createVolume', 'failed', `${(e as Error).name}: ${(e as Error).message}`);
      throw e;
    }
  })();
  return { Volume: first, done };
}

/** CreateVolume, waiting until the volume is available (the TypeScript API and kmsvol's CLI wait; EC2 answers `creating` at once). */
export async function createVolume(ctx: Ec2Context, req: CreateVolumeRequest) {
  const started = await startCreateVolume(ctx, req);
  return started.done;
}

const FILTERS: FilterSpec<VolumeRow & { a?: AttachmentRow; instance: string }> = {
  ...sharedFilters(),
  size: (v) => String(v.size),
  'availability-zone': (v) => v.availability_zone,
  'volume-type': (v) => v.volume_type,
  'snapshot-id': (v) => v.snapshot_id,
  'create-time': (v) => new Date(v.create_time).toISOString(),
  'multi-attach-enabled': () => 'false',
  'attachment.status': (v) => v.a?.state,
  'attachment.device': (v) => v.a && (v.a.device_name ?? v.a.volume_file),
  'attachment.instance-id': (v) => v.a && v.instance,
  'attachment.attach-time': (v) => v.a && new Date(v.a.attach_time).toISOString(),
  'attachment.delete-on-termination': (v) => v.a && 'false',
};

export interface DescribeVolumesRequest {
  VolumeIds?: string[];
  Filters?: Filter[];
  MaxResults?: number;
  NextToken?: string;
}

export async function describeVolumes(ctx: Ec2Context, req: DescribeVolumesRequest) {
  refusePagedIds(req.VolumeIds, req, 'volumeSet', 'volumes');
  let rows: VolumeRow[];
  if (req.VolumeIds?.length) {
    const missing = req.VolumeIds.filter((id) => {
      if (!/^vol-[0-9a-f]{8}([0-9a-f]{9})?$/.test(id)) throw Ec2Errors.invalidId('Volume', id);
      const v = ctx.registry.getVolume(id);
      return !v || v.state === 'deleted';
    });
    if (missing.length)
      throw new ServiceError(
        'InvalidVolume.NotFound',
        `The volume${missing.length > 1 ? 's' : ''} '${missing.join(', ')}' do${missing.length > 1 ? '' : 'es'} not exist.`,
      );
    rows = req.VolumeIds.map((id) => ctx.registry.getVolume(id)!);
  } else rows = ctx.registry.listVolumes();
  // A card that died leaves a stale attachment: reconcile before answering.
  for (const v of rows) {
    const a = ctx.registry.getAttachment(v.volume_id);
    if (a && ctx.reconcile) await ctx.reconcile(v, a);
  }
  const instance = ctx.registry.instanceId();
  const current = rows.map((v) => ({ ...ctx.registry.getVolume(v.volume_id)!, a: ctx.registry.getAttachment(v.volume_id), instance }));
  const { page, NextToken } = describePage(current, req, {
    operation: 'DescribeVolumes',
    spec: FILTERS,
    idOf: (v) => v.volume_id,
    keyOf: (v) => [v.create_time, v.volume_id],
    registry: ctx.registry,
  });
  return { Volumes: page.map((v) => volumeShape(ctx, v, v.a)), ...(NextToken ? { NextToken } : {}) };
}

export async function deleteVolume(ctx: Ec2Context, req: { VolumeId?: string }) {
  if (!req.VolumeId) throw Ec2Errors.missingParameter('The request must contain the parameter VolumeId');
  const v = getVolume(ctx, req.VolumeId);
  const a = ctx.registry.getAttachment(v.volume_id);
  if (a && ctx.reconcile) await ctx.reconcile(v, a);
  if (ctx.registry.getAttachment(v.volume_id)) throw Ec2Errors.volumeInUse(v.volume_id);
  // Precondition: no card holds the volume, not even one still starting (it takes the lock first).
  ensureDir(ctx.home.runDir);
  const lock = openPrivate(volumeLockPath(ctx.home, v.volume_id), 'a', true);
  let left: string[] = [];
  try {
    if (!lockExclusive(lock)) throw Ec2Errors.volumeInUse(v.volume_id, ' (a card is attaching it)');
    ctx.registry.write(() => ctx.registry.setVolumeState(v.volume_id, 'deleting'));
    fs.rmSync(imageFile(ctx.home, v), { force: true });
    fs.rmSync(changesPath(ctx.home, v.volume_id), { force: true });
    ctx.registry.write(() => {
      ctx.registry.deleteVolume(v.volume_id);
      ctx.registry.deleteTagsOf(v.volume_id);
    });
    left = removeRunFiles(ctx.home, v.volume_id);
  } finally {
    fs.closeSync(lock);
  }
  ctx.events.record(v.volume_id, 'deleteVolume', 'deleted');
  if (left.length)
    createLogger('volume').warn({ volumeId: v.volume_id, left }, 'deleted; a mount directory that is a link, a mount point or not empty was left');
  return {};
}
