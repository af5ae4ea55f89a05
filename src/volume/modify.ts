import fs from 'node:fs';
import { DAY_MS } from '../clock.js';
import { ServiceError } from '../errors.js';
import type { Ec2Context } from './context.js';
import { getVolume, refuseMultiAttach } from './context.js';
import { Ec2Errors } from './errors.js';
import type { Filter } from './filters.js';
import { applyFilters, paginate } from './filters.js';
import { imageFile, sizeImage } from './images.js';
import { checkSize, checkVolumeType, performance } from './limits.js';
import { readImageHeader } from './luks2.js';
import { GiB } from './offsets.js';
import type { ModificationRow } from './registry.js';

/**
 * EBS Elastic Volumes: ModifyVolume grows a volume (and changes its type,
 * IOPS and throughput), also while it is attached. The image is extended
 * (sparse); its LUKS2 segment is `dynamic`, so it spans the larger payload;
 * an attached volume's card serves the larger file and refreshes its loop
 * device, after which `resize2fs` grows the filesystem. Shrinking is refused,
 * as EBS refuses it.
 */
export interface ModifyVolumeRequest {
  VolumeId?: string;
  Size?: number;
  VolumeType?: string;
  Iops?: number;
  Throughput?: number;
  MultiAttachEnabled?: boolean;
}

export function modificationShape(m: ModificationRow) {
  return {
    VolumeId: m.volume_id,
    ModificationState: m.state,
    ...(m.status_message ? { StatusMessage: m.status_message } : {}),
    TargetSize: m.target_size,
    ...(m.target_iops !== null ? { TargetIops: m.target_iops } : {}),
    TargetVolumeType: m.target_type,
    ...(m.target_throughput !== null ? { TargetThroughput: m.target_throughput } : {}),
    TargetMultiAttachEnabled: false,
    OriginalSize: m.original_size,
    ...(m.original_iops !== null ? { OriginalIops: m.original_iops } : {}),
    OriginalVolumeType: m.original_type,
    ...(m.original_throughput !== null ? { OriginalThroughput: m.original_throughput } : {}),
    OriginalMultiAttachEnabled: false,
    Progress: m.progress,
    StartTime: new Date(m.start_time),
    ...(m.end_time !== null ? { EndTime: new Date(m.end_time) } : {}),
  };
}

/**
 * AWS's rate for Elastic Volumes (API reference, ModifyVolume, since January
 * 2026; before, one modification every 6 hours): a volume may be modified up
 * to 4 times in a rolling 24 hours, each once the one before is completed.
 * The start times of a volume's modifications in the window are kept in the
 * registry's settings; the clock is the context's (KMSVOL_NOW moves it).
 */
export const MODIFICATIONS_PER_WINDOW = 4;
export const MODIFICATION_WINDOW_MS = DAY_MS;
const startsKey = (volumeId: string) => `modification_starts:${volumeId}`;

function recentStarts(ctx: Ec2Context, volumeId: string, now: number): number[] {
  const raw = ctx.registry.getSetting(startsKey(volumeId));
  const all = raw ? (JSON.parse(raw) as number[]) : [];
  return all.filter((t) => t > now - MODIFICATION_WINDOW_MS && t <= now).sort((a, b) => a - b);
}

/** Precondition: fewer than MODIFICATIONS_PER_WINDOW modifications of the volume started in the last 24 hours; otherwise VolumeModificationRateExceeded naming when it may be modified again. */
function checkModificationRate(ctx: Ec2Context, volumeId: string, now: number): void {
  const starts = recentStarts(ctx, volumeId, now);
  if (starts.length < MODIFICATIONS_PER_WINDOW) return;
  const next = new Date(starts[starts.length - MODIFICATIONS_PER_WINDOW]! + MODIFICATION_WINDOW_MS);
  throw new ServiceError(
    'VolumeModificationRateExceeded',
    `You've reached the maximum modification rate per volume limit: ${volumeId} was modified ${starts.length} times in the last 24 hours (at most ${MODIFICATIONS_PER_WINDOW}). Wait until ${next.toISOString()} to modify it again.`,
  );
}

/** What ModifyVolume checks before it changes anything (also what a DryRun checks); the modification it would make. */
export function planModification(ctx: Ec2Context, req: ModifyVolumeRequest): ModificationRow {
  if (!req.VolumeId) throw Ec2Errors.missingParameter('The request must contain the parameter VolumeId');
  const v = getVolume(ctx, req.VolumeId);
  if (v.state !== 'available' && v.state !== 'in-use')
    throw Ec2Errors.incorrectState(`The volume '${v.volume_id}' is '${v.state}'; only an available or in-use volume can be modified.`);
  refuseMultiAttach(req);
  const prev = ctx.registry.getModification(v.volume_id);
  if (prev && (prev.state === 'modifying' || prev.state === 'optimizing')) {
    throw new ServiceError(
      'IncorrectModificationState',
      `Volume ${v.volume_id} is already being modified (${prev.state}); wait until the modification is completed.`,
    );
  }
  checkModificationRate(ctx, v.volume_id, ctx.clock.now().getTime());
  const size = req.Size ?? v.size;
  const type = checkVolumeType(req.VolumeType ?? v.volume_type);
  checkSize(type, size);
  if (size < v.size)
    throw Ec2Errors.invalidParameter(`New size cannot be smaller than existing size: ${v.volume_id} is ${v.size}GiB; ${size}GiB was asked. Volumes only grow.`);
  // A type change takes the new type's defaults unless IOPS or throughput are given.
  const sameType = type === v.volume_type;
  const perf = performance(
    type,
    size,
    req.Iops ?? (sameType && (type === 'io1' || type === 'io2' || type === 'gp3') ? (v.iops ?? undefined) : undefined),
    req.Throughput ?? (sameType && type === 'gp3' ? (v.throughput ?? undefined) : undefined),
  );
  if (size === v.size && type === v.volume_type && perf.iops === v.iops && perf.throughput === v.throughput) {
    throw Ec2Errors.invalidParameter(`The modification of ${v.volume_id} changes nothing: give a larger Size, or another VolumeType, Iops or Throughput.`);
  }
  return {
    volume_id: v.volume_id,
    state: 'modifying',
    status_message: '',
    progress: 0,
    start_time: ctx.clock.now().getTime(),
    end_time: null,
    original_size: v.size,
    target_size: size,
    original_type: v.volume_type,
    target_type: type,
    original_iops: v.iops,
    target_iops: perf.iops,
    original_throughput: v.throughput,
    target_throughput: perf.throughput,
  };
}

/** ModifyVolume as EC2 does it: `modifying` at once; the image and (if attached) the card grow after. */
export function startModifyVolume(ctx: Ec2Context, req: ModifyVolumeRequest) {
  // Planned inside the write: another process's ModifyVolume of the volume is wholly before this one or after it.
  const m = ctx.registry.write(() => {
    const m = planModification(ctx, req);
    ctx.registry.putModification(m);
    const starts = [...recentStarts(ctx, m.volume_id, m.start_time), m.start_time];
    ctx.registry.setSetting(startsKey(m.volume_id), JSON.stringify(starts));
    // Volumes whose last modification left the window (deleted ones included) need no record.
    ctx.registry.dropTimeSettingsBefore(startsKey(''), m.start_time - MODIFICATION_WINDOW_MS);
    return m;
  });
  const first = modificationShape(m);
  const done = (async () => {
    try {
      if (m.target_size > m.original_size) await grow(ctx, m.volume_id, m.target_size);
      ctx.registry.write(() => {
        ctx.registry.updateVolume(m.volume_id, { size: m.target_size, volume_type: m.target_type, iops: m.target_iops, throughput: m.target_throughput });
        ctx.registry.putModification({ ...m, state: 'completed', progress: 100, end_time: ctx.clock.now().getTime() });
      });
      ctx.events.record(
        m.volume_id,
        'modifyVolume',
        'completed',
        `size ${m.original_size}GiB -> ${m.target_size}GiB, type ${m.original_type} -> ${m.target_type}`,
      );
      return modificationShape(ctx.registry.getModification(m.volume_id)!);
    } catch (e) {
      const why = `${(e as Error).name}: ${(e as Error).message}`;
      ctx.registry.write(() => ctx.registry.putModification({ ...m, state: 'failed', status_message: why, end_time: ctx.clock.now().getTime() }));
      ctx.events.record(m.volume_id, 'modifyVolume', 'failed', why);
      throw e;
    }
  })();
  return { VolumeModification: first, done };
}

/** ModifyVolume, waiting until it is completed (kmsvol's CLI and API wait). */
export async function modifyVolume(ctx: Ec2Context, req: ModifyVolumeRequest) {
  return startModifyVolume(ctx, req).done;
}

/** Extend the image's payload to `sizeGiB` (sparse), then tell the card of an attached volume. */
async function grow(ctx: Ec2Context, volumeId: string, sizeGiB: number): Promise<void> {
  const v = getVolume(ctx, volumeId);
  const file = imageFile(ctx.home, v);
  const payloadOffset = v.encrypted ? readImageHeader(file).payloadOffset : 0;
  const want = payloadOffset + sizeGiB * GiB;
  if (fs.statSync(file).size < want) {
    const fd = fs.openSync(file, 'r+');
    try {
      sizeImage(fd, want, file);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
  const a = ctx.registry.getAttachment(volumeId);
  if (a && ctx.reconcile) await ctx.reconcile(v, a);
  const live = ctx.registry.getAttachment(volumeId);
  if (live?.state === 'attached') await ctx.card.resize(volumeId, sizeGiB * GiB);
  else if (live) throw Ec2Errors.incorrectState(`Volume ${volumeId} is ${live.state}; modify it once it is attached or detached.`);
}

const FILTERS = {
  'volume-id': (m: ModificationRow) => m.volume_id,
  'modification-state': (m: ModificationRow) => m.state,
  'target-size': (m: ModificationRow) => String(m.target_size),
  'target-volume-type': (m: ModificationRow) => m.target_type,
  'original-size': (m: ModificationRow) => String(m.original_size),
  'original-volume-type': (m: ModificationRow) => m.original_type,
  'start-time': (m: ModificationRow) => new Date(m.start_time).toISOString(),
};

export function describeVolumesModifications(ctx: Ec2Context, req: { VolumeIds?: string[]; Filters?: Filter[]; MaxResults?: number; NextToken?: string }) {
  let rows: ModificationRow[];
  if (req.VolumeIds?.length) {
    rows = req.VolumeIds.map((id) => {
      getVolume(ctx, id);
      const m = ctx.registry.getModification(id);
      if (!m) throw new ServiceError('InvalidVolumeModification.NotFound', `Modification for volume '${id}' does not exist.`);
      return m;
    });
  } else rows = ctx.registry.listModifications().filter((m) => ctx.registry.getVolume(m.volume_id));
  const kept = applyFilters(rows, req.Filters, FILTERS, (m) => m.volume_id, ctx.registry);
  const { page, NextToken } = paginate(kept, req, 'DescribeVolumesModifications', (m) => [m.start_time, m.volume_id]);
  return { VolumesModifications: page.map(modificationShape), ...(NextToken ? { NextToken } : {}) };
}

/** DescribeVolumeStatus: a volume whose card serves it (or that is available) is ok; a failed last attach is reported as an event. */
export function describeVolumeStatus(ctx: Ec2Context, req: { VolumeIds?: string[]; Filters?: Filter[]; MaxResults?: number; NextToken?: string }) {
  const vols = req.VolumeIds?.length ? req.VolumeIds.map((id) => getVolume(ctx, id)) : ctx.registry.listVolumes().filter((v) => v.state !== 'creating');
  const items = vols.map((v) => ({
    v,
    item: {
      Actions: [],
      AvailabilityZone: v.availability_zone,
      Events: [],
      VolumeId: v.volume_id,
      VolumeStatus: {
        Details: [
          { Name: 'io-enabled', Status: 'passed' },
          { Name: 'io-performance', Status: 'not-applicable' },
        ],
        Status: 'ok',
      },
      AttachmentStatuses: [],
    },
  }));
  const spec = {
    'volume-status.status': () => 'ok',
    'volume-status.details-name': () => ['io-enabled', 'io-performance'],
    'availability-zone': (x: (typeof items)[number]) => x.v.availability_zone,
  };
  const kept = applyFilters(items, req.Filters, spec, (x) => x.v.volume_id, ctx.registry);
  const { page, NextToken } = paginate(kept, req, 'DescribeVolumeStatus', (x) => [x.v.create_time, x.v.volume_id]);
  return { VolumeStatuses: page.map((x) => x.item), ...(NextToken ? { NextToken } : {}) };
}

export function describeVolumeAttribute(ctx: Ec2Context, req: { VolumeId?: string; Attribute?: string }) {
  if (!req.VolumeId) throw Ec2Errors.missingParameter('The request must contain the parameter VolumeId');
  if (!req.Attribute) throw Ec2Errors.missingParameter('The request must contain the parameter attribute');
  const v = getVolume(ctx, req.VolumeId);
  if (req.Attribute === 'autoEnableIO') return { AutoEnableIO: { Value: false }, VolumeId: v.volume_id };
  if (req.Attribute === 'productCodes') return { ProductCodes: [], VolumeId: v.volume_id };
  throw Ec2Errors.invalidParameter(`Value (${req.Attribute}) for parameter attribute is invalid. Valid values: autoEnableIO, productCodes.`);
}
