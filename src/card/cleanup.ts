import fs from 'node:fs';
import { openPrivate } from '../home.js';
import { lockExclusive } from '../native/index.js';
import type { Ec2Context } from '../volume/context.js';
import { Ec2Errors } from '../volume/errors.js';
import type { AttachmentRow, VolumeRow } from '../volume/registry.js';
import { retireGrant } from './grants.js';
import { releaseStaleLoop } from './loop.js';
import { recordedMountDev, releaseStaleMount } from './paths.js';
import { lockPath, socketPath } from './runtime.js';
import { abortFuseConnection, killPending, processAlive, stillExiting } from './system.js';

/**
 * Cleanup after a dead card, in one place: what every path that finds a card
 * gone (a reconcile, a forced detach, the end of a detach, an attach whose
 * card died) does with what the card left: its loop device (card/loop.ts),
 * its FUSE mount (card/paths.ts), its socket, its grant and its attachment.
 * Precondition, everywhere: only whoever holds the volume's lock touches them.
 */

/** Waits for the card to exit: polled, first every 2 ms (a detached card exits within milliseconds), then less often. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (let wait = 2; processAlive(pid); wait = Math.min(wait * 2, 25)) {
    if (Date.now() > end) throw new Error(`the card (pid ${pid}) did not exit within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, wait));
  }
}

/**
 * A card that was sent SIGKILL while it waited on a request to its own FUSE
 * mount (its killed workers will never answer, and the kernel waits
 * uninterruptibly) exits once its connection is aborted. Precondition: the
 * connection aborted is the one of the mount the card recorded, still at its
 * mount directory with the same unique id (card/paths.ts, recordedMountDev);
 * never one found by a device number alone, which another mount may have
 * taken since, nor for a pid that was reused.
 */
export function unstick(ctx: Ec2Context, volumeId: string, pid: number): void {
  if (!killPending(pid)) return;
  const a = ctx.registry.getAttachment(volumeId);
  const dev = a ? recordedMountDev(a) : undefined;
  if (dev !== undefined && abortFuseConnection(dev))
    ctx.events.record(volumeId, 'detachVolume', 'connection-aborted', `the card (pid ${pid}) was killed while it waited on its own FUSE mount`);
}

/** A card that died took its key with it; clean up its stale mount, loop device and lock. */
export async function reconcile(ctx: Ec2Context, v: VolumeRow, a: AttachmentRow): Promise<void> {
  if (processAlive(a.pid) && killPending(a.pid)) {
    unstick(ctx, v.volume_id, a.pid);
    await waitForExit(a.pid, 5000).catch(() => undefined);
  }
  // A killed card whose main thread is gone may have threads still exiting, holding the volume's lock (or stuck on
  // its own FUSE mount): free them and wait, briefly, so a card seen dead is cleaned up now, not on a later call.
  for (const end = Date.now() + 5000; stillExiting(a.pid) && Date.now() < end; ) {
    unstick(ctx, v.volume_id, a.pid);
    await new Promise((r) => setTimeout(r, 10));
  }
  // An attach in progress is alive while the process attaching it is (its card may not hold the lock yet).
  if (a.state === 'attaching' && processAlive(a.pid)) return;
  if (processAlive(a.pid)) {
    // A live pid may be a reused one: the lock says whether a card still holds the volume.
    const fd = openPrivate(lockPath(ctx.home, v.volume_id), 'a', true);
    const held = !lockExclusive(fd);
    fs.closeSync(fd);
    if (held) return;
  }
  await cleanupStale(ctx, v, a, 'detachVolume', 'card process exited');
}

/**
 * An attach that failed after its claim, whose card was killed after it
 * mounted (kill -9 or SIGTERM during attach): the mount it recorded goes with
 * the claim, once the volume's lock shows that no card holds the volume any more.
 */
export function releaseClaimedMount(ctx: Ec2Context, v: VolumeRow): void {
  const a = ctx.registry.getAttachment(v.volume_id);
  if (a?.state !== 'attaching' || a.pid !== process.pid || a.served_mnt == null) return;
  const lockFd = openPrivate(lockPath(ctx.home, v.volume_id), 'a', true);
  try {
    const left = lockExclusive(lockFd) ? releaseStaleMount(a) : undefined;
    if (left) ctx.events.record(v.volume_id, 'attachVolume', 'mount-left-alone', left);
  } finally {
    fs.closeSync(lockFd);
  }
}

/**
 * The end of a detach, once the card has stopped serving: its grant is
 * retired, and only then is the volume available. The grant is the same by
 * name on every attach of a volume (CreateGrant is idempotent by Name), so a
 * volume shown available while its grant was still being retired could be
 * attached again, by any process, and the new card lose the grant to the
 * retirement. Whoever holds the volume's lock finishes (a reconcile in another
 * process may be doing it already): this waits until the attachment of the
 * card `pid` is gone.
 */
export async function finishDetach(ctx: Ec2Context, v: VolumeRow, pid: number): Promise<void> {
  for (const end = Date.now() + 60_000; ctx.registry.getAttachment(v.volume_id)?.pid === pid; ) {
    const a = ctx.registry.getAttachment(v.volume_id)!;
    const lockFd = openPrivate(lockPath(ctx.home, v.volume_id), 'a', true);
    try {
      if (lockExclusive(lockFd)) return await cleanupLocked(ctx, v, a, 'detachVolume', '');
    } finally {
      fs.closeSync(lockFd);
    }
    if (Date.now() > end) throw Ec2Errors.incorrectState(`Volume '${v.volume_id}' is still detaching after 60 s; describe-volumes shows when it is available.`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Precondition: only whoever holds the volume's lock touches its socket and
 * run files. Cleanup takes the lock first and does nothing when a live card
 * (a new attach that won the race) holds it.
 */
export async function cleanupStale(ctx: Ec2Context, v: VolumeRow, a: AttachmentRow, event: string, cause: string): Promise<void> {
  const lockFd = openPrivate(lockPath(ctx.home, v.volume_id), 'a', true);
  try {
    if (!lockExclusive(lockFd)) return;
    await cleanupLocked(ctx, v, a, event, cause);
  } finally {
    fs.closeSync(lockFd);
  }
}

async function cleanupLocked(ctx: Ec2Context, v: VolumeRow, a: AttachmentRow, event: string, cause: string): Promise<void> {
  // A dead card's loop device freed itself (autoclear) unless something still holds it open; it is
  // released only if it is still the card's, never by its number alone (card/loop.ts).
  releaseStaleLoop(a);
  // The dead card's FUSE mount, reached without following a link and released through a descriptor, only if it is the one recorded.
  const left = releaseStaleMount(a);
  if (left) ctx.events.record(v.volume_id, event, 'mount-left-alone', left);
  fs.rmSync(socketPath(ctx.home, v.volume_id), { force: true });
  // Precondition: the grant is retired before the volume is available (see finishDetach).
  await retireGrant(ctx, v.volume_id, a.grant_token);
  const released = ctx.registry.write(() => {
    // Another process may have finished this attachment already, and a new one begun.
    const now = ctx.registry.getAttachment(v.volume_id);
    if (now?.pid !== a.pid || now.attach_time !== a.attach_time) return false;
    ctx.registry.deleteAttachment(v.volume_id);
    ctx.registry.setVolumeState(v.volume_id, 'available');
    return true;
  });
  if (released) ctx.events.record(v.volume_id, event, 'available', cause);
}
