import fs from 'node:fs';
import { EngineError } from '../native/index.js';
import { attachLoop, clearLoop, LO_FLAGS_DIRECT_IO, loopOpeners, loopStatus, openLoop, setLoopCapacity } from '../native/loop.js';
import type { AttachmentRow } from '../volume/registry.js';
import { mountPointOf, unlinkDevice } from './system.js';

/**
 * A card's loop device, held by descriptor. The rule (docs/threat-model.md,
 * "Loop devices"): a loop device is never released by its number alone.
 * - It is attached with LOOP_CONFIGURE on the decrypted file's descriptor,
 *   with autoclear: the kernel frees it when the card's descriptor, and every
 *   other, is gone (a card killed with -9 included).
 * - While the card holds it, the number is the card's: nothing else can bind
 *   it, so the card may name it (/dev/loopN, sysfs) and acts on the descriptor.
 * - After a card died, cleanup opens the recorded number and releases it only
 *   when LOOP_GET_STATUS64 on that descriptor shows the card's tag and backing
 *   inode (releaseStaleLoop).
 */

/** lo_file_name of a volume's loop device: what cleanup checks besides the backing inode (an anonymous st_dev may be reused). */
export function loopTag(volumeId: string): string {
  return `kmsvol:${volumeId}`;
}

/** The device number of a loop device name recorded at attach: /dev/loopN, or undefined. */
function loopNumber(dev: string): number | undefined {
  const m = /^\/dev\/loop(\d{1,7})$/.exec(dev);
  return m ? Number(m[1]) : undefined;
}

export class HeldLoop {
  private closed = false;
  /** The block device's st_rdev (its major:minor), for the mount table and the /proc scan. */
  private readonly rdev: number;

  private constructor(
    private readonly fd: number,
    readonly number: number,
  ) {
    this.rdev = fs.fstatSync(fd).rdev;
  }

  /**
   * A loop device over `fileFd`, the decrypted volume file opened read-write
   * (the device keeps its own reference: the caller may close `fileFd`).
   * Postcondition: the kernel serves it in direct-I/O mode (the loop driver
   * then sends the card many requests at once, with no second page cache).
   */
  static attach(fileFd: number, volumeId: string): HeldLoop {
    const { fd, number } = attachLoop(fileFd, loopTag(volumeId));
    const loop = new HeldLoop(fd, number);
    if (!((loopStatus(fd)?.flags ?? 0) & LO_FLAGS_DIRECT_IO)) {
      loop.release();
      throw new EngineError(
        'IoError',
        `The kernel did not put /dev/loop${number} in direct-I/O mode over the decrypted volume file; attach without --loop, or on a kernel whose loop driver supports direct I/O on FUSE.`,
      );
    }
    return loop;
  }

  get path(): string {
    return `/dev/loop${this.number}`;
  }

  /** Where a file system on the device is mounted, if one is. */
  mountPoint(): string | undefined {
    return mountPointOf(this.rdev);
  }

  /**
   * A descriptor of the file system mounted on the device, for FIFREEZE and
   * syncfs (never fsfreeze or sync on its path, which another user might
   * redirect to another file system between a look and a use), or undefined
   * when none is mounted. Precondition: what the mount point's name leads to
   * is the file system on this device (its st_dev is the device's number).
   */
  openFileSystem(): number | undefined {
    const at = this.mountPoint();
    if (at === undefined) return undefined;
    const fd = fs.openSync(unescapeMountPath(at), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    if (fs.fstatSync(fd).dev === this.rdev) return fd;
    fs.closeSync(fd);
    throw new EngineError(
      'IoError',
      `${at} no longer leads to the file system on ${this.path}; it was moved or covered. Flush it yourself (sync -f) and try again.`,
    );
  }

  /**
   * Why a plain detach must wait, or undefined when only the card holds the
   * device: a mounted file system, a holder (dm, md), swap, or any process
   * with a descriptor on it (what fuser -m /dev/loopN shows).
   */
  busy(): string | undefined {
    const mnt = this.mountPoint();
    if (mnt) return `${this.path} is mounted on ${mnt}. Unmount it first`;
    let holders: string[] = [];
    try {
      holders = fs.readdirSync(`/sys/block/loop${this.number}/holders`);
    } catch {
      /* no sysfs entry: no holders */
    }
    if (holders.length) return `${this.path} is held by ${holders.join(', ')}. Release it first`;
    const swaps = fs.readFileSync('/proc/swaps', 'utf8').split('\n').slice(1);
    if (swaps.some((l) => l.split(/\s+/)[0] === this.path)) return `${this.path} is in use as swap. Run swapoff ${this.path} first`;
    const pids = loopOpeners(this.fd, process.pid);
    if (pids.length) return `${this.path} is open by ${pids.map((p) => `pid ${p} (${commOf(p)})`).join(', ')}. Close it first`;
    return undefined;
  }

  /** Flush what the page cache of the device holds down to the card (sync /dev/loopN, on the held descriptor). */
  flush(): Promise<void> {
    return new Promise((resolve, reject) => fs.fsync(this.fd, (e) => (e ? reject(e) : resolve())));
  }

  /** The device takes the decrypted file's new size (losetup -c, on the held descriptor). */
  setCapacity(): void {
    setLoopCapacity(this.fd);
  }

  /**
   * For a plain detach: release the device only if the card is its sole
   * opener, decided by the kernel in one step, so that nobody who opened it
   * after busy() looked is cut off. LOOP_CLR_FD on the held descriptor puts a
   * device nobody else has open in rundown (no new opener gets in, and the
   * last close frees it: LOOP_GET_STATUS64 then says it is not bound), and
   * only marks one that others have open for autoclear, which it already is:
   * then it stays bound and served, and this answers false.
   */
  releaseIfSole(): boolean {
    if (this.closed) return true;
    clearLoop(this.fd);
    if (loopStatus(this.fd) !== null) return false;
    this.closed = true;
    fs.closeSync(this.fd);
    return true;
  }

  /** LOOP_CLR_FD on the held descriptor, then close it: the kernel frees the device once no one else has it open. Idempotent. */
  release(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      clearLoop(this.fd); // false: someone already released it (losetup -d by hand); it holds nothing of ours
    } finally {
      fs.closeSync(this.fd);
    }
  }
}

/** A path as /proc/self/mountinfo prints it: space, tab, newline and backslash are octal escapes. */
function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

function commOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return 'exited';
  }
}

/**
 * After a card died (its lock free): release its loop device only if it is
 * still the card's, and drop /dev/kmsvol/<volume> if it points at the
 * recorded device (the card that made it is gone, whoever has the number now).
 * Precondition: the device is released only when, on one descriptor,
 * LOOP_GET_STATUS64 shows the card's tag and the backing st_dev/st_ino the
 * card recorded; an unbound device (autoclear freed it) or another's is left
 * alone, and so is one recorded without its backing inode.
 * Returns what it found: 'released', 'free', 'not ours' or 'unverifiable'.
 */
export function releaseStaleLoop(a: Pick<AttachmentRow, 'volume_id' | 'loop_device' | 'served_dev' | 'served_ino'>): string {
  if (!a.loop_device) return 'free';
  unlinkDevice(a.volume_id, a.loop_device);
  const n = loopNumber(a.loop_device);
  if (n === undefined || a.served_dev == null || a.served_ino == null) return 'unverifiable';
  let fd: number;
  try {
    fd = openLoop(n);
  } catch {
    return 'free'; // no such device any more
  }
  try {
    const st = loopStatus(fd);
    if (!st) return 'free';
    if (st.name !== loopTag(a.volume_id) || st.backingDev !== a.served_dev || st.backingIno !== a.served_ino) return 'not ours';
    return clearLoop(fd) ? 'released' : 'free';
  } finally {
    fs.closeSync(fd);
  }
}
