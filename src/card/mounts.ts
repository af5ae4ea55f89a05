import fs from 'node:fs';
import { umountFd } from '../native/paths.js';
import type { AttachmentRow } from '../volume/registry.js';
import type { HeldDir } from './paths.js';
import { walkMountDir } from './paths.js';
import { mountOfFd } from './system.js';

/** The file system type of a card's FUSE mount (fsconfig subtype "kmsvol", native/src/fuse_server.c). */
export const CARD_FSTYPE = 'fuse.kmsvol';

/**
 * Release the FUSE mount a dead card left at its attachment's mount_dir.
 *
 * Precondition: only the mount the card recorded is released, and through a
 * descriptor. The directory is reached by the same walk as attach
 * (card/paths.ts: no link followed, no foreign or writable directory
 * crossed, nothing created); what is mounted there is identified from the
 * kernel's tables (fdinfo's mnt_id, mountinfo's fstype and major:minor), not
 * by asking a FUSE server that is gone; it is released only when it is a
 * kmsvol FUSE mount whose device is the attachment's served_dev, with
 * umount2(/proc/self/fd/N, MNT_DETACH), never by name.
 *
 * Returns undefined when nothing of the card's is mounted there any more (or
 * it was released), or else why the path was left alone, for the event log.
 */
export function releaseStaleMount(a: Pick<AttachmentRow, 'mount_dir' | 'served_dev'>): string | undefined {
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
    if (m?.fstype === CARD_FSTYPE && a.served_dev != null && m.dev === a.served_dev) {
      umountFd(held.fd);
      return undefined;
    }
    if (m?.fstype === CARD_FSTYPE && a.served_dev == null)
      return `${a.mount_dir} holds a kmsvol FUSE mount, but the attachment recorded none (its card died before it was ready), so it was left alone. If no card serves it (kmsvol ec2 describe-volumes), run: umount -l ${a.mount_dir}`;
    if (!isRoot) return undefined; // nothing is mounted on the directory: the card's mount is gone
    return `${a.mount_dir} was left alone: what is mounted there now (${m.fstype}, device ${m.dev}) is not the card's FUSE mount (device ${a.served_dev ?? 'not recorded'}).`;
  } finally {
    fs.closeSync(held.fd);
  }
}
