import fs from 'node:fs';
import { ensureDir, openPrivate } from '../home.js';
import { lockExclusive } from '../native/index.js';
import type { Ec2Context } from './context.js';
import { getVolume } from './context.js';
import { Ec2Errors } from './errors.js';
import { imageFile, tokenWithKeyslot, volumeLockPath } from './images.js';
import { freeKeyslot, withKeyslot } from './keyslot.js';
import { encodeMetadata, HDR_SIZE, openImage, readImageHeader, TOKEN_VERSION, tokenJson } from './luks2.js';
import type { VolumeRow } from './registry.js';

/**
 * Upgrade an image made before keyslots (token version 0, docs/format.md) to
 * token version 1: a keyslot the KMS-wrapped secret opens, so stock
 * cryptsetup opens it through the token plugin. Keyslots a stock tool added
 * (a recovery passphrase) are kept, and the new one takes free space after
 * them. The keyslot area is written and fsynced before the headers; the
 * headers are then written one copy at a time with the next seqid, each
 * fsynced, so a crash leaves a valid header that either names the new
 * keyslot or does not.
 */
export async function upgradeImage(ctx: Ec2Context, file: string): Promise<{ upgraded: boolean; keyslot?: string; version: number }> {
  const h = readImageHeader(file);
  if ((h.token.version ?? 0) >= TOKEN_VERSION) return { upgraded: false, keyslot: h.token.keyslots?.[0], version: h.token.version ?? 0 };
  const raw = h.raw ?? {};
  const { id, offset } = freeKeyslot(raw);
  const m = await ctx.card.keyslot(h, file);
  const meta = withKeyslot(raw, id, offset, m, tokenJson(tokenWithKeyslot(ctx.home, h.token, m, id)));
  const head = encodeMetadata(meta, h, h.seqid + 1);
  const fd = openImage(file, 'r+');
  try {
    fs.writeSync(fd, m.area, 0, m.area.length, offset);
    fs.fsyncSync(fd);
    for (const copy of [0, 1]) {
      fs.writeSync(fd, head, copy * HDR_SIZE, HDR_SIZE, copy * HDR_SIZE);
      fs.fsyncSync(fd);
    }
  } finally {
    fs.closeSync(fd);
  }
  return { upgraded: true, keyslot: id, version: TOKEN_VERSION };
}

/** Run fn holding the volume's lock (no card serves it meanwhile); VolumeInUse when a card holds it. */
async function underLock<T>(ctx: Ec2Context, volumeId: string, fn: () => Promise<T>): Promise<T> {
  ensureDir(ctx.home.runDir);
  const lock = openPrivate(volumeLockPath(ctx.home, volumeId), 'a', true);
  try {
    if (!lockExclusive(lock)) throw Ec2Errors.volumeInUse(volumeId, ' (a card is attaching it)');
    return await fn();
  } finally {
    fs.closeSync(lock);
  }
}

/**
 * The first attach of an image made before keyslots upgrades it (the caller
 * has recorded the attachment, so no other attach, upgrade or delete runs).
 * An upgrade the KMS refuses (a caller allowed Decrypt but not
 * GenerateDataKey) leaves the image as it was and the attach goes on; the
 * event log says why.
 */
export async function upgradeOnAttach(ctx: Ec2Context, v: VolumeRow): Promise<void> {
  if (!v.encrypted) return;
  try {
    const r = await underLock(ctx, v.volume_id, () => upgradeImage(ctx, imageFile(ctx.home, v)));
    if (r.upgraded) ctx.events.record(v.volume_id, 'upgradeVolume', `token version ${r.version}, keyslot ${r.keyslot}`);
  } catch (e) {
    ctx.events.record(v.volume_id, 'upgradeVolume', 'failed', `${(e as Error).name}: ${(e as Error).message}`);
  }
}

/** `upgrade-volume`: the volume must be encrypted and not attached (its lock is held for the rewrite). */
export async function upgradeVolume(ctx: Ec2Context, req: { VolumeId?: string }) {
  if (!req.VolumeId) throw Ec2Errors.missingParameter('The request must contain the parameter VolumeId');
  const v = getVolume(ctx, req.VolumeId);
  if (!v.encrypted) throw Ec2Errors.invalidParameter(`The volume ${v.volume_id} is not encrypted: it has no LUKS2 header to upgrade.`);
  if (ctx.registry.getAttachment(v.volume_id)) throw Ec2Errors.volumeInUse(v.volume_id);
  const r = await underLock(ctx, v.volume_id, () => upgradeImage(ctx, imageFile(ctx.home, v)));
  if (r.upgraded) ctx.events.record(v.volume_id, 'upgradeVolume', `token version ${r.version}, keyslot ${r.keyslot}`);
  return { VolumeId: v.volume_id, Upgraded: r.upgraded, TokenVersion: r.version, Keyslot: r.keyslot };
}
