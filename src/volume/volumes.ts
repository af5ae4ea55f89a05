import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Clock } from '../clock.js';
import { ServiceError } from '../errors.js';
import { ensureDir } from '../home.js';
import type { Home } from '../home.js';
import type { KmsClient } from '../kms/client/index.js';
import { Ec2Errors } from './errors.js';
import type { EventLog } from './events.js';
import { CIPHER, encodeHeader, PAYLOAD_OFFSET } from './luks2.js';
import type { KeyDigest, KmsvolToken } from './luks2.js';
import { GiB, SECTOR_SIZE } from './offsets.js';
import { newId } from './registry.js';
import type { AttachmentRow, Registry, VolumeRow } from './registry.js';

/** What the volume control plane needs around it. */
export interface Ec2Context {
  home: Home;
  registry: Registry;
  kms: KmsClient;
  events: EventLog;
  clock: Clock;
  region: string;
  account: string;
  /**
   * Computes the LUKS2 digest of the volume key named by a token. Provided by
   * the card layer: only it touches plaintext data keys.
   */
  keyDigest: (token: KmsvolToken) => Promise<KeyDigest>;
  /** Reconciles an attachment whose card may have died (provided by the card layer). */
  reconcile?: (v: VolumeRow, a: AttachmentRow) => Promise<void>;
}

export const EBS_CONTEXT_KEY = 'aws:ebs:id';
export const VOLUME_TYPES = ['gp2', 'gp3', 'io1', 'io2', 'st1', 'sc1', 'standard'] as const;

export interface CreateVolumeRequest {
  Size?: number;
  Encrypted?: boolean;
  KmsKeyId?: string;
  AvailabilityZone?: string;
  VolumeType?: string;
}

export function imagePath(home: Home, volumeId: string): string {
  return path.join(home.volumesDir, `${volumeId}.img`);
}

/** The registry keeps image paths relative to the home, so a home can be moved or restored elsewhere. */
export function imageFile(home: Home, v: VolumeRow): string {
  return path.resolve(home.root, v.image);
}

/** The EC2 Volume shape of describe-volumes and create-volume. */
export function volumeShape(v: VolumeRow, a?: AttachmentRow) {
  return {
    Attachments: a
      ? [{ AttachTime: new Date(a.attach_time), Device: a.device, InstanceId: 'local', State: a.state, VolumeId: v.volume_id, DeleteOnTermination: false, ...(a.loop_device ? { LoopDevice: a.loop_device } : {}) }]
      : [],
    AvailabilityZone: v.availability_zone,
    CreateTime: new Date(v.create_time),
    Encrypted: v.encrypted === 1,
    ...(v.kms_key_id ? { KmsKeyId: v.kms_key_id } : {}),
    Size: v.size,
    SnapshotId: v.snapshot_id,
    State: v.state,
    VolumeId: v.volume_id,
    ...(v.iops !== null ? { Iops: v.iops } : {}),
    VolumeType: v.volume_type,
    MultiAttachEnabled: false,
    ...(v.throughput !== null ? { Throughput: v.throughput } : {}),
  };
}

/** The KMS key for a new encrypted volume: the one asked for, the account default, or alias/aws/ebs. */
async function resolveKey(ctx: Ec2Context, requested: string | undefined): Promise<string> {
  const ref = requested ?? ctx.registry.getSetting('ebs_default_kms_key_id');
  if (ref) return ref;
  const managed = ctx.kms as KmsClient & { awsManagedKey?: (service: string, description: string) => string };
  if (managed.awsManagedKey) return managed.awsManagedKey('ebs', 'Default key that protects my EBS volumes when no other key is defined');
  return 'alias/aws/ebs';
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
      digest = await ctx.keyDigest(token);
    } catch (e) {
      // A key whose two halves are equal cannot be used for XTS: generate another.
      if ((e as Error).name === 'InvalidKey' && attempt < 3) continue;
      throw e;
    }
    const header = encodeHeader({ uuid: crypto.randomUUID(), label: volumeId, token, digest, payloadOffset: PAYLOAD_OFFSET, sectorSize: SECTOR_SIZE, cipher: CIPHER });
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

export async function createVolume(ctx: Ec2Context, req: CreateVolumeRequest) {
  const size = req.Size;
  if (size === undefined) throw Ec2Errors.missingParameter('The request must contain the parameter size');
  if (!Number.isInteger(size) || size < 1 || size > 16384) throw Ec2Errors.invalidParameter(`Volume of ${size}GiB is not in the supported size range 1-16384GiB. Choose a whole number of GiB in that range.`);
  const type = req.VolumeType ?? 'gp3';
  if (!(VOLUME_TYPES as readonly string[]).includes(type)) throw Ec2Errors.invalidParameter(`Value (${type}) for parameter volumeType is invalid. Valid values: ${VOLUME_TYPES.join(', ')}.`);
  const byDefault = ctx.registry.getSetting('ebs_encryption_by_default') === 'true';
  if (req.Encrypted === false && byDefault) {
    throw Ec2Errors.invalidParameter('Encryption by default is enabled for this account and Region; volumes are always encrypted. Disable it with disable-ebs-encryption-by-default first.');
  }
  const encrypted = req.Encrypted ?? byDefault;
  if (req.KmsKeyId && !encrypted) throw new ServiceError('InvalidParameterDependency', 'The parameter KmsKeyId requires the parameter Encrypted to be set.');

  ensureDir(ctx.home.volumesDir);
  const id = newId('vol');
  const file = imagePath(ctx.home, id);
  const now = ctx.clock.now().getTime();
  const row: VolumeRow = {
    volume_id: id,
    size,
    state: 'creating',
    encrypted: encrypted ? 1 : 0,
    kms_key_id: null,
    create_time: now,
    snapshot_id: '',
    availability_zone: req.AvailabilityZone ?? `${ctx.region}a`,
    volume_type: type,
    iops: type === 'gp3' ? 3000 : null,
    throughput: type === 'gp3' ? 125 : null,
    image: path.relative(ctx.home.root, file),
  };
  ctx.registry.write(() => ctx.registry.insertVolume(row));
  try {
    if (encrypted) {
      row.kms_key_id = await writeEncryptedImage(ctx, file, id, await resolveKey(ctx, req.KmsKeyId), size * GiB);
    } else {
      writeImageAtomically(file, undefined, size * GiB);
    }
    row.state = 'available';
    ctx.registry.write(() => {
      ctx.registry.db.prepare('UPDATE volumes SET state = ?, kms_key_id = ? WHERE volume_id = ?').run(row.state, row.kms_key_id, id);
    });
    ctx.events.record(id, 'createVolume', 'available');
    return { ...volumeShape(row), Tags: [] };
  } catch (e) {
    // If the KMS refused, no volume is created.
    fs.rmSync(file, { force: true });
    ctx.registry.write(() => ctx.registry.deleteVolume(id));
    ctx.events.record(id, 'createVolume', 'failed', `${(e as Error).name}: ${(e as Error).message}`);
    throw e;
  }
}

export interface Filter {
  Name: string;
  Values: string[];
}

const FILTERS: Record<string, (v: VolumeRow) => string> = {
  'volume-id': (v) => v.volume_id,
  status: (v) => v.state,
  encrypted: (v) => String(v.encrypted === 1),
  size: (v) => String(v.size),
  'availability-zone': (v) => v.availability_zone,
  'volume-type': (v) => v.volume_type,
  'snapshot-id': (v) => v.snapshot_id,
  'kms-key-id': (v) => v.kms_key_id ?? '',
};

export async function describeVolumes(ctx: Ec2Context, req: { VolumeIds?: string[]; Filters?: Filter[] }) {
  for (const f of req.Filters ?? []) {
    if (!FILTERS[f.Name]) throw Ec2Errors.invalidParameter(`The filter '${f.Name}' is invalid. Valid filters: ${Object.keys(FILTERS).join(', ')}.`);
  }
  let rows: VolumeRow[];
  if (req.VolumeIds?.length) {
    rows = req.VolumeIds.map((id) => {
      const v = ctx.registry.getVolume(id);
      if (!v || v.state === 'deleted') throw Ec2Errors.volumeNotFound(id);
      return v;
    });
  } else rows = ctx.registry.listVolumes();
  rows = rows.filter((v) => (req.Filters ?? []).every((f) => f.Values.includes(FILTERS[f.Name]!(v))));
  const out = [];
  for (const v of rows) {
    let a = ctx.registry.getAttachment(v.volume_id);
    if (a && ctx.reconcile) {
      await ctx.reconcile(v, a);
      a = ctx.registry.getAttachment(v.volume_id);
    }
    out.push(volumeShape(ctx.registry.getVolume(v.volume_id)!, a));
  }
  return { Volumes: out };
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
  ctx.registry.write(() => ctx.registry.setVolumeState(v.volume_id, 'deleting'));
  fs.rmSync(imageFile(ctx.home, v), { force: true });
  ctx.registry.write(() => ctx.registry.deleteVolume(v.volume_id));
  ctx.events.record(v.volume_id, 'deleteVolume', 'deleted');
  return {};
}
