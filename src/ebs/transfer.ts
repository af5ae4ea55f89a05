import type { BlockKey } from '../card/blockcrypt.js';
import { openBlockKey } from '../card/blockcrypt.js';
import { ServiceError } from '../errors.js';
import type { KmsClient } from '../kms/client/index.js';
import { dropSnapshot } from '../volume/blockmap.js';
import { BLOCK_SIZE, blockHash, isZero } from '../volume/blocks.js';
import type { Ec2Context } from '../volume/context.js';
import { resolveKey } from '../volume/context.js';
import { encryptedHead } from '../volume/images.js';
import { decodeHeader, PAYLOAD_OFFSET } from '../volume/luks2.js';
import type { SnapshotRow } from '../volume/registry.js';
import { newId } from '../volume/registry.js';
import { bundleBlock, openBundle } from './bundle.js';
import { EbsErrors, viaKms } from './errors.js';
import { NO_VOLUME } from './snapshots.js';
import type { EbsSource } from './source.js';

/**
 * Snapshots that leave the machine: import a bundle (src/ebs/bundle.ts), or
 * a snapshot read through another endpoint's EBS direct APIs, as a completed
 * snapshot of this home that CreateVolume can use.
 * - A bundle imported as it is keeps its ciphertext and its head: its data key
 *   stays wrapped by the source's KMS key, so it is taken only when this
 *   home's KMS can unwrap it (checked before anything is registered).
 * - With a KMS key (`--kms-key-id`), every block is decrypted under the
 *   source's data key (unwrapped by the source's KMS: `sourceKms`) and
 *   encrypted under a new data key that key wraps (context aws:ebs:id = the
 *   new snapshot), as CopySnapshot does.
 * - Through an endpoint, blocks arrive in plaintext (the API's own model) and
 *   are always encrypted here, under `kmsKeyId` or the home's default key.
 * Every block is verified before the snapshot is registered; a failure after
 * that drops the snapshot and its blocks, so nothing half-imported remains.
 */
/** Blocks read through an endpoint at once. */
const IN_FLIGHT = 8;

export interface ImportOptions {
  kmsKeyId?: string;
  description?: string;
  /** The KMS that holds the bundle's key, for a re-encrypting import (default: this home's). */
  sourceKms?: KmsClient;
}

/** The new snapshot's head and key when its blocks are encrypted here. */
async function newEncryption(ctx: Ec2Context, id: string, keyRef: string | undefined): Promise<{ head: Buffer; keyArn: string; key: BlockKey }> {
  const made = await viaKms(() => encryptedHead(ctx, id, resolveKey(ctx, keyRef)));
  const key = await viaKms(() => openBlockKey(ctx.kms, made.head, id, BLOCK_SIZE));
  return { ...made, key };
}

/** Register completed snapshot `row` with the blocks `fill` puts; on any failure, nothing of it remains. */
async function register(ctx: Ec2Context, row: SnapshotRow, fill: (put: (index: number, stored: Buffer) => void) => Promise<void>): Promise<SnapshotRow> {
  ctx.registry.write(() => ctx.registry.insertSnapshot(row));
  try {
    await fill((index, stored) => {
      if (!isZero(stored)) ctx.registry.putBlock(ctx.home.root, row.snapshot_id, index, blockHash(stored), stored);
    });
    ctx.registry.write(() => ctx.registry.updateSnapshot(row.snapshot_id, { state: 'completed', progress: '100%' }));
  } catch (e) {
    dropSnapshot(ctx, row.snapshot_id);
    throw e;
  }
  ctx.events.record(row.snapshot_id, 'importSnapshot', 'succeeded');
  return { ...row, state: 'completed', progress: '100%' };
}

function newRow(ctx: Ec2Context, id: string, size: number, description: string, enc: { head: Buffer; keyArn: string } | null): SnapshotRow {
  return {
    snapshot_id: id,
    volume_id: NO_VOLUME,
    state: 'pending',
    progress: '',
    start_time: ctx.clock.now().getTime(),
    encrypted: enc ? 1 : 0,
    kms_key_id: enc?.keyArn ?? null,
    volume_size: size,
    description,
    image: '',
    parent_id: null,
    header: enc?.head ?? null,
    payload_offset: enc ? PAYLOAD_OFFSET : 0,
    complete_by: null,
    client_token: null,
  };
}

/** Import the bundle in `dir`. */
export async function importBundle(ctx: Ec2Context, dir: string, opts: ImportOptions = {}): Promise<SnapshotRow> {
  const { manifest: m, head } = openBundle(dir);
  // Precondition: every block matches the manifest before anything is registered.
  for (const [i, h] of m.Blocks) bundleBlock(dir, i, h);
  const id = newId('snap');
  const description = opts.description ?? `Imported from ${m.SnapshotId}`;
  const byDefault = ctx.registry.getSetting('ebs_encryption_by_default') === 'true';
  if (head && opts.kmsKeyId === undefined) {
    // Kept as it is: this home's KMS must open the bundle's key (the same KMS, or one that reaches the same key).
    try {
      (await openBlockKey(ctx.kms, head, m.SnapshotId, BLOCK_SIZE)).close();
    } catch (e) {
      if (!(e instanceof ServiceError)) throw e;
      throw EbsErrors.accessDenied(
        `The bundle's data key is wrapped by ${m.KmsKeyArn}, which this home's KMS cannot use: (${e.name}) ${e.message} Import with --kms-key-id to re-encrypt under a key of this home, and --source-endpoint-url naming an endpoint whose KMS holds ${m.KmsKeyArn}.`,
        'DEPENDENCY_ACCESS_DENIED',
      );
    }
    // The key is the one the head's token names (the one the KMS just used), not what the manifest says.
    const row = newRow(ctx, id, m.VolumeSize, description, { head, keyArn: decodeHeader(head, m.SnapshotId).token.keyArn });
    return register(ctx, row, async (put) => {
      for (const [i, h] of m.Blocks) put(i, bundleBlock(dir, i, h));
    });
  }
  if (!head && opts.kmsKeyId === undefined && !byDefault) {
    return register(ctx, newRow(ctx, id, m.VolumeSize, description, null), async (put) => {
      for (const [i, h] of m.Blocks) put(i, bundleBlock(dir, i, h));
    });
  }
  // Re-encrypted on the way: the source's data key (if any) decrypts, a new one encrypts.
  const src = head ? await viaKms(() => openBlockKey(opts.sourceKms ?? ctx.kms, head, m.SnapshotId, BLOCK_SIZE)) : null;
  try {
    const dst = await newEncryption(ctx, id, opts.kmsKeyId);
    try {
      return await register(ctx, newRow(ctx, id, m.VolumeSize, description, dst), async (put) => {
        for (const [i, h] of m.Blocks) {
          const stored = bundleBlock(dir, i, h);
          put(i, await dst.key.encrypt(i, src ? await src.decrypt(i, stored) : stored));
        }
      });
    } finally {
      dst.key.close();
    }
  } finally {
    src?.close();
  }
}

/** Import completed snapshot `snapshotId` of the endpoint `source`, encrypted here under `kmsKeyId` (or the default key). */
export async function importFromEndpoint(ctx: Ec2Context, source: EbsSource, snapshotId: string, opts: ImportOptions = {}): Promise<SnapshotRow> {
  const { volumeSize, blocks } = await source.listBlocks(snapshotId);
  const id = newId('snap');
  const dst = await newEncryption(ctx, id, opts.kmsKeyId);
  try {
    return await register(ctx, newRow(ctx, id, volumeSize, opts.description ?? `Imported from ${snapshotId}`, dst), async (put) => {
      // IN_FLIGHT blocks fetched and encrypted at once (the API is made for parallel readers); stored in block order.
      for (let i = 0; i < blocks.length; i += IN_FLIGHT) {
        const batch = blocks.slice(i, i + IN_FLIGHT);
        const done = await Promise.all(
          batch.map(async (b) => {
            const plain = await source.getBlock(snapshotId, b, BLOCK_SIZE);
            return isZero(plain) ? null : dst.key.encrypt(b.BlockIndex, plain);
          }),
        );
        done.forEach((stored, n) => {
          if (stored) put(batch[n]!.BlockIndex, stored);
        });
      }
    });
  } finally {
    dst.key.close();
  }
}
