import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { writeAll } from '../volume/atomic.js';
import { BLOCK_SIZE, readBlock } from '../volume/blocks.js';
import type { Ec2Context } from '../volume/context.js';
import { EbsErrors } from './errors.js';
import { needState, snapshotFor } from './snapshots.js';

/**
 * A snapshot bundle: a snapshot as it is stored, in a directory that
 * describes itself, so another home can verify it before taking it in.
 *   manifest.json  what the snapshot is, its blocks (index -> SHA-256 of the
 *                  stored bytes) and the LINEAR aggregate over those digests;
 *   head.bin       an encrypted snapshot's LUKS2 head: the data key, wrapped
 *                  by its KMS key (only that KMS opens it), and the keyslot area;
 *   blocks/<hex>   each stored block once, named by its SHA-256: XTS ciphertext
 *                  under the data key for an encrypted snapshot.
 * Exporting reads no plaintext and calls no KMS.
 */
export const BUNDLE_FORMAT = 'kmsvol-snapshot-bundle';
export const BUNDLE_VERSION = 1;

export interface BundleManifest {
  Format: string;
  Version: number;
  SnapshotId: string;
  VolumeSize: number;
  BlockSize: number;
  Encrypted: boolean;
  KmsKeyArn: string | null;
  Description: string;
  HeadSha256: string | null;
  /** [block index, SHA-256 hex of the stored block], in block order. */
  Blocks: [number, string][];
  /** SHA-256 (base64) over the blocks' raw digests in block order (LINEAR, as CompleteSnapshot's). */
  Aggregate: string;
}

const sha256 = (d: Uint8Array) => crypto.createHash('sha256').update(d).digest();
const HEX = /^[0-9a-f]{64}$/;

export function aggregateOf(blocks: [number, string][]): string {
  const h = crypto.createHash('sha256');
  for (const [, hex] of blocks) h.update(Buffer.from(hex, 'hex'));
  return h.digest('base64');
}

function writeNew(file: string, data: Uint8Array): void {
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  try {
    writeAll(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Write completed snapshot `snapshotId` into the new directory `dir` (refused if it exists); the manifest last, so a bundle with a manifest is whole. */
export function exportBundle(ctx: Ec2Context, snapshotId: string, dir: string): BundleManifest {
  const s = snapshotFor(ctx, snapshotId);
  needState(s, 'completed');
  const map = ctx.registry.blockMap(s.snapshot_id);
  fs.mkdirSync(dir, { mode: 0o700 });
  fs.mkdirSync(path.join(dir, 'blocks'), { mode: 0o700 });
  const head = s.encrypted === 1 ? s.header! : null;
  if (head) writeNew(path.join(dir, 'head.bin'), head);
  for (const hash of new Set(map.map((b) => b.hash))) writeNew(path.join(dir, 'blocks', hash), readBlock(ctx.home.root, hash));
  const blocks = map.map((b): [number, string] => [b.block_index, b.hash]);
  const m: BundleManifest = {
    Format: BUNDLE_FORMAT,
    Version: BUNDLE_VERSION,
    SnapshotId: s.snapshot_id,
    VolumeSize: s.volume_size,
    BlockSize: BLOCK_SIZE,
    Encrypted: s.encrypted === 1,
    KmsKeyArn: s.kms_key_id,
    Description: s.description,
    HeadSha256: head ? sha256(head).toString('hex') : null,
    Blocks: blocks,
    Aggregate: aggregateOf(blocks),
  };
  writeNew(path.join(dir, 'manifest.json'), Buffer.from(`${JSON.stringify(m, null, 1)}\n`));
  return m;
}

const bad = (dir: string, why: string) =>
  EbsErrors.validation('INVALID_PARAMETER_VALUE', `${dir} is not a snapshot bundle kmsvol can import: ${why}; nothing was imported.`);

function readFile(file: string): Buffer {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** A bundle's manifest and head, checked: its shape, the head's SHA-256, the aggregate over the block list. Blocks are checked as they are read (bundleBlock). */
export function openBundle(dir: string): { manifest: BundleManifest; head: Buffer | null } {
  let m: BundleManifest;
  try {
    m = JSON.parse(readFile(path.join(dir, 'manifest.json')).toString('utf8'));
  } catch (e) {
    throw bad(dir, `its manifest.json cannot be read (${(e as Error).message})`);
  }
  if (m?.Format !== BUNDLE_FORMAT || m.Version !== BUNDLE_VERSION) throw bad(dir, `its manifest is not ${BUNDLE_FORMAT} version ${BUNDLE_VERSION}`);
  if (typeof m.SnapshotId !== 'string' || !/^snap-[0-9a-f]{8,17}$/.test(m.SnapshotId)) throw bad(dir, 'its SnapshotId is not a snapshot id');
  if (m.BlockSize !== BLOCK_SIZE || !Number.isInteger(m.VolumeSize) || m.VolumeSize < 1 || m.VolumeSize > 65536)
    throw bad(dir, 'its block size or volume size is wrong');
  const limit = (m.VolumeSize * 1024 ** 3) / BLOCK_SIZE;
  if (!Array.isArray(m.Blocks)) throw bad(dir, 'it has no block list');
  let last = -1;
  for (const b of m.Blocks) {
    if (!Array.isArray(b) || !Number.isInteger(b[0]) || b[0] <= last || b[0] >= limit || typeof b[1] !== 'string' || !HEX.test(b[1]))
      throw bad(dir, `its block list is not in block order with SHA-256 names (at ${JSON.stringify(b)})`);
    last = b[0];
  }
  if (aggregateOf(m.Blocks) !== m.Aggregate) throw bad(dir, 'the aggregate checksum does not match its block list');
  let head: Buffer | null = null;
  if (m.Encrypted) {
    head = readFile(path.join(dir, 'head.bin'));
    if (sha256(head).toString('hex') !== m.HeadSha256) throw bad(dir, 'head.bin does not match its SHA-256 in the manifest');
  }
  return { manifest: m, head };
}

/** Block `hash` of a bundle; Precondition: its bytes have that SHA-256 (a changed block is refused, INVALID_BLOCK). */
export function bundleBlock(dir: string, index: number, hash: string): Buffer {
  const data = readFile(path.join(dir, 'blocks', hash));
  if (data.length !== BLOCK_SIZE || sha256(data).toString('hex') !== hash)
    throw EbsErrors.validation(
      'INVALID_BLOCK',
      `Block ${index} of the bundle ${dir} does not match its SHA-256 in the manifest (${hash}): the bundle was altered or damaged; nothing was imported.`,
    );
  return data;
}
