// sudo npm run bench -- e2e [--reps N] [--quick] [--jobs a,b] [--control] [--work DIR] [--out FILE.json] [--write-results] [--no-chart]
//      npm run bench -- e2e --report bench/results/e2e-….json [--write-results]   (the table of a run already made)
//                          [--kmsvol-dio on|off] [--plain-dio on] [--read-ahead-kb N] [--max-sectors-kb N] [--lazy-init off]
//                          [--read-around-kb N] [--direct-write-kb N] [--direct-read-kb N] [--halt-poll-ns N]
// The path users take, measured as users take it: kmsvol (a volume attached
// through the CLI with --loop, ext4 made by mkfs.ext4's defaults on
// /dev/loopN), ext4 on a plain loop device over an image file in the same
// file system, and gocryptfs, alternated job by job (the starting target
// rotated per repetition), N repetitions (default 5). --control adds a second
// gocryptfs mount, the A/A control: its ratio to the first is the spread two
// identical targets show on this machine, the noise floor of every ratio
// (about a third more time). Writes every sample,
// with the load average and steal time it was taken under, to
// bench/results/e2e-<time>.json, prints the table, and with --write-results
// puts it into bench/RESULTS.md and draws bench/e2e.svg. The work directory
// (default bench/.work, on the project's file system, not /tmp) is removed at
// the end; mounts, loop devices and cards are released on failure and Ctrl-C
// too, and left-overs of a killed run are released at the next start.
// The tuning switches are for profiling; the default is what users get.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chart, splice, summarise, table } from './e2e/report.mjs';
import { dropCaches, idleCpus, io, load, loopsBelow, mountsBelow, onUndo, run, settle, undoAll } from './e2e/sys.mjs';
import { cpuSeconds, gocryptfsTarget, kmsvolTarget, plainTarget } from './e2e/targets.mjs';
import { idle, makeInputs, workloads } from './e2e/workloads.mjs';
import { machine } from './env.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);
const argv = process.argv.slice(2);
const valued = [
  'reps',
  'jobs',
  'work',
  'out',
  'report',
  'kmsvol-dio',
  'plain-dio',
  'read-ahead-kb',
  'max-sectors-kb',
  'lazy-init',
  'read-around-kb',
  'direct-write-kb',
  'direct-read-kb',
  'halt-poll-ns',
];
const flags = ['quick', 'control', 'write-results', 'no-chart', 'json', 'help']; // --json: accepted as by every suite; the JSON is always written
let values;
try {
  ({ values } = parseArgs({
    args: argv,
    options: Object.fromEntries([...valued.map((o) => [o, { type: 'string' }]), ...flags.map((o) => [o, { type: 'boolean' }])]),
  }));
} catch (e) {
  console.error(`e2e: ${e.message}\nsee: npm run bench -- e2e --help`);
  process.exit(252);
}
if (values.help) {
  const head = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n');
  console.log(
    head
      .slice(
        0,
        head.findIndex((l) => !l.startsWith('//')),
      )
      .map((l) => l.replace(/^\/\/ ?/, ''))
      .join('\n'),
  );
  process.exit(0);
}
// A number taken as text would reach the card or sysfs as a default it did not ask for ("off" leaves direct writes on).
for (const o of ['reps', 'read-ahead-kb', 'max-sectors-kb', 'read-around-kb', 'direct-write-kb', 'direct-read-kb', 'halt-poll-ns'])
  if (values[o] !== undefined && !/^\d+$/.test(values[o])) {
    console.error(`e2e: --${o} takes a decimal number, not ${JSON.stringify(values[o])}`);
    process.exit(252);
  }
const opt = (name, dflt) => values[name] ?? dflt;
const flag = (name) => values[name] === true;
const quick = flag('quick');
const onOff = (v) => (v === undefined ? undefined : v === 'on');
const cfg = {
  bin: path.join(root, 'bin/kmsvol.js'),
  work: path.resolve(opt('work', path.join(here, '.work'))),
  reps: Number(opt('reps', quick ? 1 : 5)),
  fileMiB: quick ? 64 : 768,
  cpMiB: quick ? 64 : 1024,
  runtime: quick ? 1 : 8,
  volumeGiB: 4,
  treeRoot: path.dirname(fs.realpathSync(path.join(root, 'node_modules'))),
  treeDirs: quick ? ['node_modules/vega-lite'] : ['node_modules'],
  lazy: opt('lazy-init') === 'off' ? false : undefined,
  kmsvolDio: onOff(opt('kmsvol-dio')),
  plainDio: opt('plain-dio') === 'on',
  readAheadKb: opt('read-ahead-kb') === undefined ? undefined : Number(opt('read-ahead-kb')),
  maxSectorsKb: opt('max-sectors-kb') === undefined ? undefined : Number(opt('max-sectors-kb')),
  readAroundKb: opt('read-around-kb') ?? process.env.KMSVOL_READ_AROUND_KB, // the card's read-around window (inherited too, so the JSON says); default: the card's own
  directWriteKb: opt('direct-write-kb') ?? process.env.KMSVOL_DIRECT_WRITE_KB, // the smallest write the card sends to the disk directly; likewise
  directReadKb: opt('direct-read-kb') ?? process.env.KMSVOL_DIRECT_READ_KB, // the smallest read the card takes from the disk directly; likewise
  haltPollNs: opt('halt-poll-ns') === undefined ? undefined : Number(opt('halt-poll-ns')), // the guest's idle polling, set for the run and restored
};
const only = opt('jobs')?.split(',');
if (only) {
  const all = workloads(cfg);
  for (const name of only) {
    const job = all.find((j) => j.name === name);
    const why = !job
      ? `there is no job ${name} (jobs: ${all.map((j) => j.name).join(', ')})`
      : job.needs && !only.includes(job.needs)
        ? `${name} works on what ${job.needs} leaves; add ${job.needs}`
        : '';
    if (why) {
      console.error(`e2e: --jobs: ${why}`);
      process.exit(252);
    }
  }
}

/** The table (and with --write-results RESULTS.md and the chart) from a run's JSON. */
async function report(out) {
  const md = table(out);
  console.log(md);
  if (flag('write-results')) {
    const p = path.join(here, 'RESULTS.md');
    fs.writeFileSync(p, splice(fs.readFileSync(p, 'utf8'), md));
    if (!flag('no-chart')) fs.writeFileSync(path.join(here, 'e2e.svg'), await chart(out));
    console.log('written: bench/RESULTS.md (the e2e table) and bench/e2e.svg');
  }
}
// --report FILE.json: no run, only the table of a run already made.
if (opt('report')) {
  await report(JSON.parse(fs.readFileSync(opt('report'), 'utf8')));
  process.exit(0);
}

if (process.getuid() !== 0) {
  console.error('the e2e bench needs root (loop devices, mounts, drop_caches): sudo npm run bench -- e2e');
  process.exit(252);
}
execFileSync('bash', [path.join(root, 'scripts/ensure-system-deps.sh'), 'bench'], { stdio: 'inherit' });

/** Release what a killed run left in the work directory: its cards, mounts and loop devices. */
function sweep(work) {
  if (!fs.existsSync(work)) return;
  const home = path.join(work, 'home');
  if (fs.existsSync(home)) {
    const env = { ...process.env, KMSVOL_HOME: home };
    const r = spawnSync(process.execPath, [cfg.bin, 'ec2', 'describe-volumes', '--query', 'Volumes[?Attachments[0]].VolumeId', '--output', 'text'], {
      env,
      encoding: 'utf8',
    });
    for (const v of (r.stdout ?? '').split(/\s+/).filter(Boolean))
      spawnSync(process.execPath, [cfg.bin, 'ec2', 'detach-volume', '--volume-id', v, '--force'], { env });
  }
  for (const m of mountsBelow(work)) spawnSync('umount', ['-l', m]);
  for (const l of loopsBelow(work)) spawnSync('losetup', ['-d', l]);
  fs.rmSync(work, { recursive: true, force: true });
}

const progress = (s) => process.stderr.write(`${s}\n`);
const samples = [];
try {
  sweep(cfg.work);
  fs.mkdirSync(cfg.work, { recursive: true, mode: 0o700 });
  onUndo('the work directory', () => sweep(cfg.work)); // last: whatever the steps' own undoing could not release
  const env = {
    ...process.env,
    KMSVOL_HOME: path.join(cfg.work, 'home'),
    ...(cfg.readAroundKb === undefined ? {} : { KMSVOL_READ_AROUND_KB: cfg.readAroundKb }),
    ...(cfg.directWriteKb === undefined ? {} : { KMSVOL_DIRECT_WRITE_KB: cfg.directWriteKb }),
    ...(cfg.directReadKb === undefined ? {} : { KMSVOL_DIRECT_READ_KB: cfg.directReadKb }),
  };
  const kv = (...a) => run(process.execPath, [cfg.bin, ...a], { env });
  const jobs = workloads(cfg).filter((j) => !only || only.includes(j.name));
  cfg.idle = idleCpus(cfg.haltPollNs);
  progress(`e2e: work directory ${cfg.work}; ${jobs.length} jobs x ${flag('control') ? 4 : 3} targets x ${cfg.reps} repetitions`);
  cfg.inputs = await makeInputs(
    cfg,
    jobs.map((j) => j.name),
  );
  const targets = [await kmsvolTarget(cfg.work, cfg, kv, env), await plainTarget(cfg.work, cfg), await gocryptfsTarget(cfg.work)];
  if (flag('control')) targets.push(await gocryptfsTarget(cfg.work, 'control'));
  for (let rep = 1; rep <= cfg.reps; rep++) {
    const order = targets.map((_, i) => targets[(i + rep - 1) % targets.length]);
    // The rotation alone would run the control right after gocryptfs in most repetitions: swap the two in every other one.
    const [g, c] = ['gocryptfs', 'control'].map((n) => order.findIndex((t) => t.name === n));
    if (c >= 0 && rep % 2 === 0) [order[g], order[c]] = [order[c], order[g]];
    // Each repetition starts from an empty file system (made anew by the mkfs job, emptied otherwise).
    for (const t of targets) {
      if (t.mkfs && jobs[0].name === 'mkfs') continue; // the mkfs job makes it anew
      if (t.mkfs && rep === 1) {
        await t.mkfs();
        await idle(t.dev);
      } else await t.clear();
    }
    for (const job of jobs) {
      for (const t of order) {
        if (job.blockOnly && !t.mkfs) continue;
        if (job.cold) await dropCaches();
        else await settle();
        const before = load();
        const io0 = io(cfg.work);
        const cpu0 = cpuSeconds(t.pid);
        const t0 = performance.now();
        const value = await job.run(t);
        const after = load(before.now);
        const { now: _, ...disk } = io(cfg.work, io0.now);
        const sample = {
          rep,
          job: job.name,
          target: t.name,
          value,
          unit: job.unit,
          seconds: +((performance.now() - t0) / 1000).toFixed(2),
          loadavg: after.loadavg,
          stealPct: after.stealPct,
          busyPct: after.busyPct,
          ...disk, // what reached the disk under the targets (all three share it), and the memory handed back to the host
        };
        // The CPU the card (or the gocryptfs daemon) spent on the job: less sensitive to a loaded machine than its wall time.
        if (t.pid) sample.serverCpuS = +(cpuSeconds(t.pid) - cpu0).toFixed(2);
        samples.push(sample);
        progress(
          `[rep ${rep}/${cfg.reps}] ${job.name.padEnd(13)} ${t.name.padEnd(9)} ${value.toFixed(value < 100 ? 2 : 0).padStart(9)} ${job.unit.padEnd(9)} (${sample.seconds} s${sample.serverCpuS === undefined ? '' : `, server CPU ${sample.serverCpuS} s`}; load ${after.loadavg}, steal ${after.stealPct}%, busy ${after.busyPct}%)`,
        );
      }
    }
  }
  const m = machine();
  const summary = summarise(jobs, samples);
  const out = {
    command:
      `sudo npm run bench -- e2e ${argv.filter((a, i) => !['--write-results', '--no-chart', '--out', '--work'].includes(a) && !['--out', '--work'].includes(argv[i - 1])).join(' ')}`.trim(),
    date: `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    machine: m,
    versions: {
      fio: spawnSync('fio', ['--version'], { encoding: 'utf8' }).stdout.trim(),
      gocryptfs: spawnSync('gocryptfs', ['-version'], { encoding: 'utf8' }).stdout.split('\n')[0].split(';')[0],
    },
    reps: cfg.reps,
    config: { ...cfg, inputs: { tarMiB: +cfg.inputs.tarMiB.toFixed(1), treeEntries: cfg.inputs.treeEntries } },
    queues: Object.fromEntries(targets.filter((t) => t.queue).map((t) => [t.name, t.queue])),
    samples,
    summary,
  };
  const file = path.resolve(opt('out', path.join(here, 'results', `e2e-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`samples and summary: ${path.relative(root, file)}\n`);
  await report(out);
} finally {
  undoAll();
}
