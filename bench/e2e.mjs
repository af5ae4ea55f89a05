// npm run bench -- e2e [--json] [--quick] [--no-chart]
// fio on the two paths users take, every target in the same run:
//  - the block-device path: ext4 on the kmsvol loop device, ext4 on a loop
//    device over a plain image file on the same file system (for the random
//    jobs also in direct-I/O mode, as kmsvol's loop device runs), and a file
//    in a gocryptfs mount (the peer has no block device);
//  - the bare-file path: the decrypted kmsvol volume file, the same gocryptfs
//    file, and a raw file.
// Jobs: sequential 1 MiB write and read, random 4 KiB read and write (fsync
// every 32), the random jobs again at iodepth 16 with libaio and O_DIRECT, and
// a metadata-heavy job (random reads and writes over 2,000 small files). The
// page cache is dropped before every job. Writes bench/e2e.svg (vega-lite).
// Needs root, FUSE, fio and gocryptfs (scripts/ensure-system-deps.sh bench).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine, printMachine } from './env.mjs';

const json = process.argv.includes('--json');
const quick = process.argv.includes('--quick');
const chart = !process.argv.includes('--no-chart');
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);
const bin = path.join(root, 'bin/kmsvol.js');
const SIZE_MIB = quick ? 128 : 768;
const RUNTIME = quick ? 3 : 8;
const VOLUME_GIB = 2;

execFileSync('bash', [path.join(root, 'scripts/ensure-system-deps.sh'), 'bench'], { stdio: 'inherit' });
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-e2e-'));
const cleanups = [];
const log = (m) => !json && console.log(m);

function dropCaches() {
  spawnSync('sync');
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
}

function fio(name, args) {
  dropCaches();
  const out = execFileSync('fio', ['--output-format=json', `--name=${name}`, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return JSON.parse(out.slice(out.indexOf('{'))).jobs[0];
}

const size = `--size=${SIZE_MIB}M`;
const timed = ['--time_based', `--runtime=${RUNTIME}`];
const psync = ['--ioengine=psync'];
const aio = ['--ioengine=libaio', '--iodepth=16', '--direct=1'];
/** Each job: what it runs and the figure it reports. */
const JOBS = {
  seqWriteMiBps: { args: (f) => [`--filename=${f}`, ...psync, '--rw=write', '--bs=1M', size, '--end_fsync=1'], figure: (j) => Math.round(j.write.bw / 1024) },
  seqReadMiBps: { args: (f) => [`--filename=${f}`, ...psync, '--rw=read', '--bs=1M', size], figure: (j) => Math.round(j.read.bw / 1024) },
  randReadIops: { args: (f) => [`--filename=${f}`, ...psync, '--rw=randread', '--bs=4k', size, ...timed], figure: (j) => Math.round(j.read.iops) },
  randWriteIops: {
    args: (f) => [`--filename=${f}`, ...psync, '--rw=randwrite', '--bs=4k', size, ...timed, '--fsync=32'],
    figure: (j) => Math.round(j.write.iops),
  },
  randReadQd16Iops: { args: (f) => [`--filename=${f}`, ...aio, '--rw=randread', '--bs=4k', size, ...timed], figure: (j) => Math.round(j.read.iops) },
  randWriteQd16Iops: { args: (f) => [`--filename=${f}`, ...aio, '--rw=randwrite', '--bs=4k', size, ...timed], figure: (j) => Math.round(j.write.iops) },
  smallFilesIops: {
    args: (f) => [
      `--directory=${f}.d`,
      ...psync,
      '--nrfiles=2000',
      '--filesize=16k',
      '--bs=4k',
      '--rw=randrw',
      '--file_service_type=random',
      '--openfiles=64',
      ...timed,
    ],
    figure: (j) => Math.round(j.read.iops + j.write.iops),
  },
};
const BLOCK_JOBS = Object.keys(JOBS);
const FILE_JOBS = ['seqWriteMiBps', 'seqReadMiBps', 'randReadIops', 'randWriteIops'];
/** The random jobs, run also on the plain loop device in direct-I/O mode. */
const DIO_JOBS = ['randReadIops', 'randWriteIops', 'randReadQd16Iops', 'randWriteQd16Iops'];

function runJobs(label, file, jobs) {
  log(`  ${label}: ${file}`);
  if (jobs.includes('smallFilesIops')) fs.mkdirSync(`${file}.d`, { recursive: true });
  const out = {};
  for (const name of jobs) out[name] = JOBS[name].figure(fio(name, JOBS[name].args(file)));
  return out;
}

function cleanup() {
  for (const c of cleanups.reverse()) {
    try {
      c();
    } catch {
      /* best effort */
    }
  }
  fs.rmSync(work, { recursive: true, force: true });
}
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});

/** mkfs.ext4 (initialised up front unless `lazy`, so no lazy init runs during the jobs) and mount; returns the mount point. */
function ext4On(dev, name, lazy = false) {
  execFileSync('mkfs.ext4', ['-q', '-F', ...(lazy ? [] : ['-E', 'lazy_itable_init=0,lazy_journal_init=0']), dev]);
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  execFileSync('mount', [dev, dir]);
  cleanups.push(() => execFileSync('umount', [dir]));
  return dir;
}

function render(_results, ratios) {
  return import('vega').then(async (vega) => {
    const vl = await import('vega-lite');
    const values = [];
    for (const [pair, r] of Object.entries(ratios)) for (const [job, v] of Object.entries(r)) values.push({ comparison: pair, job, ratio: v });
    const spec = vl.compile({
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title: `kmsvol, same-run ratios (${machine().cpu}, ${machine().cores} cores)`,
      width: 560,
      height: 260,
      data: { values },
      layer: [
        {
          mark: 'bar',
          encoding: {
            x: { field: 'job', type: 'nominal', sort: BLOCK_JOBS, axis: { labelAngle: -30 } },
            xOffset: { field: 'comparison' },
            y: { field: 'ratio', type: 'quantitative', title: 'ratio (1.0 = peer)' },
            color: { field: 'comparison', type: 'nominal', legend: { labelLimit: 400, orient: 'bottom', columns: 1 } },
          },
        },
        { mark: { type: 'rule', strokeDash: [4, 4] }, encoding: { y: { datum: 1 } } },
      ],
    }).spec;
    const view = new vega.View(vega.parse(spec), { renderer: 'none' });
    return view.toSVG();
  });
}

try {
  const results = {};
  const home = path.join(work, 'home');
  const env = { ...process.env, KMSVOL_HOME: home };
  const kv = (...a) => execFileSync(process.execPath, [bin, ...a], { env, encoding: 'utf8' }).trim();
  const key = kv('kms', 'create-key', '--query', 'KeyMetadata.KeyId', '--output', 'text');
  const newVolume = (gib = VOLUME_GIB) =>
    kv('ec2', 'create-volume', '--size', String(gib), '--encrypted', '--kms-key-id', key, '--query', 'VolumeId', '--output', 'text');
  /** The card of a volume: the process holding its lock file open. */
  const cardPid = (volumeId) => {
    const lock = path.join(home, 'run', `${volumeId}.lock`);
    for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        if (fs.readdirSync(`/proc/${pid}/fd`).some((fd) => fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === lock)) return pid;
      } catch {
        /* gone, or not ours to read */
      }
    }
    throw new Error(`no process holds ${lock}`);
  };
  /** The card's peak resident memory, MiB. */
  const cardPeakMiB = (volumeId) => Math.round(Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${cardPid(volumeId)}/status`, 'utf8'))[1]) / 1024);

  log('The block-device path (ext4 on a loop device):');
  const blockVol = newVolume();
  const loop = JSON.parse(kv('ec2', 'attach-volume', '--volume-id', blockVol, '--loop')).LoopDevice;
  cleanups.push(() => kv('ec2', 'detach-volume', '--volume-id', blockVol, '--force'));
  results.kmsvolExt4 = runJobs('kmsvol loop + ext4', path.join(ext4On(loop, 'kmsvol-ext4'), 'bench.bin'), BLOCK_JOBS);
  // Card memory stays flat in volume size: the same random jobs on a 100 GiB volume (only its memory is reported).
  const bigVol = newVolume(100);
  const bigLoop = JSON.parse(kv('ec2', 'attach-volume', '--volume-id', bigVol, '--loop')).LoopDevice;
  cleanups.push(() => kv('ec2', 'detach-volume', '--volume-id', bigVol, '--force'));
  runJobs('kmsvol loop + ext4, 100 GiB volume', path.join(ext4On(bigLoop, 'kmsvol-ext4-100g', true), 'bench.bin'), ['randReadQd16Iops', 'randWriteQd16Iops']);
  const cardMemoryMiB = { [`${VOLUME_GIB} GiB volume`]: cardPeakMiB(blockVol), '100 GiB volume': cardPeakMiB(bigVol) };

  /** ext4 on a loop device over a plain (unencrypted) sparse image on the same file system. */
  const plainLoop = (name, losetupArgs = []) => {
    const image = path.join(work, `${name}.img`);
    fs.closeSync(fs.openSync(image, 'w'));
    fs.truncateSync(image, VOLUME_GIB * 2 ** 30);
    const dev = execFileSync('losetup', ['--find', '--show', ...losetupArgs, image], { encoding: 'utf8' }).trim();
    cleanups.push(() => execFileSync('losetup', ['-d', dev]));
    return path.join(ext4On(dev, name), 'bench.bin');
  };
  results.rawExt4 = runJobs('plain loop + ext4', plainLoop('raw-ext4'), BLOCK_JOBS);
  // The same in direct-I/O mode, as kmsvol's loop device runs: what the plain loop device's page cache is worth on the random jobs.
  results.rawExt4Dio = runJobs('plain loop in direct-I/O mode + ext4', plainLoop('raw-ext4-dio', ['--direct-io=on']), DIO_JOBS);

  const cipher = path.join(work, 'gcipher');
  const plain = path.join(work, 'gplain');
  fs.mkdirSync(cipher);
  fs.mkdirSync(plain);
  execFileSync('gocryptfs', ['-q', '-init', '-extpass', 'echo benchmark-password', '-scryptn', '10', cipher]);
  // The daemon gocryptfs leaves behind must not hold our pipes open (execFileSync would wait for it).
  execFileSync('gocryptfs', ['-q', '-nosyslog', '-extpass', 'echo benchmark-password', cipher, plain], { stdio: 'ignore' });
  cleanups.push(() => spawnSync('fusermount3', ['-u', plain]).status === 0 || spawnSync('fusermount', ['-u', plain]));
  results.gocryptfs = runJobs('gocryptfs', path.join(plain, 'bench.bin'), BLOCK_JOBS);

  log('The bare-file path:');
  const fileVol = newVolume();
  const device = JSON.parse(kv('ec2', 'attach-volume', '--volume-id', fileVol)).Device;
  cleanups.push(() => kv('ec2', 'detach-volume', '--volume-id', fileVol, '--force'));
  results.kmsvolFile = runJobs('kmsvol volume file', device, FILE_JOBS);
  results.rawFile = runJobs('raw file', path.join(work, 'raw.bin'), FILE_JOBS);

  const ratio = (a, b, jobs) => Object.fromEntries(jobs.map((k) => [k, +(results[a][k] / results[b][k]).toFixed(2)]));
  const ratios = {
    'kmsvol ext4 / gocryptfs': ratio('kmsvolExt4', 'gocryptfs', BLOCK_JOBS),
    'kmsvol ext4 / plain loop ext4': ratio('kmsvolExt4', 'rawExt4', BLOCK_JOBS),
    'kmsvol ext4 / plain loop ext4, direct I/O': ratio('kmsvolExt4', 'rawExt4Dio', DIO_JOBS),
    'kmsvol file / gocryptfs': ratio('kmsvolFile', 'gocryptfs', FILE_JOBS),
  };
  const out = {
    machine: machine(),
    gocryptfs: spawnSync('gocryptfs', ['-version'], { encoding: 'utf8' }).stdout.split('\n')[0],
    fio: spawnSync('fio', ['--version'], { encoding: 'utf8' }).stdout.trim(),
    sizeMiB: SIZE_MIB,
    runtimeSeconds: RUNTIME,
    results,
    ratios,
    cardPeakMemoryMiB: cardMemoryMiB,
  };
  if (chart) {
    const svg = await render(results, ratios);
    fs.writeFileSync(path.join(here, 'e2e.svg'), svg);
    out.chart = 'bench/e2e.svg';
  }
  if (json) console.log(JSON.stringify(out, null, 2));
  else {
    printMachine(out.machine);
    console.log(`${out.gocryptfs}; ${out.fio}; ${SIZE_MIB} MiB files, random jobs ${RUNTIME} s, page cache dropped before each job\n`);
    const pad = (s, n) => String(s).padStart(n);
    console.log(`${pad('', 22)}${BLOCK_JOBS.map((j) => pad(j, 18)).join('')}`);
    for (const [t, r] of Object.entries(results)) console.log(`${pad(t, 22)}${BLOCK_JOBS.map((j) => pad(r[j] ?? '', 18)).join('')}`);
    console.log('');
    for (const [pair, r] of Object.entries(ratios)) console.log(`${pad(pair, 30)}: ${JSON.stringify(r)}`);
    console.log(`\ncard peak memory (VmHWM, MiB): ${JSON.stringify(cardMemoryMiB)}`);
    if (chart) console.log('\nchart: bench/e2e.svg');
  }
} finally {
  cleanup();
}
