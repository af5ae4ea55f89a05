// The e2e bench's verdicts (bench/e2e/report.mjs): what RESULTS.md claims is
// decided here, so a row whose repetitions fall on both sides of its target
// must never read "met".
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs module of the bench, without types
import { splice, summarise, table } from '../../../bench/e2e/report.mjs';

const job = { name: 'seqRead', label: 'seq read', unit: 'MiB/s' };
const samples = (kmsvol: number[], gocryptfs: number[], plain: number[]) => [
  ...kmsvol.map((value, i) => ({ rep: i + 1, job: 'seqRead', target: 'kmsvol', value })),
  ...gocryptfs.map((value, i) => ({ rep: i + 1, job: 'seqRead', target: 'gocryptfs', value })),
  ...plain.map((value, i) => ({ rep: i + 1, job: 'seqRead', target: 'plain', value })),
];

/** A run as the bench writes its JSON, around a summary and its samples. */
const run = (summary: unknown, taken: object[], reps: number) => ({
  command: 'sudo npm run bench -- e2e',
  date: '2026-12-07 03:00 UTC',
  machine: { cpu: 'AMD EPYC', cores: 2, kernel: '6.18' },
  versions: { fio: 'fio-3.33', gocryptfs: 'gocryptfs 2.3' },
  reps,
  config: { fileMiB: 768, runtime: 8, volumeGiB: 4, treeDirs: ['node_modules'], inputs: { treeEntries: 14739, tarMiB: 280 } },
  queues: {},
  samples: taken.map((s) => ({ ...s, loadavg: 1, stealPct: 0 })),
  summary,
});

describe('e2e bench summary', () => {
  it('pairs kmsvol with each peer by repetition and reports median and min–max', () => {
    const [s] = summarise([job], samples([100, 300, 200], [100, 100, 100], [100, 300, 400]));
    expect(s.figures.kmsvol).toMatchObject({ median: 200, min: 100, max: 300, n: 3 });
    // per repetition: 1, 3, 2 against gocryptfs; 1, 1, 0.5 against the plain loop
    expect(s.ratios.gocryptfs).toMatchObject({ median: 2, min: 1, max: 3, verdict: 'met' });
    expect(s.ratios.plain).toMatchObject({ median: 1, min: 0.5, max: 1, verdict: 'within spread' });
  });

  it('a row whose repetitions straddle the target is "within spread", not met, even when its median is above it', () => {
    const [s] = summarise([job], samples([150, 90, 160, 140, 130], [100, 100, 100, 100, 100], [100, 100, 100, 100, 100]));
    expect(s.ratios.gocryptfs.median).toBeGreaterThan(1);
    expect(s.ratios.gocryptfs.verdict).toBe('within spread');
  });

  it('a row below its target in every repetition is NOT met', () => {
    const [s] = summarise([job], samples([50, 60], [100, 100], [100, 100]));
    expect(s.ratios.gocryptfs.verdict).toBe('NOT met');
    expect(s.ratios.plain.verdict).toBe('NOT met');
  });

  it('a time (lower is better) is turned into a speed ratio: the peer’s time over kmsvol’s', () => {
    const mkfs = { name: 'mkfs', label: 'mkfs', unit: 's', lower: true };
    const [s] = summarise(
      [mkfs],
      [
        { rep: 1, job: 'mkfs', target: 'kmsvol', value: 2 },
        { rep: 1, job: 'mkfs', target: 'plain', value: 1 },
      ],
    );
    expect(s.ratios.plain).toMatchObject({ median: 0.5, verdict: 'NOT met' });
    expect(s.ratios.gocryptfs).toBeUndefined();
  });

  it('with --control, the second gocryptfs over the first is the A/A column: paired by repetition, no target, no verdict', () => {
    const control = [120, 80, 100].map((value, i) => ({ rep: i + 1, job: 'seqRead', target: 'control', value }));
    const [s] = summarise([job], [...samples([100, 100, 100], [100, 100, 100], [100, 100, 100]), ...control]);
    expect(s.figures.control).toMatchObject({ median: 100, min: 80, max: 120 });
    expect(s.ratios.control).toMatchObject({ median: 1, min: 0.8, max: 1.2 });
    expect(s.ratios.control.verdict).toBeUndefined();
    expect(s.ratios.gocryptfs.verdict).toBe('met'); // the control never changes a verdict
    const md = table(run([s], control, 3));
    expect(md).toContain('A/A control: gocryptfs / gocryptfs');
    expect(md.replace(/ +/g, ' ')).toContain('| 1.00 (1.00–1.00) met | 1.00 (0.80–1.20) |');
    const rows = md.split('\n').filter((l: string) => l.startsWith('|'));
    expect(new Set(rows.map((l: string) => l.length)).size).toBe(1);
    const [plainRun] = summarise([job], samples([100], [100], [100]));
    expect(table(run([plainRun], [], 1))).not.toContain('A/A control');
  });

  it('the table is written between its markers, and writing it again replaces it', () => {
    const out = run(summarise([job], samples([100, 300], [100, 100], [100, 300])), samples([100, 300], [100, 100], [100, 300]), 2);
    const md = table(out);
    expect(md.replace(/ +/g, ' ')).toContain(
      '| seq read | MiB/s | 200 (100–300) | 200 (100–300) | 100 (100–100) | 2.00 (1.00–3.00) met | 1.00 (1.00–1.00) met |',
    );
    // Laid out as Biome formats a markdown table (lint passes on the written RESULTS.md): every row as wide as the header.
    const rows = md.split('\n').filter((l: string) => l.startsWith('|'));
    expect(new Set(rows.map((l: string) => l.length)).size).toBe(1);
    const once = splice('# Benchmark results\n\nintro\n\n## Older\n\nold table\n', md);
    const twice = splice(once, md.replace('200 (100–300)', '999 (1–2)'));
    expect(once.indexOf('## The path users take, measured')).toBeLessThan(once.indexOf('## Older'));
    expect(twice.match(/e2e:begin/g)).toHaveLength(1);
    expect(twice).toContain('999 (1–2)');
    expect(twice).toContain('old table');
  });
});
