import { ServiceError } from '../errors.js';
import { Ec2Errors } from './errors.js';

/**
 * AWS's limits for each EBS volume type, in one table (Amazon EBS volume
 * types, as of the 2025 gp3 update: gp3 to 64 TiB, 80,000 IOPS and
 * 2,000 MiB/s; io2 Block Express to 64 TiB and 256,000 IOPS). CreateVolume
 * and ModifyVolume check sizes, IOPS and throughput here, and take their
 * defaults from here. botocore's model still documents the older gp3 ranges
 * (3,000-16,000 IOPS, 125-1,000 MiB/s, 16 TiB); AWS's service takes these.
 */
export const VOLUME_TYPES = ['gp2', 'gp3', 'io1', 'io2', 'st1', 'sc1', 'standard'] as const;
export type VolumeType = (typeof VOLUME_TYPES)[number];

/** What CreateVolume makes when the request names no VolumeType (EC2's documented default). */
export const DEFAULT_VOLUME_TYPE: VolumeType = 'gp2';

interface Limits {
  /** GiB */
  size: readonly [number, number];
  /** Provisioned IOPS (gp3, io1, io2): range, and the most per GiB. */
  iops?: { range: readonly [number, number]; perGiB: number; default?: number };
  /** Provisioned throughput in MiB/s (gp3): range, and the most per provisioned IOPS. */
  throughput?: { range: readonly [number, number]; perIops: number; default: number };
}

export const VOLUME_LIMITS: Readonly<Record<VolumeType, Limits>> = {
  gp2: { size: [1, 16384] },
  gp3: {
    size: [1, 65536],
    iops: { range: [3000, 80000], perGiB: 500, default: 3000 },
    throughput: { range: [125, 2000], perIops: 0.25, default: 125 },
  },
  io1: { size: [4, 16384], iops: { range: [100, 64000], perGiB: 50 } },
  io2: { size: [4, 65536], iops: { range: [100, 256000], perGiB: 1000 } },
  st1: { size: [125, 16384] },
  sc1: { size: [125, 16384] },
  standard: { size: [1, 1024] },
};

const bad = (m: string) => Ec2Errors.invalidParameter(m);

/** Precondition: `type` is one of EC2's volume types; otherwise InvalidParameterValue naming them. */
export function checkVolumeType(type: string): VolumeType {
  if (!(VOLUME_TYPES as readonly string[]).includes(type))
    throw bad(`Value (${type}) for parameter volumeType is invalid. Valid values: ${VOLUME_TYPES.join(', ')}.`);
  return type as VolumeType;
}

/** Precondition: `size` GiB is within the type's range. */
export function checkSize(type: VolumeType, size: number): void {
  const [lo, hi] = VOLUME_LIMITS[type].size;
  if (!Number.isInteger(size) || size < lo || size > hi)
    throw bad(`Volume of ${size}GiB is not in the supported size range ${lo}-${hi}GiB for ${type} volumes. Choose a whole number of GiB in that range.`);
}

/** Iops and Throughput as EC2 checks them for each volume type; the defaults EC2 gives (gp3: 3000 IOPS and 125 MiB/s; gp2: 3 IOPS per GiB, 100-16,000). */
export function performance(
  type: VolumeType,
  size: number,
  iops: number | undefined,
  throughput: number | undefined,
): { iops: number | null; throughput: number | null } {
  const l = VOLUME_LIMITS[type];
  if (throughput !== undefined && !l.throughput)
    throw new ServiceError('InvalidParameterCombination', `The parameter throughput is not supported for ${type} volumes; only gp3 volumes take a throughput.`);
  if (!l.iops) {
    if (iops !== undefined) throw new ServiceError('InvalidParameterCombination', `The parameter iops is not supported for ${type} volumes.`);
    return { iops: type === 'gp2' ? Math.min(16000, Math.max(100, size * 3)) : null, throughput: null };
  }
  const i = iops ?? l.iops.default;
  if (i === undefined) throw Ec2Errors.missingParameter(`The parameter iops must be specified for ${type} volumes.`);
  const [lo, hi] = l.iops.range;
  if (!Number.isInteger(i) || i < lo || i > hi) throw bad(`Iops (${i}) for ${type} volumes must be ${lo}-${hi}.`);
  // gp3's baseline 3,000 IOPS comes with any size; beyond it, at most perGiB per GiB.
  if (i > Math.max(l.iops.default ?? 0, size * l.iops.perGiB)) throw bad(`Iops to volume size ratio of ${i / size} is too high; maximum is ${l.iops.perGiB}.`);
  if (!l.throughput) return { iops: i, throughput: null };
  const t = throughput ?? l.throughput.default;
  const [tlo, thi] = l.throughput.range;
  if (!Number.isInteger(t) || t < tlo || t > thi) throw bad(`Throughput (${t}) for ${type} volumes must be ${tlo}-${thi} MiB/s.`);
  // The baseline 125 MiB/s comes with any IOPS; beyond it, at most perIops MiB/s per provisioned IOPS.
  if (t > Math.max(l.throughput.default, i * l.throughput.perIops))
    throw bad(`Throughput (${t}) to iops (${i}) ratio of ${t / i} is too high; maximum is ${l.throughput.perIops} MiB/s per iops.`);
  return { iops: i, throughput: t };
}
