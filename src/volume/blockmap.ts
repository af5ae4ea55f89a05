import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ensureDir } from '../home.js';
import { writeAll, writeFileAtomically } from './atomic.js';
import { BLOCK_SIZE, blockHash, dataBlocks, isZero, readBlock, readHeaderArea } from './blocks.js';
import type { Ec2Context } from './context.js';
import { decodeHeader, HDR_SIZE, readImageHeader } from './luks2.js';
import { GiB } from './offsets.js';
import type { SnapshotRow } from './registry.js';

/**
 * Snapshots as block maps: how a snapshot is made from an image (only blocks
 * that hold data are read; only blocks not yet stored are written; blocks
 * outside a changed set are the parent's), how an image is made from a
 * snapshot (sparse: header, then its blocks), and how a snapshot's blocks
 * are let go (map rows first, in a transaction; then the files no map names).
 */
const read = promisify(fs.read);

/** The image a snapshot is taken from: its file, whether it is encrypted, and its data-area size. */
export interface SourceImage {
  file: string;
  encrypted: boolean;
  sizeBytes: number;
}

export interface SnapshotBlocksOptions {
  /** The blocks written since the parent (change tracking); 'all' (the default) reads every block that holds data. */
  changed?: Set<number> | 'all';
  /** The snapshot whose map supplies the blocks outside `changed`. */
  parent?: string | null;
}

/** The volume's newest completed snapshot: the parent of its next one. */
export function latestSnapshot(ctx: Ec2Context, volumeId: string): SnapshotRow | undefined {
  return ctx.registry
    .listSnapshots()
    .filter((s) => s.volume_id === volumeId && s.state === 'completed')
    .at(-1);
}

/**
 * Whether the blocks of snapshot `s` are under the data key of `src`, so that
 * they may stand for its unchanged blocks: the same wrapped data key in both
 * headers (plaintext blocks for an unencrypted volume and snapshot).
 */
export function sharesDataKey(s: SnapshotRow, src: SourceImage): boolean {
  if (!src.encrypted) return s.encrypted === 0;
  if (s.encrypted === 0 || !s.header) return false;
  const head = Buffer.alloc(Math.max(s.header.length, 2 * HDR_SIZE));
  s.header.copy(head);
  return decodeHeader(head, s.snapshot_id).token.ciphertextBlob === readImageHeader(src.file).token.ciphertextBlob;
}

/**
 * Give pending snapshot `snapshotId` the header and block map of `src`.
 * Precondition: the image does not change meanwhile (the caller quiesced
 * an attached volume). Returns how many blocks were read.
 */
export async function snapshotBlocks(ctx: Ec2Context, snapshotId: string, src: SourceImage, opts: SnapshotBlocksOptions = {}): Promise<number> {
  const payloadOffset = src.encrypted ? readImageHeader(src.file).payloadOffset : 0;
  const fd = fs.openSync(src.file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const header = src.encrypted ? readHeaderArea(fd, payloadOffset) : null;
    ctx.registry.write(() => ctx.registry.updateSnapshot(snapshotId, { header, payload_offset: payloadOffset, image: '' }));
    const changed = opts.changed ?? 'all';
    const withData = dataBlocks(fd, payloadOffset, src.sizeBytes);
    let toRead = withData;
    if (changed !== 'all') {
      toRead = withData.filter((i) => changed.has(i));
      const parent = opts.parent ? ctx.registry.blockMap(opts.parent) : [];
      ctx.registry.write(() => {
        for (const b of parent) if (!changed.has(b.block_index)) ctx.registry.shareBlock(snapshotId, b.block_index, b.hash);
      });
    }
    const buf = Buffer.alloc(BLOCK_SIZE);
    for (const i of toRead) {
      const { bytesRead } = await read(fd, buf, 0, BLOCK_SIZE, payloadOffset + i * BLOCK_SIZE);
      if (bytesRead < BLOCK_SIZE) buf.fill(0, bytesRead);
      if (isZero(buf)) continue;
      ctx.registry.putBlock(ctx.home.root, snapshotId, i, blockHash(buf), buf);
    }
    return toRead.length;
  } finally {
    fs.closeSync(fd);
  }
}

/** Postcondition: `file` is the image of snapshot `s` (header, then its blocks; holes elsewhere), made under a temporary name, fsynced, renamed. */
export function materializeSnapshot(ctx: Ec2Context, s: SnapshotRow, file: string): void {
  if (s.image) throw new Error(`Snapshot ${s.snapshot_id} has no block map: its image ${s.image} was missing when the registry was migrated.`);
  if (s.encrypted === 1 && !s.header) throw new Error(`Snapshot ${s.snapshot_id} has no header: it cannot be read.`);
  const offset = s.payload_offset ?? 0;
  writeFileAtomically(
    file,
    (fd) => {
      if (s.header) writeAll(fd, s.header, 0);
      for (const b of ctx.registry.blockMap(s.snapshot_id)) writeAll(fd, readBlock(ctx.home.root, b.hash), offset + b.block_index * BLOCK_SIZE);
      fs.ftruncateSync(fd, offset + s.volume_size * GiB);
    },
    { durable: false }, // a scratch image, removed after use
  );
}

/** A scratch file name in the snapshots directory (not yet created), handed to `use` and removed afterwards. */
export async function withScratch<T>(ctx: Ec2Context, name: string, use: (file: string) => Promise<T>): Promise<T> {
  ensureDir(ctx.home.snapshotsDir);
  const file = path.join(ctx.home.snapshotsDir, `${name}.scratch-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  try {
    return await use(file);
  } finally {
    fs.rmSync(file, { force: true });
  }
}

/** A scratch image of snapshot `s`, handed to `use` and removed afterwards. */
export function withSnapshotImage<T>(ctx: Ec2Context, s: SnapshotRow, use: (file: string) => Promise<T>): Promise<T> {
  return withScratch(ctx, s.snapshot_id, (file) => {
    materializeSnapshot(ctx, s, file);
    return use(file);
  });
}

/** Remove a snapshot's row, tags and block map in one transaction, then unlink the blocks nothing else uses. */
export function dropSnapshot(ctx: Ec2Context, snapshotId: string): string[] {
  const named = ctx.registry.write(() => {
    const hashes = ctx.registry.dropBlockMap(snapshotId);
    ctx.registry.deleteSnapshot(snapshotId);
    ctx.registry.deleteTagsOf(snapshotId);
    return hashes;
  });
  return ctx.registry.unlinkUnused(ctx.home.root, named);
}

/**
 * Drop a snapshot that failed before it completed. When its rows cannot be
 * deleted (a full disk: SQLite needs room even to delete), the blocks only it
 * names are unlinked first, which gives the room back, and the drop is tried
 * again. Its state is pending, so nothing reads the blocks meanwhile.
 */
export function dropFailedSnapshot(ctx: Ec2Context, snapshotId: string): void {
  try {
    dropSnapshot(ctx, snapshotId);
  } catch {
    ctx.registry.unlinkOnlyNamedBy(ctx.home.root, snapshotId);
    dropSnapshot(ctx, snapshotId);
  }
}
