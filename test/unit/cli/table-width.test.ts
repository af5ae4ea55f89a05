import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { formatTable } from '../../../src/cli/output.js';
import { BIN } from '../../helpers/cli.js';
import { tempHome } from '../../helpers/home.js';

/**
 * `--output table` fits the terminal, as the AWS CLI's does: no line wider
 * than $COLUMNS (else the terminal's width, else 120). A one-row table too
 * wide is turned to key | value rows (the AWS CLI's vertical form); a wider
 * list has its columns narrowed and its cells wrapped, nothing cut.
 */
const saved = process.env.COLUMNS;
afterEach(() => {
  if (saved === undefined) delete process.env.COLUMNS;
  else process.env.COLUMNS = saved;
});
const widest = (s: string) => Math.max(...s.split('\n').map((l) => l.length));
const wide = (i: number) => ({
  VolumeId: `vol-${'0'.repeat(16)}${i}`,
  KmsKeyId: `arn:aws:kms:us-east-1:000000000000:key/${'a'.repeat(8)}-1b60-4a1c-bacf-eba4ed724ed${i}`,
  CreateTime: '2026-12-07T02:52:45.000000+00:00',
  AvailabilityZone: 'us-east-1a',
  VolumeType: 'gp3',
  State: 'available',
  Encrypted: true,
  MultiAttachEnabled: false,
  Throughput: 125,
});

describe('--output table widths', () => {
  it('one object wider than 80 columns becomes key | value rows within 80', () => {
    process.env.COLUMNS = '80';
    const t = formatTable(wide(1), 'CreateVolume');
    expect(widest(t)).toBeLessThanOrEqual(80);
    expect(t).toMatch(/│\s*KmsKeyId\s*│/);
  });

  it('a list of objects is narrowed and wrapped within 100 columns, every character kept', () => {
    process.env.COLUMNS = '100';
    const t = formatTable({ Volumes: [wide(1), wide(2)] }, 'DescribeVolumes');
    expect(widest(t)).toBeLessThanOrEqual(100);
    // Nothing cut: every character of the titles, headers and cells is in the table (borders and spaces aside).
    const drawn = t.replace(/[\s│─┌┐└┘├┤┬┴┼]/g, '').length;
    const given = [
      'DescribeVolumes',
      'Volumes',
      ...Object.keys(wide(1)),
      ...[wide(1), wide(2)].flatMap((v) => Object.values(v).map((x) => (x === true ? 'True' : x === false ? 'False' : String(x)))),
    ];
    expect(drawn).toBe(given.join('').replace(/\s/g, '').length);
  });

  it('without COLUMNS and not on a terminal: 120', () => {
    delete process.env.COLUMNS;
    expect(widest(formatTable({ Volumes: [wide(1), wide(2)] }))).toBeLessThanOrEqual(120);
  });

  it('kmsvol ec2 describe-volumes --output table fits COLUMNS', () => {
    const home = tempHome();
    const env = { ...process.env, KMSVOL_HOME: home, COLUMNS: '90' };
    for (let i = 0; i < 2; i++) expect(spawnSync(process.execPath, [BIN, 'ec2', 'create-volume', '--size', '1'], { env }).status).toBe(0);
    const r = spawnSync(process.execPath, [BIN, 'ec2', 'describe-volumes', '--output', 'table'], { env, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('vol-');
    expect(widest(r.stdout)).toBeLessThanOrEqual(90);
  });
});
