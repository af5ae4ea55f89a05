import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

/** The OS pieces a card uses: mount tables, process liveness, /dev/kmsvol links (loop devices: card/loop.ts). */

/** Where the block device `rdev` (a stat's st_rdev) is mounted, if it is: the mount table's major:minor field, not its source name. */
export function mountPointOf(rdev: number): string | undefined {
  const id = `${Math.floor(rdev / 256) & 0xfff}:${(rdev & 0xff) | (Math.floor(rdev / 4096) & 0xfff00)}`;
  for (const l of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = l.split(' ');
    if (f[2] === id) return f[4];
  }
  return undefined;
}

/** A mount as /proc/self/mountinfo lists it. */
export interface MountInfo {
  id: number;
  /** st_dev of what it serves, as fstat reports it (glibc's makedev of its major:minor). */
  dev: number;
  /** The path inside its file system that is mounted ("/" for a whole one). */
  root: string;
  /** Where it is mounted, as the kernel prints it (only for messages). */
  mountPoint: string;
  /** "ext4", "fuse.kmsvol"... */
  fstype: string;
}

/** glibc's makedev(major, minor), the st_dev fstat gives for a major:minor. */
export function makedev(major: number, minor: number): number {
  return (minor & 0xff) + (major & 0xfff) * 0x100 + Math.floor(minor / 0x100) * 0x100000 + Math.floor(major / 0x1000) * 0x100000000;
}

/**
 * The mount a descriptor is on (mnt_id in /proc/self/fdinfo/N), as mountinfo
 * lists it. Read from the kernel's tables, not through the descriptor: fstat
 * on a dead card's FUSE mount would ask a server that is gone.
 */
export function mountOfFd(fd: number): MountInfo | undefined {
  const id = /^mnt_id:\s*(\d+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
  for (const l of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = l.split(' - ');
    const f = left?.split(' ') ?? [];
    if (f[0] !== id || !right) continue;
    const [major, minor] = f[2]!.split(':').map(Number);
    return { id: Number(id), dev: makedev(major!, minor!), root: f[3]!, mountPoint: f[4]!, fstype: right.split(' ')[0]! };
  }
  return undefined;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A card that has exited but not yet been reaped is a zombie: signals reach it, but it is gone.
  // (A card outlives the CLI that started it, so its reaper is init, which may take a second or more.)
  return !isZombie(pid);
}

function isZombie(pid: number, stat = `/proc/${pid}/stat`): boolean {
  let text: string;
  try {
    text = fs.readFileSync(stat, 'utf8');
  } catch {
    return true; // reaped between the two looks
  }
  // The state follows the command name, which is in parentheses and may itself contain ') '.
  const state = text.slice(text.lastIndexOf(')') + 2, text.lastIndexOf(')') + 3);
  return state === 'Z' || state === 'X';
}

/**
 * A process whose main thread has exited (a zombie, so processAlive says no) while some of its other threads have
 * not yet: they still hold its descriptors (a card's lock, its /dev/fuse), and may be waiting on its own FUSE mount.
 */
export function stillExiting(pid: number): boolean {
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return false;
  }
  return isZombie(pid) && tasks.some((t) => !isZombie(pid, `/proc/${pid}/task/${t}/stat`));
}

/** Where attached block devices are named by volume id, as Nitro's /dev/disk/by-id names EBS volumes. */
export const DEVICE_LINK_DIR = '/dev/kmsvol';

export function deviceLink(volumeId: string): string {
  return `${DEVICE_LINK_DIR}/${volumeId}`;
}

/**
 * Point /dev/kmsvol/<volume-id> at the volume's loop device (replacing a stale
 * link atomically). Precondition: the caller holds `dev` bound to the volume.
 * Any other link to `dev` is then stale (the kernel gave the number out again,
 * so the card that made it is gone) and is removed: /dev/kmsvol/B never
 * serves A's data.
 */
export function linkDevice(volumeId: string, dev: string): void {
  fs.mkdirSync(DEVICE_LINK_DIR, { recursive: true, mode: 0o755 });
  fs.chmodSync(DEVICE_LINK_DIR, 0o755);
  for (const name of fs.readdirSync(DEVICE_LINK_DIR)) {
    if (name !== volumeId && /^vol-[0-9a-f]+$/.test(name)) unlinkDevice(name, dev);
  }
  const tmp = `${deviceLink(volumeId)}.tmp-${process.pid}`;
  fs.rmSync(tmp, { force: true });
  fs.symlinkSync(dev, tmp);
  fs.renameSync(tmp, deviceLink(volumeId));
}

/** Remove /dev/kmsvol/<volume-id> if it still points at `dev` (another attach may have replaced it). */
export function unlinkDevice(volumeId: string, dev: string): void {
  try {
    if (fs.readlinkSync(deviceLink(volumeId)) === dev) fs.rmSync(deviceLink(volumeId), { force: true });
  } catch {
    /* no link: nothing to remove */
  }
}

/**
 * True when `pid` has been sent SIGKILL and has not exited: a card killed
 * while it waited on a request to its own FUSE mount (opening the served file,
 * LOOP_CONFIGURE's fsync) waits in the kernel for an answer that its killed
 * workers will never give, and cannot exit until its connection is aborted.
 */
export function killPending(pid: number): boolean {
  let status: string;
  try {
    status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return false;
  }
  const SIGKILL_BIT = 1n << 8n; // signal 9, in the pending masks of the thread and of the process
  return [...status.matchAll(/^(?:SigPnd|ShdPnd):\s*([0-9a-f]+)$/gm)].some((m) => (BigInt(`0x${m[1]}`) & SIGKILL_BIT) !== 0n);
}

/** Where the kernel lists FUSE connections (fusectl), each by its device number, with an `abort` file. */
const FUSE_CONNECTIONS = '/sys/fs/fuse/connections';

/**
 * Abort the FUSE connection of the mount whose st_dev is `dev`, as
 * `echo 1 > /sys/fs/fuse/connections/N/abort` does (mounting fusectl there
 * first when the system has not): every request waiting on it fails with
 * ENOTCONN, so a killed card stuck on its own mount exits. A directory
 * only the kernel writes, named by the connection's device number; false when
 * there is no such connection (it ended already).
 */
export function abortFuseConnection(dev: number): boolean {
  const major = Math.floor(dev / 256) & 0xfff;
  const minor = (dev & 0xff) | (Math.floor(dev / 4096) & 0xfff00);
  const abort = `${FUSE_CONNECTIONS}/${major * 2 ** 20 + minor}/abort`;
  const mounted = fs.readFileSync('/proc/self/mounts', 'utf8').includes(` ${FUSE_CONNECTIONS} fusectl `);
  if (!mounted) spawnSync('/bin/mount', ['-t', 'fusectl', 'fusectl', FUSE_CONNECTIONS]);
  try {
    fs.writeFileSync(abort, '1');
    return true;
  } catch {
    return false;
  }
}
