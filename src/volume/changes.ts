import fs from 'node:fs';
import { ensureDir, openPrivate } from '../home.js';
import { lockExclusive } from '../native/index.js';
import type { ChangeRecord } from './changefile.js';
import { blocksOf, blocksSet, changesPath, readChanges, sameStamp, stampOf, trustedChanges, writeChanges } from './changefile.js';
import type { Ec2Context } from './context.js';
import { getVolume } from './context.js';
import { imageFile, volumeLockPath } from './images.js';
import { openImage } from './luks2.js';
import { CHANGE_BLOCK, GiB } from './offsets.js';

/**
 * What a snapshot of a volume must read: the CHANGE_BLOCKs written since the
 * volume's base snapshot (its last one), or 'all' when that is not known for
 * certain (no base yet, a card that died, a change file missing or corrupt,
 * an image written outside kmsvol). See volume/changefile.ts and card/tracking.ts.
 */
export interface Changes {
  /** The snapshot `changed` is relative to; null: none (then `changed` is 'all'). */
  base: string | null;
  /** Block numbers (byte offset / CHANGE_BLOCK in the volume's data) written since `base`. */
  changed: Set<number> | 'all';
  /** Blocks the volume has now. */
  blocks: number;
  /**
   * The snapshot is durable (its data and its registry row): it is the new
   * base, and the blocks reported here are no longer changed. Once.
   */
  commit(snapshotId: string): Promise<void>;
  /** The snapshot failed: the blocks stay changed. Once (after commit, nothing). */
  abort(): Promise<void>;
}

/**
 * Begin a snapshot's use of the volume's changes. Attached: call it while the
 * card is quiesced (ctx.card.quiesce), so no write is in flight; the card
 * takes its bitmap and starts a new one. Detached: the volume's lock is held
 * from here until commit or abort (an attach meanwhile is refused with
 * VolumeInUse), so the image read between them is the one described.
 */
export async function beginChanges(ctx: Ec2Context, volumeId: string): Promise<Changes> {
  const c = await begin(ctx, volumeId);
  // Precondition: a base is a snapshot that still exists, completed; one deleted since leaves nothing to be relative to.
  if (c.base && ctx.registry.getSnapshot(c.base)?.state !== 'completed') return { ...c, base: null, changed: 'all' };
  return c;
}

async function begin(ctx: Ec2Context, volumeId: string): Promise<Changes> {
  const v = getVolume(ctx, volumeId);
  const blocks = blocksOf(v.size * GiB, CHANGE_BLOCK);
  if (ctx.registry.getAttachment(volumeId)) {
    const t = await ctx.card.takeChanges(volumeId);
    const end = once((snapshotId: string | null) => ctx.card.endChanges(volumeId, t.takeId, snapshotId));
    return {
      base: t.base,
      changed: t.all || !t.base ? 'all' : blocksSet(Buffer.from(t.bits, 'base64')),
      blocks: t.blocks,
      commit: (id) => end(id),
      abort: () => end(null),
    };
  }
  ensureDir(ctx.home.runDir);
  const lock = openPrivate(volumeLockPath(ctx.home, volumeId), 'a', true);
  if (!lockExclusive(lock)) {
    // A card is starting (it holds the lock before it records the attachment): nothing is known for certain.
    fs.closeSync(lock);
    const none = async () => undefined;
    return { base: null, changed: 'all', blocks, commit: none, abort: none };
  }
  let fd = -1;
  let img = -1;
  const close = () => {
    for (const f of [fd, img, lock]) if (f >= 0) fs.closeSync(f);
  };
  try {
    fd = openPrivate(changesPath(ctx.home, volumeId), 'r+', true);
    img = openImage(imageFile(ctx.home, v), 'r');
    const stamp = stampOf(img);
    const rec = readChanges(fd);
    const trusted = trustedChanges(rec, blocks, stamp);
    const end = once(async (snapshotId: string | null) => {
      try {
        if (!snapshotId) return;
        // Postcondition: the new base holds the image as it was read; had the image changed meanwhile (a grow does not take the lock), say 'all'.
        const now = stampOf(img);
        const r: ChangeRecord = {
          state: 'clean',
          all: !sameStamp(now, stamp),
          base: snapshotId,
          blocks,
          image: now,
          bits: new Uint8Array(Math.ceil(blocks / 8)),
        };
        writeChanges(fd, r);
      } finally {
        close();
      }
    });
    return {
      base: 'invalid' in rec ? null : rec.base,
      changed: trusted === 'all' ? 'all' : blocksSet(trusted),
      blocks,
      commit: (id) => end(id),
      abort: () => end(null),
    };
  } catch (e) {
    close();
    throw e;
  }
}

/**
 * The change file of a volume just made from snapshot `snapshotId`: its image
 * equals the snapshot, so that is its base and no block is changed.
 * Precondition: the image is complete and fsynced, and no card serves the
 * volume yet (it is still being created).
 */
export function startChangesAt(ctx: Ec2Context, volumeId: string, image: string, sizeBytes: number, snapshotId: string): void {
  const img = openImage(image, 'r');
  const fd = openPrivate(changesPath(ctx.home, volumeId), 'w', true);
  try {
    const blocks = blocksOf(sizeBytes, CHANGE_BLOCK);
    writeChanges(fd, { state: 'clean', all: false, base: snapshotId, blocks, image: stampOf(img), bits: new Uint8Array(Math.ceil(blocks / 8)) });
  } finally {
    fs.closeSync(fd);
    fs.closeSync(img);
  }
}

function once<T>(fn: (a: T) => Promise<void>): (a: T) => Promise<void> {
  let done: Promise<void> | undefined;
  return (a) => (done ??= fn(a));
}
