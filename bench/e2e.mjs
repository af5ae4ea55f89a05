// npm run bench -- e2e [--json] [--quick]
// fio through the mounted kmsvol volume file, and the same four jobs in the same
// run on gocryptfs (Debian package) and on a raw file: sequential 1 MiB write and
// read, random 4 KiB read and write. Needs root, FUSE, fio and gocryptfs
// (scripts/ensure-system-deps.sh bench installs them).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine, printMachine } from './env.mjs';

const json = process.argv.includes('--json');
const quick = process.argv.includes('--quick');
const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const bin = path.join(root, 'bin/kmsvol.js');
const SIZE_MIB = quick ? 128 : 512;
const RUNTIME = quick ? 3 : 10;

execFileSync('bash', [path.join(root, 'scripts/ensure-system-deps.sh'), 'bench'], { stdio: 'inherit' });
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-e2e-'));
const cleanups = [];
const log = (m) => !json && console.log(m);

function fio(file, name, args) {
  const out = execFileSync('fio', ['--output-format=json', `--name=${name}`, `--filename=${file}`, '--ioengine=psync', '--invalidate=1', ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return JSON.parse(out.slice(out.indexOf('{'))).jobs[0];
}

function runJobs(label, file) {
  log(`  ${label}: ${file}`);
  const size = `--size=${SIZE_MIB}M`;
  const w = fio(file, 'seqwrite', ['--rw=write', '--bs=1M', size, '--end_fsync=1']);
  const r = fio(file, 'seqread', ['--rw=read', '--bs=1M', size]);
  const rr = fio(file, 'randread', ['--rw=randread', '--bs=4k', size, '--time_based', `--runtime=${RUNTIME}`]);
  const rw = fio(file, 'randwrite', ['--rw=randwrite', '--bs=4k', size, '--time_based', `--runtime=${RUNTIME}`, '--fsync=32']);
  return {
    seqWriteMiBps: Math.round(w.write.bw / 1024),
    seqReadMiBps: Math.round(r.read.bw / 1024),
    randReadIops: Math.round(rr.read.iops),
    randWriteIops: Math.round(rw.write.iops),
  };
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

try {
  const results = {};
  // kmsvol: a 1 GiB encrypted volume, attached; fio on the decrypted volume file.
  const home = path.join(work, 'home');
  const env = { ...process.env, KMSVOL_HOME: home };
  const kv = (...a) => execFileSync(process.execPath, [bin, ...a], { env, encoding: 'utf8' }).trim();
  const key = kv('kms', 'create-key', '--query', 'KeyMetadata.KeyId', '--output', 'text');
  const vol = kv('ec2', 'create-volume', '--size', '1', '--encrypted', '--kms-key-id', key, '--query', 'VolumeId', '--output', 'text');
  const device = JSON.parse(kv('ec2', 'attach-volume', '--volume-id', vol)).Device;
  cleanups.push(() => kv('ec2', 'detach-volume', '--volume-id', vol, '--force'));
  log('Running the four fio jobs on each target:');
  results.kmsvol = runJobs('kmsvol', device);

  // gocryptfs: a file of the same size in a fresh gocryptfs mount.
  const cipher = path.join(work, 'gcipher');
  const plain = path.join(work, 'gplain');
  fs.mkdirSync(cipher);
  fs.mkdirSync(plain);
  execFileSync('gocryptfs', ['-q', '-init', '-extpass', 'echo benchmark-password', '-scryptn', '10', cipher]);
  execFileSync('gocryptfs', ['-q', '-extpass', 'echo benchmark-password', cipher, plain]);
  cleanups.push(() => spawnSync('fusermount3', ['-u', plain]).status === 0 || spawnSync('fusermount', ['-u', plain]));
  results.gocryptfs = runJobs('gocryptfs', path.join(plain, 'bench.bin'));

  // The raw backing file system, no encryption.
  results.raw = runJobs('raw', path.join(work, 'raw.bin'));

  const ratio = (k) => +(results.kmsvol[k] / results.gocryptfs[k]).toFixed(2);
  const out = {
    machine: machine(),
    gocryptfs: spawnSync('gocryptfs', ['-version'], { encoding: 'utf8' }).stdout.split('\n')[0],
    fio: spawnSync('fio', ['--version'], { encoding: 'utf8' }).stdout.trim(),
    kmsvol: results.kmsvol,
    gocryptfs: results.gocryptfs,
    raw: results.raw,
    kmsvolVsGocryptfs: Object.fromEntries(Object.keys(results.kmsvol).map((k) => [k, ratio(k)])),
  };
  out.gocryptfsVersion = spawnSync('gocryptfs', ['-version'], { encoding: 'utf8' }).stdout.split('\n')[0];
  out.gocryptfs = results.gocryptfs;
  if (json) console.log(JSON.stringify(out));
  else {
    printMachine(out.machine);
    console.log(`${out.gocryptfsVersion}; ${out.fio}; ${SIZE_MIB} MiB files, random jobs ${RUNTIME}s, psync, buffered with invalidate=1\n`);
    const pad = (s, n) => String(s).padStart(n);
    console.log(`${pad('', 10)} ${pad('seq write MiB/s', 16)} ${pad('seq read MiB/s', 15)} ${pad('rand read IOPS', 15)} ${pad('rand write IOPS', 16)}`);
    for (const t of ['kmsvol', 'gocryptfs', 'raw']) {
      const r = results[t];
      console.log(`${pad(t, 10)} ${pad(r.seqWriteMiBps, 16)} ${pad(r.seqReadMiBps, 15)} ${pad(r.randReadIops, 15)} ${pad(r.randWriteIops, 16)}`);
    }
    console.log(`\nkmsvol / gocryptfs: ${JSON.stringify(out.kmsvolVsGocryptfs)}`);
  }
} finally {
  cleanup();
}
