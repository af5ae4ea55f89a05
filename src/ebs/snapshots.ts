import crypto from 'node:crypto';
import { BLOCK_SIZE } from '../volume/blocks.js';
import type { Ec2Context } from '../volume/context.js';
import { resolveKey } from '../volume/context.js';
import { encryptedHead } from '../volume/images.js';
import { PAYLOAD_OFFSET } from '../volume/luks2.js';
import type { SnapshotRow } from '../volume/registry.js';
import { newId } from '../volume/registry.js';
import { putTags, tagShape } from '../volume/tags.js';
import { EbsErrors, viaKms } from './errors.js';

/**
 * The snapshot side of the EBS direct APIs: StartSnapshot, CompleteSnapshot,
 * and looking a snapshot up (a pending one past its Timeout turns to error).
 * A snapshot written here is an EC2 snapshot like any other (DescribeSnapshots
 * lists it, CreateVolume makes a volume of it), with volume id vol-ffffffff
 * as EBS gives snapshots not taken from a volume.
 */
export const NO_VOLUME = 'vol-ffffffff';
/** StartSnapshot's Timeout: minutes, as the model's documentation bounds it; 60 unless given. */
const TIMEOUT = { min: 10, max: 4320, default: 60 };
/** Snapshots the API may have open (pending) at once per home. */
export const MAX_PENDING = 100;

export function snapshotFor(ctx: Ec2Context, id: unknown, member = 'SnapshotId'): SnapshotRow {
  if (typeof id !== 'string' || !/^snap-[0-9a-f]{17}$/.test(id))
    throw EbsErrors.validation('INVALID_SNAPSHOT_ID', `${member} '${String(id)}' is not a snapshot id.`);
  ctx.registry.write(() => ctx.registry.expireSnapshots(ctx.clock.now().getTime()));
  const s = ctx.registry.getSnapshot(id);
  if (!s) throw EbsErrors.notFound(`The snapshot '${id}' does not exist.`);
  return s;
}

export function needState(s: SnapshotRow, state: 'pending' | 'completed'): void {
  if (s.state !== state)
    throw EbsErrors.validation('INVALID_SNAPSHOT_ID', `The snapshot ${s.snapshot_id} is ${s.state}; this operation needs a ${state} snapshot.`);
}

/**
 * Precondition of PutSnapshotBlock and CompleteSnapshot: a pending snapshot that StartSnapshot began (it has a
 * deadline, complete_by), never one EC2 is still making (CreateSnapshot, CopySnapshot), which is pending too.
 * Called again inside the transaction that stores a block or completes the snapshot, so neither can land in a
 * snapshot that was completed (or timed out) meanwhile.
 */
export function needOpen(ctx: Ec2Context, snapshotId: string): SnapshotRow {
  const s = snapshotFor(ctx, snapshotId);
  needState(s, 'pending');
  if (s.complete_by === null)
    throw EbsErrors.validation(
      'INVALID_SNAPSHOT_ID',
      `The snapshot ${s.snapshot_id} is being made by EC2 (CreateSnapshot or CopySnapshot); the EBS direct APIs write only to snapshots begun with StartSnapshot.`,
    );
  return s;
}

export interface StartSnapshotRequest {
  VolumeSize?: number;
  ParentSnapshotId?: string;
  Tags?: { Key: string; Value: string }[];
  Description?: string;
  ClientToken?: string;
  Encrypted?: boolean;
  KmsKeyArn?: string;
  Timeout?: number;
}

function shape(ctx: Ec2Context, s: SnapshotRow) {
  return {
    Description: s.description,
    SnapshotId: s.snapshot_id,
    OwnerId: ctx.account,
    Status: s.state,
    StartTime: new Date(s.start_time),
    VolumeSize: s.volume_size,
    BlockSize: BLOCK_SIZE,
    Tags: tagShape(ctx.registry, s.snapshot_id),
    ...(s.parent_id ? { ParentSnapshotId: s.parent_id } : {}),
    ...(s.kms_key_id ? { KmsKeyArn: s.kms_key_id } : {}),
  };
}

export async function startSnapshot(ctx: Ec2Context, req: StartSnapshotRequest) {
  const size = req.VolumeSize;
  if (!Number.isInteger(size) || size! < 1 || size! > 65536)
    throw EbsErrors.validation('INVALID_VOLUME_SIZE', `VolumeSize ${String(size)} is not a size in GiB (1 to 65536).`);
  const timeout = req.Timeout ?? TIMEOUT.default;
  if (!Number.isInteger(timeout) || timeout < TIMEOUT.min || timeout > TIMEOUT.max)
    throw EbsErrors.validation('INVALID_PARAMETER_VALUE', `Timeout ${timeout} is not between ${TIMEOUT.min} and ${TIMEOUT.max} minutes.`);
  if (req.ClientToken) {
    const seen = ctx.registry.getClientToken(`ebs:${req.ClientToken}`);
    if (seen) return shape(ctx, snapshotFor(ctx, seen.resource_id));
  }
  if (req.ParentSnapshotId !== undefined && req.Encrypted !== undefined)
    throw EbsErrors.validation(
      'INVALID_PARAMETER_VALUE',
      "You can't specify Encrypted and ParentSnapshotId in the same request: a child snapshot has its parent's encryption.",
    );
  const parent = req.ParentSnapshotId ? snapshotFor(ctx, req.ParentSnapshotId, 'ParentSnapshotId') : undefined;
  if (parent) needState(parent, 'completed');
  if (parent && parent.volume_size > size!)
    throw EbsErrors.validation('INVALID_VOLUME_SIZE', `VolumeSize ${size} is smaller than the parent snapshot's ${parent.volume_size} GiB.`);
  if (req.KmsKeyArn && req.Encrypted !== true) throw EbsErrors.validation('INVALID_PARAMETER_VALUE', 'KmsKeyArn requires Encrypted to be true.');
  if (parent && req.KmsKeyArn && req.KmsKeyArn !== parent.kms_key_id)
    throw EbsErrors.validation(
      'INVALID_PARAMETER_VALUE',
      `A snapshot with a parent keeps its parent's key (${parent.kms_key_id ?? 'none'}); KmsKeyArn must be that key or absent.`,
    );
  if (parent && parent.encrypted === 0 && ctx.registry.getSetting('ebs_encryption_by_default') === 'true')
    throw EbsErrors.validation(
      'INVALID_PARAMETER_VALUE',
      `EBS encryption by default is enabled, so no unencrypted snapshot can be made, and a child of ${parent.snapshot_id} (unencrypted) would be one. Start a snapshot without ParentSnapshotId.`,
    );
  if (parent && parent.encrypted === 0 && req.Encrypted)
    throw EbsErrors.validation('INVALID_PARAMETER_VALUE', 'The parent snapshot is not encrypted; an encrypted child of it is not supported here.');
  const pending = ctx.registry.listSnapshots().filter((s) => s.state === 'pending' && s.complete_by != null);
  if (pending.length >= MAX_PENDING)
    throw EbsErrors.concurrentLimit(
      `You have ${pending.length} snapshots in progress through the EBS direct APIs, the most allowed at once. Complete some first.`,
    );
  const id = newId('snap');
  const now = ctx.clock.now().getTime();
  const byDefault = ctx.registry.getSetting('ebs_encryption_by_default') === 'true';
  const encrypted = parent ? parent.encrypted === 1 : req.Encrypted === true || byDefault;
  const row: SnapshotRow = {
    snapshot_id: id,
    volume_id: parent?.volume_id ?? NO_VOLUME,
    state: 'pending',
    progress: '',
    start_time: now,
    encrypted: encrypted ? 1 : 0,
    kms_key_id: parent?.kms_key_id ?? null,
    volume_size: size!,
    description: req.Description ?? '',
    image: '',
    parent_id: parent?.snapshot_id ?? null,
    header: parent?.header ?? null,
    payload_offset: parent?.payload_offset ?? 0,
    complete_by: now + timeout * 60_000,
    client_token: req.ClientToken ?? null,
  };
  if (encrypted && !parent) {
    // A new 64-byte data key from the KMS (context aws:ebs:id = the snapshot id), in a LUKS2 head as an image has it.
    const made = await viaKms(() => encryptedHead(ctx, id, resolveKey(ctx, req.KmsKeyArn)));
    row.header = made.head;
    row.kms_key_id = made.keyArn;
    row.payload_offset = PAYLOAD_OFFSET;
  }
  ctx.registry.write(() => {
    ctx.registry.insertSnapshot(row);
    if (parent) ctx.registry.copyBlockMap(parent.snapshot_id, id);
    putTags(ctx.registry, id, req.Tags ?? []);
    if (req.ClientToken) ctx.registry.putClientToken(`ebs:${req.ClientToken}`, 'StartSnapshot', JSON.stringify(req), id);
  });
  return shape(ctx, row);
}

export interface CompleteSnapshotRequest {
  SnapshotId?: string;
  ChangedBlocksCount?: number;
  Checksum?: string;
  ChecksumAlgorithm?: string;
  ChecksumAggregationMethod?: string;
}

/** The LINEAR aggregate: SHA-256 over the blocks' raw SHA-256 digests in block order (as coldsnap computes it). */
export function linearChecksum(checksums: string[]): string {
  const h = crypto.createHash('sha256');
  for (const c of checksums) h.update(Buffer.from(c, 'base64'));
  return h.digest('base64');
}

export function completeSnapshot(ctx: Ec2Context, req: CompleteSnapshotRequest) {
  const first = snapshotFor(ctx, req.SnapshotId);
  if (first.state === 'completed') return { Status: 'completed' };
  // The count, the aggregate and the state change in one write transaction: no block put lands between them.
  const s = ctx.registry.write(() => {
    const s = needOpen(ctx, first.snapshot_id);
    const own = ctx.registry.blockMap(s.snapshot_id).filter((b) => b.own === 1);
    if (req.ChangedBlocksCount !== own.length)
      throw EbsErrors.validation(
        'INVALID_PARAMETER_VALUE',
        `ChangedBlocksCount is ${req.ChangedBlocksCount}, but ${own.length} blocks were written to ${s.snapshot_id}.`,
      );
    if (req.Checksum !== undefined) {
      if (req.ChecksumAlgorithm !== 'SHA256' || req.ChecksumAggregationMethod !== 'LINEAR')
        throw EbsErrors.validation('INVALID_PARAMETER_VALUE', 'A Checksum needs ChecksumAlgorithm SHA256 and ChecksumAggregationMethod LINEAR.');
      if (linearChecksum(own.map((b) => b.checksum ?? '')) !== req.Checksum)
        throw EbsErrors.validation('INVALID_PARAMETER_VALUE', `The aggregate checksum does not match the blocks written to ${s.snapshot_id}.`);
    }
    ctx.registry.updateSnapshot(s.snapshot_id, { state: 'completed', progress: '100%', complete_by: null });
    return s;
  });
  ctx.events.record(s.snapshot_id, 'completeSnapshot', 'succeeded');
  return { Status: 'completed' };
}
