import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Home } from '../home.js';
import { kmsEndpointFromEnv } from '../kms/client/remote.js';
import { writeAll, writeFileAtomically } from './atomic.js';
import type { Ec2Context, ImageSide } from './context.js';
import { EBS_CONTEXT_KEY } from './context.js';
import { Ec2Errors } from './errors.js';
import type { KeyslotMaterial } from './keyslot.js';
import { withKeyslot } from './keyslot.js';
import type { KeyDigest, KmsLocator, KmsvolToken } from './luks2.js';
import { CIPHER, encodeMetadata, HDR_SIZE, newMetadata, PAYLOAD_OFFSET, readImageHeader, TOKEN_VERSION, tokenJson } from './luks2.js';
import { SECTOR_SIZE } from './offsets.js';
import type { VolumeRow } from './registry.js';

/**
 * The image files of volumes and snapshots: where they are, and how a new
 * one comes to be. Every new image is made under a temporary name, fsynced,
 * renamed into place and its directory fsynced, so a crash or a failure
 * leaves either the whole image or nothing.
 */

/** Where a new volume's image goes. */
export function imagePath(home: Home, volumeId: string): string {
  return path.join(home.volumesDir, `${volumeId}.img`);
}

/** The registry keeps image paths relative to the home, so a home can be moved or restored elsewhere. */
export function imageFile(home: Home, v: VolumeRow): string {
  return path.resolve(home.root, v.image);
}

/** The lock a card holds while it serves the volume (delete takes it too). */
export function volumeLockPath(home: Home, volumeId: string): string {
  return path.join(home.runDir, `${volumeId}.lock`);
}

/** The card's files in run/ for a volume, named in one place: its log, its control socket and its default mount directory (the lock is volumeLockPath). */
export function volumeRunPaths(home: Home, volumeId: string): { log: string; socket: string; mountDir: string } {
  return {
    log: path.join(home.runDir, `${volumeId}.log`),
    socket: path.join(home.runDir, `${volumeId}.sock`),
    mountDir: path.join(home.runDir, volumeId),
  };
}

/**
 * Postcondition of delete-volume: nothing of the volume is left in run/.
 * Precondition: the caller holds the volume's lock (no card serves it) and
 * has checked run/ (ensureDir: ours, not a link). Files are unlinked, which
 * removes a link itself and never what it points to; the mount directory is
 * removed with rmdir, which refuses a mount point and a directory that is
 * not empty (those are left, and named in the returned list); a link in its
 * place is unlinked. The lock file goes last: a card that opens it afterwards
 * finds the volume gone.
 */
export function removeRunFiles(home: Home, volumeId: string): string[] {
  const { log, socket, mountDir } = volumeRunPaths(home, volumeId);
  const left: string[] = [];
  for (const f of [log, socket, volumeLockPath(home, volumeId)]) fs.rmSync(f, { force: true });
  try {
    fs.rmdirSync(mountDir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR')
      fs.rmSync(mountDir, { force: true }); // a link (or a file) in its place: unlinked, never followed
    else if (code !== 'ENOENT') left.push(mountDir);
  }
  return left;
}

/**
 * Give the image `file` (open as `fd`) its length `size`, sparse. Precondition:
 * the file system holding the home allows a file that long; ext4 stops at
 * 16 TiB, so a 16384 GiB encrypted volume (its header comes first) does not
 * fit there, and that is InsufficientVolumeCapacity saying what to do, not EFBIG.
 */
export function sizeImage(fd: number, size: number, file: string): void {
  try {
    fs.ftruncateSync(fd, size);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EFBIG') throw e;
    throw Ec2Errors.insufficientCapacity(
      `The file system holding ${path.dirname(file)} cannot hold an image of ${size} bytes (the volume and its header): its files are smaller. Choose a smaller size, or keep the kmsvol home on a file system that allows larger files (XFS, btrfs).`,
    );
  }
}

/** Create `file` holding `head` at offset 0 and sized `size` (sparse), via a temporary name, fsynced. */
export function writeImageAtomically(file: string, head: Buffer | undefined, size: number): void {
  writeFileAtomically(
    file,
    (fd) => {
      if (head) writeAll(fd, head, 0);
      sizeImage(fd, size, file);
    },
    { durable: true },
  );
}

/**
 * Where the token says the KMS is, as the KMS client was chosen
 * (kms/client/open.ts): AWS KMS itself, an endpoint, or this home's embedded
 * KMS. A hint for the token plugin; its environment comes first (docs/luks.md).
 */
export function kmsLocator(home: Home): KmsLocator {
  if (process.env.KMSVOL_KMS === 'aws') return { aws: true };
  const endpoint = kmsEndpointFromEnv();
  return endpoint ? { endpoint } : { home: home.root };
}

/** The version-1 token of a volume whose version-0 token is `t`, with the keyslot secret of `m` opening keyslot `id`. */
export function tokenWithKeyslot(home: Home, t: KmsvolToken, m: KeyslotMaterial, id: string): KmsvolToken {
  return {
    volumeId: t.volumeId,
    keyArn: t.keyArn,
    ciphertextBlob: t.ciphertextBlob,
    encryptionContext: t.encryptionContext,
    version: TOKEN_VERSION,
    secretBlob: m.secretBlob,
    region: t.keyArn.split(':')[3] ?? '',
    kms: kmsLocator(home),
    keyslots: [id],
  };
}

/**
 * The head of a new encrypted image (or of an encrypted snapshot the EBS
 * direct APIs write): LUKS2 headers with a new data key wrapped by the KMS
 * under `keyRef` (context aws:ebs:id = `id`), and the keyslot area its
 * wrapped secret opens. Returns the head and the key's ARN.
 */
export async function encryptedHead(ctx: Ec2Context, id: string, keyRef: string): Promise<{ head: Buffer; keyArn: string }> {
  const context = { [EBS_CONTEXT_KEY]: id };
  for (let attempt = 0; ; attempt++) {
    const gdk = await ctx.kms.send('GenerateDataKeyWithoutPlaintext', { KeyId: keyRef, NumberOfBytes: 64, EncryptionContext: context });
    const token: KmsvolToken = {
      volumeId: id,
      keyArn: gdk.KeyId,
      ciphertextBlob: Buffer.from(gdk.CiphertextBlob).toString('base64'),
      encryptionContext: context,
    };
    let digest: KeyDigest;
    let m: KeyslotMaterial;
    try {
      ({ digest, keyslot: m } = await ctx.card.keyMaterial(token));
    } catch (e) {
      // A key whose two halves are equal cannot be used for XTS: generate another.
      if ((e as Error).name === 'InvalidKey' && attempt < 3) continue;
      throw e;
    }
    const h = {
      uuid: crypto.randomUUID(),
      label: id,
      token,
      digest,
      payloadOffset: PAYLOAD_OFFSET,
      segmentSize: null,
      sectorSize: SECTOR_SIZE,
      cipher: CIPHER,
    };
    const meta = withKeyslot(newMetadata(h), '0', 2 * HDR_SIZE, m, tokenJson(tokenWithKeyslot(ctx.home, token, m, '0')));
    // The headers, then the keyslot area right after them.
    return { head: Buffer.concat([encodeMetadata(meta, h, 1), m.area]), keyArn: gdk.KeyId };
  }
}

/**
 * Write a new encrypted image: LUKS2 header with the wrapped key and the
 * keyslot its wrapped secret opens, then a sparse payload. Written to a
 * temporary name and renamed, so a failure leaves nothing.
 */
export async function writeEncryptedImage(ctx: Ec2Context, file: string, volumeId: string, keyRef: string, sizeBytes: number): Promise<string> {
  const { head, keyArn } = await encryptedHead(ctx, volumeId, keyRef);
  writeImageAtomically(file, head, PAYLOAD_OFFSET + sizeBytes);
  return keyArn;
}

/** Copy the payload of image `src` into the already-initialized image `dst`, re-encrypting as needed. */
export async function copyImage(
  ctx: Ec2Context,
  src: string,
  srcEncrypted: boolean,
  dst: string,
  dstEncrypted: boolean,
  sizeBytes: number,
  onProgress?: (f: number) => void,
): Promise<void> {
  const side = (file: string, enc: boolean): ImageSide => {
    if (!enc) return { file, payloadOffset: 0, token: null, digest: null };
    const h = readImageHeader(file);
    return { file, payloadOffset: h.payloadOffset, token: h.token, digest: h.digest };
  };
  await ctx.card.copyPayload(side(src, srcEncrypted), side(dst, dstEncrypted), sizeBytes, onProgress);
}
