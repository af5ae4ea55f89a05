import { ServiceError } from '../errors.js';
import { dropFailedSnapshot, dropSnapshot, latestSnapshot, sharesDataKey, snapshotBlocks, withScratch, withSnapshotImage } from './blockmap.js';
import type { Changes } from './changes.js';
import { beginChanges } from './changes.js';
import type { Ec2Context } from './context.js';
import { getSnapshot, getVolume, resolveKey } from './context.js';
import { Ec2Errors } from './errors.js';
import type { Filter, FilterSpec } from './filters.js';
import { describePage, refusePagedIds, sharedFilters } from './filters.js';
import { copyImage, imageFile, writeEncryptedImage } from './images.js';
import { GiB } from './offsets.js';
import type { SnapshotRow } from './registry.js';
import { newId } from './registry.js';
import type { Tag, TagSpecification } from './tags.js';
import { putTags, tagShape, tagsFor } from './tags.js';
import { checkText } from './text.js';

// What callers outside volume/ have long imported from here (the lookups now live in context.ts).
export { getSnapshot } from './context.js';

/**
 * Snapshots, EBS style: a point-in-time block map over the content-addressed
 * block store (blockmap.ts), whose parent is the volume's previous snapshot.
 * A snapshot of an encrypted volume keeps the volume's header, so its wrapped
 * data key and context (aws:ebs:id = the volume id), and its blocks are the
 * image's ciphertext. copy-snapshot gives the copy a new data key (context:
 * the new snapshot id) and re-encrypts every written sector into a new map.
 */
export function snapshotShape(ctx: Ec2Context, s: SnapshotRow) {
  return {
    Description: s.description,
    Encrypted: s.encrypted === 1,
    ...(s.kms_key_id ? { KmsKeyId: s.kms_key_id } : {}),
    OwnerId: ctx.account,
    Progress: s.progress,
    SnapshotId: s.snapshot_id,
    StartTime: new Date(s.start_time),
    State: s.state,
    VolumeId: s.volume_id,
    VolumeSize: s.volume_size,
    Tags: tagShape(ctx.registry, s.snapshot_id),
  };
}

export function newSnapshotRow(ctx: Ec2Context, volumeId: string, volumeSize: number, encrypted: boolean, description: string): SnapshotRow {
  checkText('Description', description);
  const id = newId('snap');
  return {
    snapshot_id: id,
    volume_id: volumeId,
    state: 'pending',
    progress: '',
    start_time: ctx.clock.now().getTime(),
    encrypted: encrypted ? 1 : 0,
    kms_key_id: null,
    volume_size: volumeSize,
    description,
    image: '',
    parent_id: null,
  };
}

export interface SnapshotStarted {
  /** The answer EC2 gives at once: state `pending`, Progress "". */
  Snapshot: ReturnType<typeof snapshotShape>;
  /** Settles when the snapshot is `completed`, or rejects (the snapshot is gone, and an event says why). */
  done: Promise<ReturnType<typeof snapshotShape>>;
}

/** Record a new snapshot as `pending` and run `make` for it: on failure nothing half-made is left, and the failure is an event. */
function build(ctx: Ec2Context, row: SnapshotRow, tags: Tag[], event: string, make: () => Promise<unknown>): SnapshotStarted {
  ctx.registry.write(() => {
    ctx.registry.insertSnapshot(row);
    putTags(ctx.registry, row.snapshot_id, tags);
  });
  const first = snapshotShape(ctx, row);
  const done = (async () => {
    try {
      const detail = await make();
      ctx.registry.write(() => ctx.registry.updateSnapshot(row.snapshot_id, { state: 'completed', progress: '100%', kms_key_id: row.kms_key_id }));
      ctx.events.record(row.snapshot_id, event, 'succeeded', typeof detail === 'string' ? detail : ''); // what make says it did
      return snapshotShape(ctx, getSnapshot(ctx, row.snapshot_id));
    } catch (e) {
      dropFailedSnapshot(ctx, row.snapshot_id);
      ctx.events.record(row.snapshot_id, event, 'failed', `${(e as Error).name}: ${(e as Error).message}`);
      throw e;
    }
  })();
  return { Snapshot: first, done };
}

/** CreateSnapshot as EC2 does it: `pending` at once, the point-in-time copy after. */
export function startCreateSnapshot(
  ctx: Ec2Context,
  req: { VolumeId?: string; Description?: string; TagSpecifications?: TagSpecification[] },
): SnapshotStarted {
  if (!req.VolumeId) throw Ec2Errors.missingParameter('The request must contain the parameter VolumeId');
  const v = getVolume(ctx, req.VolumeId);
  if (v.state === 'creating') throw Ec2Errors.incorrectState(`Volume ${v.volume_id} is still being created; snapshot it once it is available.`);
  const tags = tagsFor(req.TagSpecifications, 'snapshot');
  const row = newSnapshotRow(ctx, v.volume_id, v.size, v.encrypted === 1, req.Description ?? '');
  row.kms_key_id = v.kms_key_id;
  row.parent_id = latestSnapshot(ctx, v.volume_id)?.snapshot_id ?? null;
  // The blocks written since the volume's last snapshot (volume/changes.ts), taken while quiesced: only those are read,
  // the rest are the base's. The take is committed once the snapshot is recorded completed, so the base advances.
  let changes: Changes | undefined;
  const started = build(ctx, row, tags, 'createSnapshot', async () => {
    // Point in time even while attached: the card quiesces writes (and freezes a mounted filesystem) during the copy.
    // An attach in progress is waited for (its card is not serving yet, so it cannot be quiesced).
    let a = ctx.registry.getAttachment(v.volume_id);
    for (const end = Date.now() + 60_000; a?.state === 'attaching' && Date.now() < end; a = ctx.registry.getAttachment(v.volume_id)) {
      await new Promise((r) => setTimeout(r, 100));
    }
    if (a && ctx.reconcile) await ctx.reconcile(v, a);
    const thaw = ctx.registry.getAttachment(v.volume_id) ? await ctx.card.quiesce(v.volume_id) : undefined;
    try {
      changes = await beginChanges(ctx, v.volume_id);
      const image = { file: imageFile(ctx.home, v), encrypted: v.encrypted === 1, sizeBytes: v.size * GiB };
      // The base's blocks stand for unchanged ones only under the same data key: a snapshot of this very volume,
      // not the snapshot it was created from (re-encrypted under its own key) nor a copy.
      const base = changes.base ? ctx.registry.getSnapshot(changes.base) : undefined;
      const incremental = changes.changed !== 'all' && base?.state === 'completed' && sharesDataKey(base, image);
      const read = await snapshotBlocks(ctx, row.snapshot_id, image, incremental ? { changed: changes.changed, parent: base.snapshot_id } : {});
      return incremental ? `incremental from ${base.snapshot_id}: ${read} blocks read` : `full: ${read} blocks read`;
    } finally {
      await thaw?.();
    }
  });
  const done = started.done.then(
    async (s) => {
      // A commit that fails leaves the old base and its bits (a superset): the next snapshot reads more, never less.
      await changes?.commit(row.snapshot_id).catch((e: Error) => ctx.events.record(row.snapshot_id, 'createSnapshot', 'base not advanced', e.message));
      return s;
    },
    async (e) => {
      await changes?.abort().catch(() => undefined);
      throw e;
    },
  );
  return { Snapshot: started.Snapshot, done };
}

/** CreateSnapshot, waiting until it is completed (the TypeScript API and kmsvol's CLI wait). */
export async function createSnapshot(ctx: Ec2Context, req: { VolumeId?: string; Description?: string; TagSpecifications?: TagSpecification[] }) {
  return startCreateSnapshot(ctx, req).done;
}

export interface CopySnapshotRequest {
  SourceSnapshotId?: string;
  SourceRegion?: string;
  Encrypted?: boolean;
  KmsKeyId?: string;
  Description?: string;
  TagSpecifications?: TagSpecification[];
}

/** CopySnapshot as EC2 does it: the new snapshot is `pending` at once; the re-encrypting copy follows. */
export function startCopySnapshot(ctx: Ec2Context, req: CopySnapshotRequest): SnapshotStarted {
  if (!req.SourceSnapshotId) throw Ec2Errors.missingParameter('The request must contain the parameter SourceSnapshotId');
  const src = getSnapshot(ctx, req.SourceSnapshotId);
  if (src.state !== 'completed')
    throw Ec2Errors.incorrectState(`Snapshot ${src.snapshot_id} is in state ${src.state}; only completed snapshots can be copied.`);
  if (src.encrypted && req.Encrypted === false) {
    throw new ServiceError(
      'InvalidParameterCombination',
      `Snapshot ${src.snapshot_id} is encrypted; an encrypted snapshot cannot be copied to an unencrypted snapshot.`,
    );
  }
  const byDefault = ctx.registry.getSetting('ebs_encryption_by_default') === 'true';
  const encrypted = src.encrypted === 1 || req.Encrypted === true || byDefault;
  if (req.KmsKeyId === '')
    throw Ec2Errors.invalidParameter(
      "Value ('') for parameter KmsKeyId is invalid. Name a key by id, ARN or alias, or leave the parameter out for the default key.",
    );
  if (req.KmsKeyId && !encrypted) throw new ServiceError('InvalidParameterDependency', 'The parameter KmsKeyId requires the parameter Encrypted to be set.');
  if (req.SourceRegion !== undefined && req.SourceRegion !== ctx.region) {
    throw Ec2Errors.invalidParameter(`Snapshots are copied within region ${ctx.region} here; SourceRegion ${req.SourceRegion} is not this region.`);
  }
  const tags = tagsFor(req.TagSpecifications, 'snapshot');
  const row = newSnapshotRow(
    ctx,
    src.volume_id,
    src.volume_size,
    encrypted,
    req.Description ?? `Copied for DestinationRegion ${ctx.region} from SourceSnapshotId ${src.snapshot_id}`,
  );
  return build(ctx, row, tags, 'copySnapshot', async () => {
    // An unencrypted copy shares every block of its source.
    if (!encrypted) return ctx.registry.write(() => ctx.registry.copyBlockMap(src.snapshot_id, row.snapshot_id));
    // A new data key under the chosen key, context aws:ebs:id = the new snapshot id; every written sector re-encrypted.
    const keyRef = req.KmsKeyId ?? src.kms_key_id ?? resolveKey(ctx, undefined);
    await withSnapshotImage(ctx, src, (from) =>
      withScratch(ctx, row.snapshot_id, async (file) => {
        row.kms_key_id = await writeEncryptedImage(ctx, file, row.snapshot_id, keyRef, src.volume_size * GiB);
        await copy(from, file);
        await snapshotBlocks(ctx, row.snapshot_id, { file, encrypted: true, sizeBytes: src.volume_size * GiB });
      }),
    );
  });
  function copy(from: string, file: string) {
    let shown = 0;
    return copyImage(ctx, from, src.encrypted === 1, file, true, src.volume_size * GiB, (f) => {
      ctx.onProgress?.(`${row.snapshot_id} from ${src.snapshot_id}`, f);
      const pct = Math.floor(f * 100);
      if (pct >= shown + 10 && pct < 100) {
        shown = pct;
        ctx.registry.write(() => ctx.registry.updateSnapshot(row.snapshot_id, { progress: `${pct}%` }));
      }
    });
  }
}

/** CopySnapshot, waiting until the copy is completed (the TypeScript API and kmsvol's CLI wait). */
export async function copySnapshot(ctx: Ec2Context, req: CopySnapshotRequest) {
  return startCopySnapshot(ctx, req).done;
}

const FILTERS: FilterSpec<SnapshotRow> = {
  'snapshot-id': (s) => s.snapshot_id,
  ...sharedFilters(),
  description: (s) => s.description,
  progress: (s) => s.progress,
  'volume-size': (s) => String(s.volume_size),
  'start-time': (s) => new Date(s.start_time).toISOString(),
};

export interface DescribeSnapshotsRequest {
  SnapshotIds?: string[];
  OwnerIds?: string[];
  Filters?: Filter[];
  MaxResults?: number;
  NextToken?: string;
}

export function describeSnapshots(ctx: Ec2Context, req: DescribeSnapshotsRequest) {
  refusePagedIds(req.SnapshotIds, req, 'snapshotSet', 'snapshots');
  ctx.registry.write(() => ctx.registry.expireSnapshots(ctx.clock.now().getTime()));
  let rows = req.SnapshotIds?.length ? req.SnapshotIds.map((id) => getSnapshot(ctx, id)) : ctx.registry.listSnapshots();
  // Every snapshot here is owned by this account ('self' or its id); other owners have none.
  if (req.OwnerIds?.length && !req.OwnerIds.some((o) => o === 'self' || o === ctx.account)) rows = [];
  const { page, NextToken } = describePage(rows, req, {
    operation: 'DescribeSnapshots',
    spec: FILTERS,
    idOf: (s) => s.snapshot_id,
    keyOf: (s) => [s.start_time, s.snapshot_id],
    registry: ctx.registry,
  });
  return { Snapshots: page.map((s) => snapshotShape(ctx, s)), ...(NextToken ? { NextToken } : {}) };
}

export function deleteSnapshot(ctx: Ec2Context, req: { SnapshotId?: string }) {
  if (!req.SnapshotId) throw Ec2Errors.missingParameter('The request must contain the parameter SnapshotId');
  const s = getSnapshot(ctx, req.SnapshotId);
  if (s.state === 'pending') throw Ec2Errors.incorrectState(`Snapshot ${s.snapshot_id} is still pending; delete it once it is completed.`);
  const using = ctx.registry.listVolumes().find((v) => v.snapshot_id === s.snapshot_id && v.state === 'creating');
  if (using)
    throw new ServiceError('InvalidSnapshot.InUse', `The snapshot ${s.snapshot_id} is in use by volume ${using.volume_id}, which is being created from it.`);
  dropSnapshot(ctx, s.snapshot_id);
  ctx.events.record(s.snapshot_id, 'deleteSnapshot', 'deleted');
  return {};
}
