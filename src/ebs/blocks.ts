import crypto from 'node:crypto';
import { decryptBlock, encryptBlock } from '../card/blockcrypt.js';
import { BLOCK_SIZE, blockHash, readBlock } from '../volume/blocks.js';
import type { Ec2Context } from '../volume/context.js';
import type { BlockRow, SnapshotRow } from '../volume/registry.js';
import { EbsErrors, viaKms } from './errors.js';
import { needOpen, needState, snapshotFor } from './snapshots.js';

/**
 * Blocks through the EBS direct APIs: PutSnapshotBlock (checksum checked
 * before anything is stored; an encrypted snapshot's block encrypted under
 * its data key, authorized by the KMS), GetSnapshotBlock (decrypted the same
 * way), and the two listings, answered from the block maps without reading
 * data. A block token names the stored block's content (its SHA-256).
 */
const sha256b64 = (d: Uint8Array) => crypto.createHash('sha256').update(d).digest('base64');
const tokenOf = (hash: string) => Buffer.from(hash, 'hex').toString('base64');
/** Block tokens and pages stay valid this long (ExpiryTime). */
const EXPIRY_MS = 7 * 24 * 3600_000;

function blockIndex(s: SnapshotRow, index: unknown): number {
  const n = Number(index);
  if (!Number.isInteger(n) || n < 0 || n >= (s.volume_size * 1024 ** 3) / BLOCK_SIZE)
    throw EbsErrors.validation(
      'INVALID_BLOCK',
      `Block index ${String(index)} is outside snapshot ${s.snapshot_id} (${s.volume_size} GiB of ${BLOCK_SIZE}-byte blocks).`,
    );
  return n;
}

export interface PutSnapshotBlockRequest {
  SnapshotId?: string;
  BlockIndex?: number;
  BlockData?: Buffer;
  DataLength?: number;
  Progress?: number;
  Checksum?: string;
  ChecksumAlgorithm?: string;
}

export async function putSnapshotBlock(ctx: Ec2Context, req: PutSnapshotBlockRequest) {
  const s = needOpen(ctx, req.SnapshotId ?? '');
  const index = blockIndex(s, req.BlockIndex);
  const data = req.BlockData ?? Buffer.alloc(0);
  if (req.DataLength !== BLOCK_SIZE || data.length !== BLOCK_SIZE)
    throw EbsErrors.validation('INVALID_PARAMETER_VALUE', `A block is ${BLOCK_SIZE} bytes; DataLength is ${req.DataLength} and the body ${data.length} bytes.`);
  if (req.ChecksumAlgorithm !== 'SHA256')
    throw EbsErrors.validation('INVALID_PARAMETER_VALUE', `ChecksumAlgorithm must be SHA256, not ${req.ChecksumAlgorithm}.`);
  const checksum = sha256b64(data);
  if (req.Checksum !== checksum)
    throw EbsErrors.validation('INVALID_BLOCK', `The checksum of block ${index} does not match its data (SHA256 ${checksum}); the block was not stored.`);
  const stored = s.encrypted === 1 ? await viaKms(() => encryptBlock(ctx.kms, s.header!, s.snapshot_id, index, data, BLOCK_SIZE)) : data;
  // A block of zeros is written like any other (one shared file in the store): ChangedBlocksCount and the LINEAR
  // aggregate count every block the client wrote. The snapshot is checked again where the block is stored: a
  // CompleteSnapshot (or the Timeout) during the KMS call above must not see a block land after it.
  ctx.registry.putBlock(ctx.home.root, s.snapshot_id, index, blockHash(stored), stored, checksum, () => needOpen(ctx, s.snapshot_id));
  return { Checksum: checksum, ChecksumAlgorithm: 'SHA256' };
}

export interface GetSnapshotBlockRequest {
  SnapshotId?: string;
  BlockIndex?: number;
  BlockToken?: string;
}

export async function getSnapshotBlock(ctx: Ec2Context, req: GetSnapshotBlockRequest) {
  const s = snapshotFor(ctx, req.SnapshotId);
  needState(s, 'completed');
  const index = blockIndex(s, req.BlockIndex);
  const hash = ctx.registry.blockAt(s.snapshot_id, index);
  if (!hash || tokenOf(hash) !== req.BlockToken)
    throw EbsErrors.validation(
      'INVALID_BLOCK_TOKEN',
      `The block token does not name block ${index} of ${s.snapshot_id}; list the snapshot's blocks for current tokens.`,
    );
  const stored = readBlock(ctx.home.root, hash);
  const data = s.encrypted === 1 ? await viaKms(() => decryptBlock(ctx.kms, s.header!, s.snapshot_id, index, stored, BLOCK_SIZE)) : stored;
  return { DataLength: BLOCK_SIZE, BlockData: data, Checksum: sha256b64(data), ChecksumAlgorithm: 'SHA256' };
}

interface Paging {
  NextToken?: string;
  MaxResults?: number;
  StartingBlockIndex?: number;
}

/** How long a NextToken is good for, as AWS's EBS direct APIs say: 60 minutes. */
const PAGE_TOKEN_MS = 60 * 60_000;

function pageStart(ctx: Ec2Context, p: Paging): { start: number; max: number } {
  let start = p.StartingBlockIndex ?? 0;
  if (p.NextToken !== undefined) {
    const m = /^page:(\d+):(\d+)$/.exec(Buffer.from(p.NextToken, 'base64').toString('utf8'));
    if (!m) throw EbsErrors.validation('INVALID_PAGE_TOKEN', 'The NextToken is not one this service gave.');
    if (ctx.clock.now().getTime() > Number(m[2]) + PAGE_TOKEN_MS)
      throw EbsErrors.validation('INVALID_PAGE_TOKEN', 'The NextToken has expired (a token is good for 60 minutes): list again from StartingBlockIndex.');
    // NextToken wins over StartingBlockIndex, as AWS says.
    start = Number(m[1]);
  }
  // Under 100, AWS still answers with up to 100 (its FAQ); the model's bound is 100-10000.
  const max = Math.max(p.MaxResults ?? 10000, 100);
  if (!Number.isInteger(max) || max > 10000) throw EbsErrors.validation('INVALID_PARAMETER_VALUE', `MaxResults ${max} is not between 100 and 10000.`);
  return { start, max };
}

const nextToken = (ctx: Ec2Context, index: number) => ({ NextToken: Buffer.from(`page:${index}:${ctx.clock.now().getTime()}`).toString('base64') });

function listing(ctx: Ec2Context, s: SnapshotRow) {
  return { ExpiryTime: new Date(ctx.clock.now().getTime() + EXPIRY_MS), VolumeSize: s.volume_size, BlockSize: BLOCK_SIZE };
}

export function listSnapshotBlocks(ctx: Ec2Context, req: Paging & { SnapshotId?: string }) {
  const s = snapshotFor(ctx, req.SnapshotId);
  needState(s, 'completed');
  const { start, max } = pageStart(ctx, req);
  const rows = ctx.registry.blockMap(s.snapshot_id, start, max + 1);
  const page = rows.slice(0, max);
  return {
    Blocks: page.map((b) => ({ BlockIndex: b.block_index, BlockToken: tokenOf(b.hash) })),
    ...listing(ctx, s),
    ...(rows.length > max ? nextToken(ctx, rows[max]!.block_index) : {}),
  };
}

/** Is `a` an ancestor of `b` (or `b` itself), following parents? */
function inLineage(ctx: Ec2Context, a: string, b: SnapshotRow): boolean {
  for (let s: SnapshotRow | undefined = b, n = 0; s && n < 100_000; s = s.parent_id ? ctx.registry.getSnapshot(s.parent_id) : undefined, n++)
    if (s.snapshot_id === a) return true;
  return false;
}

export function listChangedBlocks(ctx: Ec2Context, req: Paging & { FirstSnapshotId?: string; SecondSnapshotId?: string }) {
  const second = snapshotFor(ctx, req.SecondSnapshotId, 'SecondSnapshotId');
  needState(second, 'completed');
  const first = req.FirstSnapshotId !== undefined ? snapshotFor(ctx, req.FirstSnapshotId, 'FirstSnapshotId') : undefined;
  if (first) {
    needState(first, 'completed');
    if (!inLineage(ctx, first.snapshot_id, second) && !inLineage(ctx, second.snapshot_id, first))
      throw EbsErrors.validation(
        'UNRELATED_SNAPSHOTS',
        `${first.snapshot_id} and ${second.snapshot_id} are not of one lineage (neither is the other's ancestor).`,
      );
  }
  const { start, max } = pageStart(ctx, req);
  const a = new Map((first ? ctx.registry.blockMap(first.snapshot_id, start) : []).map((b: BlockRow) => [b.block_index, b.hash]));
  const b = new Map(ctx.registry.blockMap(second.snapshot_id, start).map((r) => [r.block_index, r.hash]));
  const indices = [...new Set([...a.keys(), ...b.keys()])].sort((x, y) => x - y).filter((i) => a.get(i) !== b.get(i));
  const page = indices.slice(0, max);
  return {
    ChangedBlocks: page.map((i) => ({
      BlockIndex: i,
      ...(a.has(i) ? { FirstBlockToken: tokenOf(a.get(i)!) } : {}),
      ...(b.has(i) ? { SecondBlockToken: tokenOf(b.get(i)!) } : {}),
    })),
    ...listing(ctx, second),
    ...(indices.length > max ? nextToken(ctx, indices[max]!) : {}),
  };
}
