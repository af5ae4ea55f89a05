import fs from 'node:fs';
import { run } from '../exec.js';

/** The OS pieces a card uses: loop devices, mount tables, process liveness. */

/**
 * A loop device over the decrypted volume file, in direct-I/O mode: the loop
 * driver then sends its requests to the card asynchronously, many at once,
 * instead of one at a time from its worker through a second page cache.
 */
export async function losetupAttach(file: string): Promise<string> {
  return (await run('losetup', ['--find', '--show', '--direct-io=on', file])).trim();
}

export async function losetupDetach(dev: string): Promise<void> {
  await run('losetup', ['-d', dev]);
}

/** True when something holds the loop device: a mounted filesystem or a holder (dm, md). */
export function loopBusy(dev: string): boolean {
  const name = dev.replace(/^\/dev\//, '');
  try {
    if (fs.readdirSync(`/sys/block/${name}/holders`).length > 0) return true;
  } catch {
    return false;
  }
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' - ')[1]?.split(' ')[1] === dev);
}

/** Where `dev` is mounted, if it is. */
export function mountPointOf(dev: string): string | undefined {
  for (const l of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = l.split(' - ');
    if (right?.split(' ')[1] === dev) return left!.split(' ')[4];
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

function isZombie(pid: number): boolean {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return true; // reaped between the two looks
  }
  // The state follows the command name, which is in parentheses and may itself contain ') '.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state === 'Z' || state === 'X';
}

/** Which loop devices are backed by `file` (losetup -j). */
export async function loopsFor(file: string): Promise<string[]> {
  const out = await run('losetup', ['-j', file]).catch(() => '');
  return out
    .split('\n')
    .map((l) => l.split(':')[0]!)
    .filter(Boolean);
}

/** Where attached block devices are named by volume id, as Nitro's /dev/disk/by-id names EBS volumes. */
export const DEVICE_LINK_DIR = '/dev/kmsvol';

export function deviceLink(volumeId: string): string {
  return `${DEVICE_LINK_DIR}/${volumeId}`;
}

/** Point /dev/kmsvol/<volume-id> at the volume's loop device (replacing a stale link atomically). */
export function linkDevice(volumeId: string, dev: string): void {
  fs.mkdirSync(DEVICE_LINK_DIR, { recursive: true, mode: 0o755 });
  fs.chmodSync(DEVICE_LINK_DIR, 0o755);
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
