import fs from 'node:fs';
import path from 'node:path';
import { mkdirAt, mountIdOf, openAt, openRoot, umountFd } from '../native/paths.js';
import { Ec2Errors } from '../volume/errors.js';
import type { AttachmentRow } from '../volume/registry.js';
import { mountOfFd } from './system.js';

/**
 * The mount directory of an attach (`attach-volume --device DIR`, or the
 * home's run/<volume>), walked as systemd's chase() walks a path: from a
 * descriptor of "/", one component at a time with
 * openat(O_PATH | O_NOFOLLOW | O_DIRECTORY), each directory's owner and mode
 * checked with fstat on the descriptor held, and the next step taken from
 * that descriptor. No name is resolved twice: what is checked is what is
 * used, and the mount goes on the last descriptor (native/src/fuse_server.c).
 *
 * Precondition (the path rule): nobody but root or the caller can redirect
 * the path. No component is a symbolic link; every directory on the way is
 * owned by root or the caller and writable by neither group nor others,
 * except a sticky one (as /tmp) whose next component already exists (and is
 * then itself checked): the sticky bit keeps others from renaming what they
 * do not own, and the walk holds descriptors. kmsvol never creates a
 * directory inside one others can write to, sticky or not: another user
 * could create it first. Missing directories elsewhere are created one level
 * at a time with mkdirat under the held parent (0700), then opened and
 * checked like any other.
 */

/** A directory the walk reached: its O_PATH descriptor (the caller closes it) and the path it stands for. */
export interface HeldDir {
  fd: number;
  path: string;
}

/**
 * `check`: refuse what the rule refuses, creating nothing (attach's early
 * check in the caller's process, and DryRun). `create`: also create what is
 * missing, and return the directory held (the card, which mounts on it).
 * `existing`: return the directory held, or undefined when it is missing
 * (cleanup after a dead card).
 */
export type WalkMode = 'check' | 'create' | 'existing';

const me = () => process.geteuid?.() ?? 0;

/** A refusal, in EC2's words for attach-volume's --device. */
function invalid(dir: string, why: string): Error {
  return Ec2Errors.invalidParameter(`Value (${dir}) for parameter device is invalid: ${why}`);
}

/** fstat of a held directory; a FUSE mount whose server has gone (ENOTCONN) is said to be one, with what to do. */
function statHeld(at: string, fd: number): fs.Stats {
  try {
    return fs.fstatSync(fd);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOTCONN') throw e;
    throw Ec2Errors.incorrectState(
      `${at} is a FUSE mount whose server has gone (ENOTCONN). If no card serves it (kmsvol ec2 describe-volumes cleans up after the cards it knows), run: umount -l ${at}`,
    );
  }
}

/** What the rule says of directory `at` (held as `st`) on the way to `dir`. */
function checkDir(dir: string, at: string, st: fs.Stats): void {
  if (!st.isDirectory()) throw invalid(dir, `${at} is not a directory.`);
  if (st.uid !== 0 && st.uid !== me())
    throw invalid(dir, `${at} belongs to uid ${st.uid}, who could replace what is below it. Choose a directory root owns, such as /mnt/kmsvol.`);
  if (st.mode & 0o022 && !(st.mode & 0o1000))
    throw invalid(
      dir,
      `${at} is writable by group or others (mode ${(st.mode & 0o777).toString(8)}), who could replace what is below it. Run: chmod go-w ${at}, or choose another directory.`,
    );
}

/** Open `name` in `parent` as a directory; undefined when it is missing. A link or a non-directory is refused, by name. */
function openDir(dir: string, parent: number, name: string, at: string): number | undefined {
  try {
    return openAt(parent, name, true);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR' || code === 'ELOOP') {
      // Only to word the refusal: the link (or file) itself, opened without following it.
      let what: 'link' | 'file' | 'gone' = 'gone';
      try {
        const fd = openAt(parent, name, false);
        what = fs.fstatSync(fd).isSymbolicLink() ? 'link' : 'file';
        fs.closeSync(fd);
      } catch {
        /* gone meanwhile: the refusal stands */
      }
      if (what === 'link') throw invalid(dir, `${at} is a symbolic link, and kmsvol never mounts through one. Give the real path (realpath ${at}).`);
      if (what === 'file') throw invalid(dir, `${at} is not a directory.`);
      throw invalid(
        dir,
        `${at} changed while kmsvol looked at it (a symbolic link or a file came and went), and kmsvol never mounts through one. Give a path only root or you can change.`,
      );
    }
    if (code === 'EACCES') throw invalid(dir, `${at} cannot be searched by uid ${me()}. Choose a directory you can reach.`);
    throw e;
  }
}

/**
 * Walk to `dir` (absolute) under the path rule; see WalkMode. Refusals are
 * InvalidParameterValue naming the directory and what to do.
 */
export function walkMountDir(dir: string, mode: 'create'): HeldDir;
export function walkMountDir(dir: string, mode: 'existing'): HeldDir | undefined;
export function walkMountDir(dir: string, mode: 'check'): void;
export function walkMountDir(dir: string, mode: WalkMode): HeldDir | undefined {
  if (!path.isAbsolute(dir)) throw invalid(dir, 'give an absolute path, for example --device /mnt/kmsvol.');
  const parts = path.resolve(dir).split('/').filter(Boolean);
  for (const p of parts) if (Buffer.byteLength(p) > 255) throw invalid(dir, `the component ${p.slice(0, 32)}... is longer than 255 bytes.`);
  let fd = openRoot();
  let at = '/';
  try {
    checkDir(dir, at, statHeld(at, fd));
    for (const [i, name] of parts.entries()) {
      const here = statHeld(at, fd);
      const next = path.join(at, name);
      const othersMayWrite = (here.mode & 0o022) !== 0; // then sticky: checkDir refused it otherwise
      let child = openDir(dir, fd, name, next);
      if (child === undefined) {
        if (othersMayWrite)
          throw invalid(
            dir,
            `${next} does not exist, and kmsvol does not create a directory in ${at}, where other users can create files (another user could make it first). Create it yourself (mkdir -m 0700 ${next}), or choose another directory.`,
          );
        if (mode === 'check') return undefined; // the card creates the rest, under a directory only root or the caller can write
        if (mode === 'existing') return undefined;
        try {
          mkdirAt(fd, name, 0o700);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // a race: what is there now goes through the same checks
        }
        child = openDir(dir, fd, name, next);
        if (child === undefined) throw invalid(dir, `${next} was removed while kmsvol created it. Try again.`);
      }
      fs.closeSync(fd);
      fd = child;
      at = next;
      // Cleanup stops at the last descriptor without fstat: a dead card's FUSE mount would answer ENOTCONN.
      if (mode !== 'existing' || i < parts.length - 1) checkDir(dir, at, statHeld(at, fd));
    }
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  if (mode === 'check') {
    fs.closeSync(fd);
    return undefined;
  }
  return { fd, path: at };
}

/** The file system type of a card's FUSE mount (fsconfig subtype "kmsvol", native/src/fuse_server.c). */
export const CARD_FSTYPE = 'fuse.kmsvol';

/**
 * Release the FUSE mount a dead card left at its attachment's mount_dir.
 *
 * Precondition: only the mount the card recorded is released, and through a
 * descriptor. The directory is reached by the same walk as attach (no link
 * followed, no foreign or writable directory crossed, nothing created); what
 * is mounted there is identified by the unique id of its mount (statx
 * STATX_MNT_ID_UNIQUE, answered without asking the FUSE server that is gone),
 * which no other mount gets until reboot, not by its device number (FUSE's
 * are reused: another card's live mount on the same directory may have the
 * dead one's); it is released only when that id is the attachment's
 * served_mnt, with umount2(/proc/self/fd/N, MNT_DETACH), never by name.
 *
 * Returns undefined when nothing of the card's is mounted there any more (or
 * it was released), or else why the path was left alone, for the event log.
 */
export function releaseStaleMount(a: Pick<AttachmentRow, 'mount_dir' | 'served_mnt'>): string | undefined {
  if (!a.mount_dir) return undefined;
  let held: HeldDir | undefined;
  try {
    held = walkMountDir(a.mount_dir, 'existing');
  } catch (e) {
    return `${a.mount_dir} was left alone: ${(e as Error).message}`;
  }
  if (!held) return undefined; // the directory is gone, and with it any mount on it
  try {
    const m = mountOfFd(held.fd);
    const isRoot = m !== undefined && m.root === '/' && m.mountPoint === held.path; // for the message only: umount2 decides
    if (m?.fstype === CARD_FSTYPE && a.served_mnt != null && mountIdOf(held.fd) === a.served_mnt) {
      umountFd(held.fd);
      return undefined;
    }
    if (m?.fstype === CARD_FSTYPE && a.served_mnt == null)
      return `${a.mount_dir} holds a kmsvol FUSE mount, but the attachment recorded none (its card died before it mounted, or the kernel gives no unique mount ids), so it was left alone. If no card serves it (kmsvol ec2 describe-volumes), run: umount -l ${a.mount_dir}`;
    if (!isRoot) return undefined; // nothing is mounted on the directory: the card's mount is gone
    return `${a.mount_dir} was left alone: what is mounted there now (${m.fstype}, device ${m.dev}) is not the card's FUSE mount.`;
  } finally {
    fs.closeSync(held.fd);
  }
}

/**
 * The device number of the FUSE mount a card recorded, while that very mount
 * (the same unique mount id, served_mnt) is still at the attachment's mount
 * directory; undefined otherwise. Read from the kernel's tables and statx
 * without a request to the FUSE server: for aborting the connection of a card
 * stuck on its own mount (card/cleanup.ts, unstick), and never another's, as
 * a device number alone may be (FUSE's are reused).
 */
export function recordedMountDev(a: Pick<AttachmentRow, 'mount_dir' | 'served_mnt'>): number | undefined {
  if (!a.mount_dir || a.served_mnt == null) return undefined;
  let held: HeldDir | undefined;
  try {
    held = walkMountDir(a.mount_dir, 'existing');
  } catch {
    return undefined;
  }
  if (!held) return undefined;
  try {
    const m = mountOfFd(held.fd);
    return m?.fstype === CARD_FSTYPE && mountIdOf(held.fd) === a.served_mnt ? m.dev : undefined;
  } finally {
    fs.closeSync(held.fd);
  }
}
