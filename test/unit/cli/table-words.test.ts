import { afterEach, describe, expect, it } from 'vitest';
import { formatTable } from '../../../src/cli/output.js';

/**
 * Narrowing a table keeps values whole where it can (an id copied from a
 * table must be the id): headers are wrapped first (at their words'
 * capitals), then columns of spaced text at their spaces; a value with no
 * space is broken only when nothing else makes room, the widest first, and
 * then at a + / T . : or - where there is one.
 */
const saved = process.env.COLUMNS;
afterEach(() => {
  if (saved === undefined) delete process.env.COLUMNS;
  else process.env.COLUMNS = saved;
});
/** describe-volumes' scalars, as the CLI prints them. */
const volume = (i: number) => ({
  AvailabilityZone: 'us-east-1a',
  CreateTime: `2026-12-07T03:49:39.52${i}000+00:00`,
  Encrypted: false,
  Size: 1,
  SnapshotId: '',
  State: 'available',
  VolumeId: `vol-95be935387518977${i}`,
  Iops: 100,
  VolumeType: 'gp2',
  MultiAttachEnabled: false,
});
const widest = (s: string) => Math.max(...s.split('\n').map((l) => l.length));

describe('--output table keeps values whole while it can', () => {
  it('150 columns: only the headers wrap, at their capitals', () => {
    process.env.COLUMNS = '150';
    const t = formatTable({ Volumes: [volume(1), volume(2)] }, 'DescribeVolumes');
    expect(widest(t)).toBeLessThanOrEqual(150);
    expect(t).toMatch(/│ Availability +│/);
    expect(t).toMatch(/│ Zone +│/);
    for (const i of [1, 2]) for (const v of Object.values(volume(i))) expect(t).toContain(v === false ? 'False' : String(v));
  });

  it('120 columns: the ids stay whole; the one value that must break, the widest, breaks before its +', () => {
    process.env.COLUMNS = '120';
    const t = formatTable({ Volumes: [volume(1), volume(2)] }, 'DescribeVolumes');
    expect(widest(t)).toBeLessThanOrEqual(120);
    for (const i of [1, 2]) {
      expect(t).toContain(volume(i).VolumeId);
      expect(t).toMatch(new RegExp(`│ 2026-12-07T03:49:39\\.52${i}000 +│`));
    }
    expect(t).toMatch(/│ \+00:00 +│/);
  });

  it('a key | value table breaks an ARN after its key/', () => {
    process.env.COLUMNS = '80';
    const arn = 'arn:aws:kms:us-east-1:000000000000:key/35f6c110-15a5-4480-ae0d-4f84a523e78e';
    const t = formatTable({ KeyId: '35f6c110-15a5-4480-ae0d-4f84a523e78e', KeyArn: arn }, 'DescribeKey');
    expect(widest(t)).toBeLessThanOrEqual(80);
    expect(t).toMatch(/│ arn:aws:kms:us-east-1:000000000000:key\/ +│/);
    expect(t).toMatch(/│ 35f6c110-15a5-4480-ae0d-4f84a523e78e +│\n/);
  });
});
