// The machine side of the e2e bench: running commands without blocking the
// event loop (so Ctrl-C is handled at once), undoing everything set up, the
// page cache, and the load the machine was under while a figure was taken.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';

/** The commands running now: a signal ends them before the undoing starts (a job's fio holds its mount busy). */
const children = new Set();

/** SIGKILL every running command and wait until each is dead (a zombie holds no files or mounts). */
function killChildren() {
  const tick = new Int32Array(new SharedArrayBuffer(4));
  for (const c of children) {
    c.kill('SIGKILL');
    for (let i = 0; i < 500; i++) {
      let state = 'Z';
      try {
        const stat = fs.readFileSync(`/proc/${c.pid}/stat`, 'utf8');
        state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      } catch {
        /* reaped */
      }
      if (state === 'Z') break;
      Atomics.wait(tick, 0, 0, 10); // a signal handler cannot await: wait synchronously for the kernel to finish the kill
    }
  }
}

/** Run a command to its end; resolves with its stdout, rejects with its stderr. */
export function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    children.add(child);
    child.on('exit', () => children.delete(child));
    let out = '';
    let err = '';
    child.stdout?.on('data', (d) => {
      out += d;
    });
    child.stderr?.on('data', (d) => {
      err += d;
    });
    child.on('error', reject);
    child.on('close', (code, signal) =>
      code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')}: ${signal ?? `exit ${code}`}: ${err.trim().slice(-400)}`)),
    );
  });
}

/** A shell pipeline (tar | tar), run to its end. */
export const sh = (script, opts) => run('bash', ['-o', 'pipefail', '-c', script], opts);

/** What to undo, last first; run by undoAll on success, failure and signals. */
const undo = [];
export const onUndo = (what, fn) => undo.push({ what, fn });
export function undoAll() {
  while (undo.length) {
    const { what, fn } = undo.pop();
    try {
      fn();
    } catch (e) {
      console.error(`cleanup: ${what}: ${e.message.split('\n')[0]}`);
    }
  }
}
// Output that cannot be written (a pipe that closed, `… | head`: EPIPE; a full disk): release everything as on a signal, instead of dying with it held.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e) => {
    killChildren();
    undoAll();
    process.exit(e.code === 'EPIPE' ? 141 : 1);
  });
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`\n${sig}: cleaning up`);
    killChildren();
    undoAll();
    process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
  });
}

/** Mounts at or below `dir`, deepest first (from the kernel's table). */
export function mountsBelow(dir) {
  const unoctal = (s) => s.replace(/\\(\d{3})/g, (_, o) => String.fromCharCode(Number.parseInt(o, 8)));
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => unoctal(l.split(' ')[4] ?? ''))
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** Loop devices whose backing file is below `dir`. */
export function loopsBelow(dir) {
  const r = spawnSync('losetup', ['--list', '--json', '--output', 'NAME,BACK-FILE'], { encoding: 'utf8' });
  if (r.status !== 0 || !r.stdout.trim()) return [];
  return JSON.parse(r.stdout)
    .loopdevices.filter((l) => (l['back-file'] ?? '').startsWith(`${dir}/`))
    .map((l) => l.name);
}

/** Write back everything dirty, wait until nothing is under writeback, and drop the page cache, dentries and inodes. */
export async function dropCaches() {
  await run('sync', []);
  await settle();
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
}

/** Wait until the kernel holds less than 8 MiB dirty or under writeback (what a previous job left behind). */
export async function settle() {
  for (let i = 0; i < 600; i++) {
    const m = fs.readFileSync('/proc/meminfo', 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(m)?.[1] ?? 0);
    if (kb('Dirty') + kb('Writeback') < 8192) return;
    await run('sync', []);
  }
}

/**
 * The I/O of the disk holding `dir` (from /sys/dev/block/MAJ:MIN/stat): reads
 * and writes completed and MiB moved, and, where the kernel says (a VM with
 * free page reporting: /sys/module/page_reporting/parameters/reported_kib),
 * the MiB of free memory the guest has handed back to its host. Pages handed
 * back are faulted in again by the host on their next use, which shows in the
 * guest as slow copies. `since`: the counters a previous call returned.
 */
export function io(dir, since) {
  const counter = (read) => {
    try {
      return read();
    } catch {
      return undefined; // not a block device (tmpfs, overlay), or a kernel that does not count it
    }
  };
  const dev = fs.statSync(dir).dev;
  const major = Math.floor(dev / 256) & 0xfff;
  const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
  const f = counter(() => fs.readFileSync(`/sys/dev/block/${major}:${minor}/stat`, 'utf8').trim().split(/\s+/).map(Number));
  const reportedKib = counter(() => Number(fs.readFileSync('/sys/module/page_reporting/parameters/reported_kib', 'utf8')));
  const now = { f, reportedKib };
  if (!since) return { now };
  const mib = (i) => +(((now.f[i] - since.f[i]) * 512) / 2 ** 20).toFixed(1);
  return {
    now,
    ...(f && since.f ? { diskReads: f[0] - since.f[0], diskReadMiB: mib(2), diskWrites: f[4] - since.f[4], diskWriteMiB: mib(6) } : {}),
    ...(reportedKib !== undefined && since.reportedKib !== undefined ? { reportedMiB: Math.round((reportedKib - since.reportedKib) / 1024) } : {}),
  };
}

const HALT_POLL = '/sys/module/haltpoll/parameters/guest_halt_poll_ns';

/**
 * How an idle CPU of this guest waits: the cpuidle driver and, with the
 * haltpoll driver, how long it polls before halting (guest_halt_poll_ns; 0:
 * it halts at once, and every wakeup of an idle vCPU goes through the host).
 * `setNs`: set it for the run, restored by the undoing.
 */
export function idleCpus(setNs) {
  const read = (f) => {
    try {
      return fs.readFileSync(f, 'utf8').trim();
    } catch {
      return undefined;
    }
  };
  const before = read(HALT_POLL);
  if (setNs !== undefined) {
    if (before === undefined) throw new Error(`--halt-poll-ns: ${HALT_POLL} is missing (not a guest with the haltpoll cpuidle driver)`);
    fs.writeFileSync(HALT_POLL, String(setNs));
    onUndo(`guest_halt_poll_ns back to ${before}`, () => fs.writeFileSync(HALT_POLL, before));
  }
  const ns = read(HALT_POLL);
  return { cpuidle: read('/sys/devices/system/cpu/cpuidle/current_driver'), ...(ns === undefined ? {} : { guestHaltPollNs: Number(ns) }) };
}

/** The load the machine is under: 1-minute load average now, and steal and busy ticks since `since` (from /proc/stat). */
export function load(since) {
  const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  const now = { total: cpu.slice(0, 8).reduce((a, b) => a + b, 0), steal: cpu[7], idle: cpu[3] + cpu[4] };
  const loadavg = Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  if (!since) return { now, loadavg };
  const dt = now.total - since.total || 1;
  return {
    now,
    loadavg,
    stealPct: +((100 * (now.steal - since.steal)) / dt).toFixed(1),
    busyPct: +((100 * (dt - (now.idle - since.idle))) / dt).toFixed(1),
  };
}
