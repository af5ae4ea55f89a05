// The three targets of the e2e bench, set up as their users set them up:
//  - kmsvol: a volume attached through the CLI with --loop, ext4 on /dev/loopN;
//  - plain: ext4 on a loop device over a plain sparse image in the same file
//    system, as `losetup --find --show` makes it (buffered mode);
//  - gocryptfs: a gocryptfs mount over a directory in the same file system;
//  - control (--control): a second gocryptfs mount like the first, the A/A
//    control: how far two identical targets differ on this machine.
// Every step is registered for undoing (sys.mjs) before the next one runs.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { onUndo, run } from './sys.mjs';

const ok = (cmd, args, env = process.env) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${(r.stderr || r.stdout || `exit ${r.status}`).trim()}`);
};
/** Unmount; a mount still busy (a job killed mid-way) is detached lazily rather than left behind. */
const unmount = (dir) => {
  if (spawnSync('umount', [dir]).status !== 0) ok('umount', ['-l', dir]);
};

/** The process that has a descriptor on a path `match` accepts (and passes `also`), by a scan of /proc. */
function pidHolding(match, also = () => true) {
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (also(pid) && fs.readdirSync(`/proc/${pid}/fd`).some((fd) => match(fs.readlinkSync(`/proc/${pid}/fd/${fd}`)))) return Number(pid);
    } catch {
      /* gone, or a kernel thread */
    }
  }
  return undefined;
}

/** CPU seconds (user + system, all threads) a process has used, from /proc/PID/stat; undefined without a process. */
export function cpuSeconds(pid) {
  if (!pid) return undefined;
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const after = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(after[11]) + Number(after[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/** sysfs queue settings of a loop device: what the run asked for, then what the kernel has. */
function tuneQueue(dev, cfg) {
  const q = `/sys/block/${path.basename(dev)}/queue`;
  if (cfg.readAheadKb !== undefined) fs.writeFileSync(`${q}/read_ahead_kb`, String(cfg.readAheadKb));
  if (cfg.maxSectorsKb !== undefined) fs.writeFileSync(`${q}/max_sectors_kb`, String(cfg.maxSectorsKb));
  const read = (f) => fs.readFileSync(`${q}/${f}`, 'utf8').trim();
  const dio = fs.readFileSync(`/sys/block/${path.basename(dev)}/loop/dio`, 'utf8').trim() === '1';
  return { readAheadKb: Number(read('read_ahead_kb')), maxSectorsKb: Number(read('max_sectors_kb')), directIo: dio };
}

/** A target whose file system is ext4 on `dev` mounted on `dir`; mkfs() makes it anew (with mkfs.ext4's defaults unless cfg.lazy is false). */
function ext4Target(name, dev, dir, cfg) {
  fs.mkdirSync(dir, { recursive: true });
  let mounted = false;
  onUndo(`umount ${dir}`, () => mounted && unmount(dir));
  return {
    name,
    dev,
    dir,
    async mkfs() {
      if (mounted) {
        await run('umount', [dir]);
        mounted = false;
      }
      await run('mkfs.ext4', ['-q', '-F', ...(cfg.lazy === false ? ['-E', 'lazy_itable_init=0,lazy_journal_init=0'] : []), dev]);
      await run('mount', [dev, dir]);
      mounted = true;
    },
    /** Empty the file system for the next repetition without making it anew. */
    async clear() {
      for (const f of fs.readdirSync(dir)) if (f !== 'lost+found') fs.rmSync(path.join(dir, f), { recursive: true, force: true });
    },
  };
}

export async function kmsvolTarget(work, cfg, kv, env) {
  const key = (await kv('kms', 'create-key', '--query', 'KeyMetadata.KeyId', '--output', 'text')).trim();
  const vol = (
    await kv('ec2', 'create-volume', '--size', String(cfg.volumeGiB), '--encrypted', '--kms-key-id', key, '--query', 'VolumeId', '--output', 'text')
  ).trim();
  const attached = JSON.parse(await kv('ec2', 'attach-volume', '--volume-id', vol, '--loop'));
  onUndo(`detach ${vol}`, () => ok(process.execPath, [cfg.bin, 'ec2', 'detach-volume', '--volume-id', vol, '--force'], env));
  const dev = attached.LoopDevice;
  if (cfg.kmsvolDio !== undefined) await run('losetup', [`--direct-io=${cfg.kmsvolDio ? 'on' : 'off'}`, dev]);
  const t = ext4Target('kmsvol', dev, path.join(work, 'kmsvol'), cfg);
  t.queue = tuneQueue(dev, cfg);
  t.volumeId = vol;
  const lock = path.join(work, 'home', 'run', `${vol}.lock`);
  t.pid = pidHolding((p) => p === lock); // the card: the process holding the volume's lock file open
  return t;
}

export async function plainTarget(work, cfg) {
  const image = path.join(work, 'plain.img');
  fs.writeFileSync(image, '', { mode: 0o600 });
  fs.truncateSync(image, cfg.volumeGiB * 2 ** 30);
  const dev = (await run('losetup', ['--find', '--show', ...(cfg.plainDio ? ['--direct-io=on'] : []), image])).trim();
  onUndo(`losetup -d ${dev}`, () => ok('losetup', ['-d', dev]));
  const t = ext4Target('plain', dev, path.join(work, 'plain'), cfg);
  t.queue = tuneQueue(dev, cfg);
  return t;
}

export async function gocryptfsTarget(work, name = 'gocryptfs') {
  const cipher = path.join(work, `${name}.cipher`);
  const dir = path.join(work, name);
  fs.mkdirSync(cipher);
  fs.mkdirSync(dir);
  await run('gocryptfs', ['-q', '-init', '-extpass', 'echo benchmark-password', '-scryptn', '10', cipher]);
  await run('gocryptfs', ['-q', '-nosyslog', '-extpass', 'echo benchmark-password', cipher, dir], { stdio: 'ignore' });
  onUndo(`umount ${dir}`, () => unmount(dir));
  return {
    name,
    dir,
    pid: pidHolding(
      (p) => p === '/dev/fuse',
      (pid) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(cipher),
    ),
    mkfs: undefined, // no block device: nothing to make
    async clear() {
      for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
    },
  };
}
