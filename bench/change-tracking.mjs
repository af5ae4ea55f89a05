// npm run bench -- change-tracking [--json] [--pairs N] [--seconds S] [--off-first]
// The write-path cost of change tracking (card/tracking.ts, native/src/fuse_server.c mark_changed):
// fio randwrite 4k, QD16, libaio, direct=1 on the loop devices of two 1 GiB encrypted volumes of one
// home, attached at once: one with tracking (the default), one with KMSVOL_CHANGE_TRACKING=0 (for
// benchmarks only). Both are written whole first (so no run pays for allocation), then measured in
// alternating pairs (on/off, then off/on, ...), in the same run. Reports each side's median and
// min-max IOPS, the median of the per-pair ratios, the card's CPU time per write (user + system,
// from /proc: less disturbed by other load than IOPS are), and the load average around every run
// (the machine is shared: read the figures with it).
// Needs root, FUSE and fio (scripts/ensure-system-deps.sh bench).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { Kmsvol } from '../dist/index.js';
import { machine, printMachine } from './env.mjs';

const json = process.argv.includes('--json');
const opt = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const PAIRS = opt('--pairs', 8);
const SECONDS = opt('--seconds', 8);
// Which volume is created and attached first (its card started first): --off-first swaps them, to see any bias of the order.
const SIDES = process.argv.includes('--off-first') ? ['off', 'on'] : ['on', 'off'];

function fio(dev, args) {
  const out = execFileSync('fio', ['--output-format=json', '--name=ct', `--filename=${dev}`, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return JSON.parse(out.slice(out.indexOf('{'))).jobs[0];
}

/** A process's user + system CPU time in seconds (/proc/PID/stat fields 14 and 15, in clock ticks of 1/100 s). */
const cpuSeconds = (pid) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100;
};

/** One run: IOPS, and the card's CPU microseconds per write. */
const randWrite = (dev, pid) => {
  const c0 = cpuSeconds(pid);
  const j = fio(dev, [
    '--ioengine=libaio',
    '--iodepth=16',
    '--direct=1',
    '--rw=randwrite',
    '--bs=4k',
    '--time_based',
    `--runtime=${SECONDS}`,
    '--randrepeat=0',
  ]);
  const cpu = cpuSeconds(pid) - c0;
  return { iops: Math.round(j.write.iops), cpuUsPerWrite: Number(((cpu / j.write.total_ios) * 1e6).toFixed(2)) };
};

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function attach(kv, volumeId, tracking) {
  if (tracking) delete process.env.KMSVOL_CHANGE_TRACKING;
  else process.env.KMSVOL_CHANGE_TRACKING = '0';
  try {
    return (await kv.attachVolume(volumeId, { loop: true })).LoopDevice;
  } finally {
    delete process.env.KMSVOL_CHANGE_TRACKING;
  }
}

const kv = Kmsvol.open();
try {
  const key = kv.kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
  const dev = {};
  const pid = {};
  for (const side of SIDES) {
    const v = (await kv.createVolume({ Size: 1, Encrypted: true, KmsKeyId: key })).VolumeId;
    dev[side] = await attach(kv, v, side === 'on');
    pid[side] = kv.ctx.registry.getAttachment(v).pid;
    fio(dev[side], ['--ioengine=libaio', '--iodepth=4', '--direct=1', '--rw=write', '--bs=1M']); // written whole: allocation is paid here
  }
  const runs = { on: [], off: [] };
  const cpu = { on: [], off: [] };
  const ratios = [];
  const loads = [];
  for (let p = 0; p < PAIRS; p++) {
    const order = p % 2 ? ['off', 'on'] : ['on', 'off'];
    const pair = {};
    for (const side of order) {
      const before = os.loadavg()[0];
      const r = randWrite(dev[side], pid[side]);
      pair[side] = r.iops;
      loads.push(before, os.loadavg()[0]);
      runs[side].push(r.iops);
      cpu[side].push(r.cpuUsPerWrite);
    }
    ratios.push(pair.on / pair.off);
    if (!json)
      console.log(
        `pair ${p + 1}: on ${pair.on} IOPS ${cpu.on.at(-1)} us CPU/write, off ${pair.off} IOPS ${cpu.off.at(-1)} us CPU/write (${order.join(' then ')}), load ${os.loadavg()[0].toFixed(1)}`,
      );
  }
  const summary = (xs) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
  const result = {
    machine: machine(),
    attachedFirst: SIDES[0],
    job: `fio randwrite 4k, libaio, iodepth=16, direct=1, ${SECONDS} s, on the loop device of a 1 GiB encrypted volume (written whole first)`,
    pairs: PAIRS,
    trackingOnIops: summary(runs.on),
    trackingOffIops: summary(runs.off),
    onOverOffRatio: { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) },
    overheadPercent: Number(((1 - median(runs.on) / median(runs.off)) * 100).toFixed(2)),
    cardCpuUsPerWrite: { on: summary(cpu.on), off: summary(cpu.off) },
    cpuOverheadPercent: Number(((median(cpu.on) / median(cpu.off) - 1) * 100).toFixed(2)),
    loadAverage1m: summary(loads),
    runs,
    cpu,
  };
  if (json) console.log(JSON.stringify(result, null, 2));
  else {
    printMachine(result.machine);
    console.log(`${result.job}; tracking ${SIDES[0]} attached first`);
    const f = (s) => `median ${+s.median.toFixed(2)}, min ${s.min}, max ${s.max}`;
    console.log(`tracking on : ${f(result.trackingOnIops)} IOPS`);
    console.log(`tracking off: ${f(result.trackingOffIops)} IOPS`);
    console.log(
      `on/off per pair: median ${result.onOverOffRatio.median.toFixed(3)} (min ${result.onOverOffRatio.min.toFixed(3)}, max ${result.onOverOffRatio.max.toFixed(3)})`,
    );
    console.log(`overhead (1 - median on / median off): ${result.overheadPercent}%`);
    console.log(`card CPU per write: on ${f(result.cardCpuUsPerWrite.on)} us, off ${f(result.cardCpuUsPerWrite.off)} us: ${result.cpuOverheadPercent}%`);
    const l = result.loadAverage1m;
    console.log(
      `1-minute load average around the runs: median ${l.median.toFixed(1)}, min ${l.min.toFixed(1)}, max ${l.max.toFixed(1)} (${os.cpus().length} cores)`,
    );
  }
} finally {
  await kv.close();
}
