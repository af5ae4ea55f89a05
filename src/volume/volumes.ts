import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Clock } from '../clock.js';
import { ServiceError } from '../errors.js';
import type { Home } from '../home.js';
import { ensureDir, openPrivate } from '../home.js';
import type { KmsClient } from '../kms/client/index.js';
import { lockExclusive } from '../native/index.js';
import { Ec2Errors } from './errors.js';
import type { EventLog } from './events.js';
import type { Filter, FilterSpec } from './filters.js';
import { applyFilters, paginate } from './filters.js';
import type { KeyDigest, KmsvolToken } from './luks2.js';
import { CIPHER, encodeHeader, PAYLOAD_OFFSET, readImageHeader } from './luks2.js';
import { GiB, SECTOR_SIZE } from './offsets.js';
import type { AttachmentRow, Registry, VolumeRow } from './registry.js';
import { newId } from './registry.js';
import { getSnapshot, snapshotFile } from './snapshots.js';
import type { TagSpecification } from './tags.js';
import { putTags, tagShape, tagsFor } from './tags.js';

export type { Filter } from './filters.js';

/** One side of an image copy: the file, where its payload starts, and its key token (null: unencrypted). */
export interface ImageSide {
  file: string;
  payloadOffset: number;
  token: KmsvolToken | null;
}

/**
 * What the control plane asks of the card layer for snapshots and copies
 * (only the card layer touches plaintext data keys): quiescing an attached
 * volume, and moving a payload between images under different keys.
 */
export interface CardOps {
  /** The LUKS2 digest of the volume key named by a token (unwrapped, hashed and zeroized in the card layer). */
  keyDigest(token: KmsvolToken): Promise<KeyDigest>;
  quiesce(volumeId: string): Promise<() => Promise<void>>;
  /** Tell an attached volume's card that its image grew to `sizeBytes` of payload. */
  resize(volumeId: string, sizeBytes: number): Promise<void>;
  copyPayload(src: ImageSide, dst: ImageSide, sizeBytes: number, onProgress?: (fraction: number) => void): Promise<number>;
}

/** What the volume control plane needs around it. */
export interface Ec2Context {
  home: Home;
  registry: Registry;
  kms: KmsClient;
  events: EventLog;
  clock: Clock;
  region: string;
  account: string;
  /** Reconciles an attachment whose card may have died (provided by the card layer). */
  reconcile?: (v: VolumeRow, a: AttachmentRow) => Promise<void>;
  /** What only the card layer may do (it alone touches plaintext data keys). */
  card: CardOps;
  /** Told how far a long copy has come (the CLI draws a progress bar on a terminal). */
  onProgress?: (what: string, fraction: number) => void;
}

export const EBS_CONTEXT_KEY = 'aws:ebs:id';
export const VOLUME_TYPES = ['gp2', 'gp3', 'io1', 'io2', 'st1', 'sc1', 'standard'] as const;

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
  /** Idempotency: a retry with the same token and request answers the same volume. */
  ClientToken?: string;
}

export function imagePath(home: Home, volumeId: string): string {
  return path.join(home.volumesDir, `${volumeId}.img`);
}

/** The registry keeps image paths relative to the home, so a home can be moved or restored elsewhere. */
export function imageFile(home: Home, v: VolumeRow): string {
  return path.resolve(home.root, v.image);
}

/** The EC2 VolumeAttachment shape. */
export function attachmentShape(a: AttachmentRow, instanceId: string) {
  return {
    AttachTime: new Date(a.attach_time),
    Device: a.device_name ?? a.device,
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

/** The KMS key for a new encrypted volume: the one asked for, the account default, or alias/aws/ebs (the KMS creates it when first named). */
export function resolveKey(ctx: Ec2Context, requested: string | undefined): string {
  return requested ?? ctx.registry.getSetting('ebs_default_kms_key_id') ?? 'alias/aws/ebs';
}

/**
 * Write a new encrypted image: LUKS2 header with the wrapped key, then a sparse
 * payload. Written to a temporary name and renamed, so a failure leaves nothing.
 */
export async function writeEncryptedImage(ctx: Ec2Context, file: string, volumeId: string, keyRef: string, sizeBytes: number): Promise<string> {
  const context = { [EBS_CONTEXT_KEY]: volumeId };
  for (let attempt = 0; ; attempt++) {
    const gdk = await ctx.kms.send('GenerateDataKeyWithoutPlaintext', { KeyId: keyRef, NumberOfBytes: 64, EncryptionContext: context });
    const token: KmsvolToken = { volumeId, keyArn: gdk.KeyId, ciphertextBlob: Buffer.from(gdk.CiphertextBlob).toString('base64'), encryptionContext: context };
    let digest: KeyDigest;
    try {
      digest = await ctx.card.keyDigest(token);
    } catch (e) {
      // A key whose two halves are equal cannot be used for XTS: generate another.
      if ((e as Error).name === 'InvalidKey' && attempt < 3) continue;
      throw e;
    }
    const header = encodeHeader({
      uuid: crypto.randomUUID(),
      label: volumeId,
      token,
      digest,
      payloadOffset: PAYLOAD_OFFSET,
      sectorSize: SECTOR_SIZE,
      cipher: CIPHER,
    });
    writeImageAtomically(file, header, PAYLOAD_OFFSET + sizeBytes);
    return gdk.KeyId;
  }
}

/** Create `file` holding `head` at offset 0 and sized `size` (sparse), via a temporary name, fsynced. */
export function writeImageAtomically(file: string, head: Buffer | undefined, size: number): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    if (head) fs.writeSync(fd, head, 0, head.length, 0);
    fs.ftruncateSync(fd, size);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  const dfd = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
}

/** Iops and Throughput as EC2 checks them for each volume type; the defaults EC2 gives (gp3: 3000 and 125). */
export function performance(
  type: string,
  size: number,
  iops: number | undefined,
  throughput: number | undefined,
): { iops: number | null; throughput: number | null } {
  const bad = (m: string) => Ec2Errors.invalidParameter(m);
  if (throughput !== undefined && type !== 'gp3')
    throw new ServiceError('InvalidParameterCombination', `The parameter throughput is not supported for ${type} volumes; only gp3 volumes take a throughput.`);
  if (type === 'gp3') {
    const i = iops ?? 3000;
    const t = throughput ?? 125;
    if (!Number.isInteger(i) || i < 3000 || i > 16000) throw bad(`Iops (${i}) for gp3 volumes must be 3000-16000.`);
    if (!Number.isInteger(t) || t < 125 || t > 1000) throw bad(`Throughput (${t}) for gp3 volumes must be 125-1000 MiB/s.`);
    return { iops: i, throughput: t };
  }
  if (type === 'io1' || type === 'io2') {
    if (iops === undefined) throw Ec2Errors.missingParameter(`The parameter iops must be specified for ${type} volumes.`);
    const max = type === 'io1' ? 64000 : 256000;
    if (!Number.isInteger(iops) || iops < 100 || iops > max) throw bad(`Iops (${iops}) for ${type} volumes must be 100-${max}.`);
    if (iops > size * (type === 'io1' ? 50 : 1000))
      throw bad(`Iops to volume size ratio of ${iops / size} is too high; maximum is ${type === 'io1' ? 50 : 1000}.`);
    return { iops, throughput: null };
  }
  if (iops !== undefined) throw new ServiceError('InvalidParameterCombination', `The parameter iops is not supported for ${type} volumes.`);
  return { iops: type === 'gp2' ? Math.min(16000, Math.max(100, size * 3)) : null, throughput: null };
}

export interface CreateStarted {
  /** The answer EC2 gives at once: state `creating`, KmsKeyId as the caller named it. */
  Volume: Omit<ReturnType<typeof volumeShape>, 'Attachments'>;
  /** Settles when the volume is `available` (with its final shape), or rejects (the volume is gone, and an event says why). */
  done: Promise<ReturnType<typeof volumeShape>>;
}

/** Everything CreateVolume checks before it records anything (also what a DryRun checks). */
export function planVolume(ctx: Ec2Context, req: CreateVolumeRequest) {
  const snap = req.SnapshotId ? getSnapshot(ctx, req.SnapshotId) : undefined;
  const size = req.Size ?? snap?.volume_size;
  if (size === undefined) throw Ec2Errors.missingParameter('The request must contain the parameter size or snapshotId');
  if (!Number.isInteger(size) || size < 1 || size > 16384)
    throw Ec2Errors.invalidParameter(`Volume of ${size}GiB is not in the supported size range 1-16384GiB. Choose a whole number of GiB in that range.`);
  if (snap && size < snap.volume_size)
    throw Ec2Errors.invalidParameter(`Volume of ${size}GiB is too small; minimum is ${snap.volume_size}GiB (the size of ${snap.snapshot_id}).`);
  const type = req.VolumeType ?? 'gp3';
  if (!(VOLUME_TYPES as readonly string[]).includes(type))
    throw Ec2Errors.invalidParameter(`Value (${type}) for parameter volumeType is invalid. Valid values: ${VOLUME_TYPES.join(', ')}.`);
  const perf = performance(type, size, req.Iops, req.Throughput);
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

  return { snap, size, type, perf, tags, encrypted };
}

/**
 * CreateVolume as EC2 does it: the request is checked and the volume
 * recorded as `creating` at once; the data key, the image and any snapshot
 * copy follow. A KMS refusal removes the volume (it never was), as EC2 does.
 */
export async function startCreateVolume(ctx: Ec2Context, req: CreateVolumeRequest): Promise<CreateStarted> {
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
  const { snap, size, type, perf, tags, encrypted } = planVolume(ctx, req);
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
    availability_zone: req.AvailabilityZone ?? `${ctx.region}a`,
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
      if (snap)
        await copyImage(ctx, snapshotFile(ctx.home, snap), snap.encrypted === 1, file, encrypted, snap.volume_size * GiB, (f) =>
          ctx.onProgress?.(`${id} from ${snap.snapshot_id}`, f),
        );
      row.state = 'available';
      ctx.registry.write(() => {
        ctx.registry.db.prepare('UPDATE volumes SET state = ?, kms_key_id = ? WHERE volume_id = ?').run(row.state, row.kms_key_id, id);
      });
      ctx.events.record(id, 'createVolume', 'available');
      return volumeShape(ctx, row);
    } catch (e) {
      // If the KMS refused (or the copy failed), no volume is created.
      fs.rmSync(file, { force: true });
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

/** Copy the payload of image `src` into the already-initialized image `dst`, re-encrypting as needed. */
export async function copyImage(
  ctx: Ec2Context,
  src: string,
  srcEncrypted: boolean,
  dst: string,
  dstEncrypted: boolean,
  sizeBytes: number,
  onProgress?: (f: number) => void,
): Promise<void> {
  const side = (file: string, enc: boolean) => {
    if (!enc) return { file, payloadOffset: 0, token: null };
    const h = readImageHeader(file);
    return { file, payloadOffset: h.payloadOffset, token: h.token };
  };
  await ctx.card.copyPayload(side(src, srcEncrypted), side(dst, dstEncrypted), sizeBytes, onProgress);
}

const FILTERS: FilterSpec<VolumeRow & { a?: AttachmentRow; instance: string }> = {
  'volume-id': (v) => v.volume_id,
  status: (v) => v.state,
  encrypted: (v) => String(v.encrypted === 1),
  size: (v) => String(v.size),
  'availability-zone': (v) => v.availability_zone,
  'volume-type': (v) => v.volume_type,
  'snapshot-id': (v) => v.snapshot_id,
  'kms-key-id': (v) => v.kms_key_id ?? '',
  'create-time': (v) => new Date(v.create_time).toISOString(),
  'multi-attach-enabled': () => 'false',
  'attachment.status': (v) => v.a?.state,
  'attachment.device': (v) => v.a && (v.a.device_name ?? v.a.device),
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
  if (req.VolumeIds?.length && req.MaxResults !== undefined) {
    throw new ServiceError(
      'InvalidParameterCombination',
      'The parameter volumeSet cannot be used with the parameter maxResults. Page through all volumes, or name the volumes without MaxResults.',
    );
  }
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
  const kept = applyFilters(current, req.Filters, FILTERS, (v) => v.volume_id, ctx.registry);
  const { page, NextToken } = paginate(kept, req, 'DescribeVolumes', [5, 500]);
  return { Volumes: page.map((v) => volumeShape(ctx, v, v.a)), ...(NextToken ? { NextToken } : {}) };
}

export function getVolume(ctx: Ec2Context, id: string): VolumeRow {
  if (!/^vol-[0-9a-f]{17}$/.test(id)) throw Ec2Errors.invalidId('Volume', id);
  const v = ctx.registry.getVolume(id);
  if (!v || v.state === 'deleted') throw Ec2Errors.volumeNotFound(id);
  return v;
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
  try {
    if (!lockExclusive(lock)) throw Ec2Errors.volumeInUse(v.volume_id, ' (a card is attaching it)');
    ctx.registry.write(() => ctx.registry.setVolumeState(v.volume_id, 'deleting'));
    fs.rmSync(imageFile(ctx.home, v), { force: true });
    ctx.registry.write(() => {
      ctx.registry.deleteVolume(v.volume_id);
      ctx.registry.deleteTagsOf(v.volume_id);
    });
  } finally {
    fs.closeSync(lock);
  }
  ctx.events.record(v.volume_id, 'deleteVolume', 'deleted');
  return {};
}

/** The lock a card holds while it serves the volume (delete takes it too). */
export function volumeLockPath(home: Home, volumeId: string): string {
  return path.join(home.runDir, `${volumeId}.lock`);
}
