// From the e2e bench's measurements to its figures: median and min–max per
// job and target, the ratios kmsvol / peer paired by repetition (the targets
// of one repetition ran one after the other), the verdict against each
// target, the A/A control's ratio when the run had one, the RESULTS.md table
// and the chart.
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const spread = (xs) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length });

/** The peers and the ratio each job must reach against them (issue 30). */
export const PEERS = [
  { peer: 'gocryptfs', target: 1.0 },
  { peer: 'plain', target: 0.8 },
];

/**
 * Summarise the measurements. A ratio is kmsvol's speed over the peer's in the
 * same repetition (for a time, the peer's time over kmsvol's). Verdict: met
 * when every repetition reaches the target, NOT met when none does, and
 * "within spread" when the repetitions fall on both sides: the spread is wider
 * than the difference the row would claim, so it is not counted as met.
 */
export function summarise(jobs, samples) {
  return jobs.map((job) => {
    const of = (target) => samples.filter((s) => s.job === job.name && s.target === target && Number.isFinite(s.value));
    const figures = Object.fromEntries(
      ['kmsvol', 'plain', 'gocryptfs', 'control'].map((t) => [t, of(t).length ? spread(of(t).map((s) => s.value)) : undefined]),
    );
    /** `of` over `peer`, paired by repetition, as a speed ratio; undefined without a pair. */
    const ratio = (one, peer) => {
      const pairs = of(one)
        .map((k) => [k, of(peer).find((p) => p.rep === k.rep)])
        .filter(([, p]) => p);
      return pairs.length ? spread(pairs.map(([k, p]) => (job.lower ? p.value / k.value : k.value / p.value))) : undefined;
    };
    const ratios = {};
    for (const { peer, target } of PEERS) {
      const r = ratio('kmsvol', peer);
      if (!r) continue;
      r.target = target;
      r.verdict = r.min >= target ? 'met' : r.max < target ? 'NOT met' : 'within spread';
      ratios[peer] = r;
    }
    // The A/A control: a second gocryptfs over the first. Identical targets, so its spread is the machine's noise floor.
    const control = ratio('control', 'gocryptfs');
    if (control) ratios.control = control;
    return { job: job.name, label: job.label, unit: job.unit, lower: !!job.lower, figures, ratios };
  });
}

const fmt = (x) => {
  if (x === undefined) return '—';
  const d = x >= 100 ? 0 : x >= 10 ? 1 : 2;
  return x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
};
const cell = (s) => (s ? `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})` : '—');
const ratioCell = (r) =>
  r
    ? `${r.median.toFixed(2)} (${r.min.toFixed(2)}–${r.max.toFixed(2)})${r.verdict === undefined ? '' : r.verdict === 'met' ? ' met' : ` **${r.verdict}**`}`
    : '—';

/** The RESULTS.md table (markdown), with the run it came from. */
export function table(out) {
  const control = out.summary.some((s) => s.ratios.control);
  const rows = out.summary.map((s) => [
    s.label,
    s.unit + (s.lower ? ' (lower is better)' : ''),
    cell(s.figures.kmsvol),
    cell(s.figures.plain),
    cell(s.figures.gocryptfs),
    ratioCell(s.ratios.gocryptfs),
    ratioCell(s.ratios.plain),
    ...(control ? [ratioCell(s.ratios.control)] : []),
  ]);
  const head = [
    'job',
    'unit',
    'kmsvol',
    'plain loop',
    'gocryptfs',
    'kmsvol / gocryptfs (target ≥ 1.0)',
    'kmsvol / plain loop (target ≥ 0.8)',
    ...(control ? ['A/A control: gocryptfs / gocryptfs'] : []),
  ];
  // Columns padded as the project's formatter (Biome) lays out a markdown table: text left, figures right.
  const right = (i) => i >= 2;
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => (right(i) ? c.padStart(width[i]) : c.padEnd(width[i]))).join(' | ')} |`;
  const loads = out.samples.map((s) => s.loadavg);
  const steals = out.samples.map((s) => s.stealPct);
  return [
    `Command: \`${out.command}\` (${out.reps} repetitions, targets alternated job by job, starting target rotated per repetition; ${out.config.fileMiB} MiB fio files, random jobs ${out.config.runtime} s, ${out.config.volumeGiB} GiB volumes; the tree: ${out.config.treeDirs.join(' ')}, ${out.config.inputs.treeEntries} entries, ${Math.round(out.config.inputs.tarMiB)} MiB as a tarball; page cache dropped before cold jobs). ${out.date}, ${out.machine.cpu} (${out.machine.cores} cores), Linux ${out.machine.kernel}, ${out.versions.fio}, ${out.versions.gocryptfs}. Load average during the jobs ${fmt(Math.min(...loads))}–${fmt(Math.max(...loads))}, steal ${fmt(Math.min(...steals))}–${fmt(Math.max(...steals))}%. Loop queues: kmsvol ${JSON.stringify(out.queues.kmsvol)}, plain ${JSON.stringify(out.queues.plain)}.${out.config.idle?.guestHaltPollNs === undefined ? '' : ` Idle vCPUs: ${out.config.idle.cpuidle}, guest_halt_poll_ns ${out.config.idle.guestHaltPollNs}.`}`,
    '',
    `Figures: median (min–max) over the repetitions. Ratios: kmsvol over the peer within each repetition, median (min–max); "within spread" means the repetitions fall on both sides of the target, so the row is not counted as met.${control ? ' A/A control: a second gocryptfs mount over the first, within each repetition; two identical targets, so its spread is how far any ratio in the row can move by the machine alone.' : ''}`,
    '',
    line(head),
    line(head.map((_, i) => (right(i) ? `${'-'.repeat(width[i] - 1)}:` : '-'.repeat(width[i])))),
    ...rows.map(line),
  ].join('\n');
}

/** Put `text` between the e2e markers of RESULTS.md (added at the top when missing). */
export function splice(results, text) {
  const begin = '<!-- e2e:begin (generated by npm run bench -- e2e; do not edit by hand) -->';
  const end = '<!-- e2e:end -->';
  const i = results.indexOf(begin);
  const j = results.indexOf(end);
  if (i >= 0 && j > i) return `${results.slice(0, i + begin.length)}\n${text}\n${results.slice(j)}`;
  const at = results.indexOf('\n## ');
  const block = `\n## The path users take, measured as users take it (issue 30)\n\n${begin}\n${text}\n${end}\n`;
  return at < 0 ? results + block : `${results.slice(0, at)}\n${block}${results.slice(at + 1)}`;
}

/** The chart: each job's ratio to each peer, median with the min–max as a bar, on a log axis. */
export async function chart(out) {
  const vega = await import('vega');
  const vl = await import('vega-lite');
  const values = [];
  const label = { plain: 'kmsvol / plain loop', gocryptfs: 'kmsvol / gocryptfs', control: 'A/A control: gocryptfs / gocryptfs' };
  for (const s of out.summary)
    for (const [peer, r] of Object.entries(s.ratios)) values.push({ job: s.job, peer: label[peer], median: r.median, min: r.min, max: r.max });
  const spec = vl.compile({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `kmsvol over its peers, ${out.reps} alternated repetitions (${out.machine.cpu}, ${out.machine.cores} cores)`,
    width: 640,
    height: 300,
    data: { values },
    layer: [
      {
        encoding: {
          x: { field: 'job', type: 'nominal', sort: out.summary.map((s) => s.job), title: 'job', axis: { labelAngle: -35 } },
          xOffset: { field: 'peer' },
          color: { field: 'peer', type: 'nominal', title: null, legend: { orient: 'bottom' } },
        },
        layer: [
          {
            mark: { type: 'point', filled: true, size: 40 },
            encoding: { y: { field: 'median', type: 'quantitative', scale: { type: 'log' }, title: 'ratio (x, log scale; 1 = same speed)' } },
          },
          { mark: 'rule', encoding: { y: { field: 'min', type: 'quantitative' }, y2: { field: 'max' } } },
        ],
      },
      { mark: { type: 'rule', strokeDash: [4, 4], color: 'gray' }, encoding: { y: { datum: 1 } } },
    ],
  }).spec;
  return new vega.View(vega.parse(spec), { renderer: 'none' }).toSVG();
}
