import type { Clock } from '../clock.js';
import { ServiceError } from '../errors.js';
import type { Home } from '../home.js';
import type { KmsClient } from '../kms/client/index.js';
import type { TakenChanges } from './changefile.js';
import { Ec2Errors } from './errors.js';
import type { EventLog } from './events.js';
import type { KeyslotMaterial } from './keyslot.js';
import type { KeyDigest, KmsvolToken } from './luks2.js';
import type { AttachmentRow, Registry, SnapshotRow, VolumeRow } from './registry.js';

/**
 * What every part of the volume control plane shares: the context it runs
 * in, what it asks of the card layer, the key a new encrypted image gets,
 * and the lookups of a volume or a snapshot by id. Volumes, snapshots and
 * modifications import this module, never each other.
 */

/** One side of an image copy: the file, where its payload starts, and its key token (null: unencrypted). */
export interface ImageSide {
  file: string;
  payloadOffset: number;
  token: KmsvolToken | null;
  /** The header's key digest (null with token null): the unwrapped key is checked against it. */
  digest: KeyDigest | null;
}

/**
 * What the control plane asks of the card layer for snapshots and copies
 * (only the card layer touches plaintext data keys): quiescing an attached
 * volume, and moving a payload between images under different keys.
 */
export interface CardOps {
  /** For a new image, from one unwrap of the volume key named by a token: its LUKS2 digest and keyslot 0 with a new KMS-wrapped secret (the key is zeroized in the card layer). */
  keyMaterial(token: KmsvolToken): Promise<{ digest: KeyDigest; keyslot: KeyslotMaterial }>;
  /** A LUKS2 keyslot for the volume key of this header (checked against its digest), with a new KMS-wrapped secret that opens it. */
  keyslot(header: { token: KmsvolToken; digest: KeyDigest }, image: string): Promise<KeyslotMaterial>;
  quiesce(volumeId: string): Promise<() => Promise<void>>;
  /** Take an attached (and quiesced) volume's changed blocks for a snapshot (card/tracking.ts). */
  takeChanges(volumeId: string): Promise<TakenChanges>;
  /** End take `takeId`: commit with the snapshot that is now the base, or abort (null). A card gone meanwhile is no error: its bits stay. */
  endChanges(volumeId: string, takeId: string, snapshotId: string | null): Promise<void>;
  /** Tell an attached volume's card that its image grew to `sizeBytes` of payload. */
  resize(volumeId: string, sizeBytes: number): Promise<void>;
  copyPayload(src: ImageSide, dst: ImageSide, sizeBytes: number, onProgress?: (fraction: number) => void): Promise<number>;
}

/** What the volume control plane needs around it (built by card/context.ts). */
export interface Ec2Context {
  home: Home;
  registry: Registry;
  kms: KmsClient;
  events: EventLog;
  clock: Clock;
  region: string;
  account: string;
  /** Reconciles an attachment whose card may have died (provided by the card layer). */
  reconcile?: (v: VolumeRow, a: AttachmentRow) => Promise<void>;
  /** What only the card layer may do (it alone touches plaintext data keys). */
  card: CardOps;
  /** Told how far a long copy has come (the CLI draws a progress bar on a terminal). */
  onProgress?: (what: string, fraction: number) => void;
}

/** The encryption context key of a volume's (or snapshot's) data key, as EBS names it. */
export const EBS_CONTEXT_KEY = 'aws:ebs:id';

/** The KMS key for a new encrypted volume: the one asked for, the account default, or alias/aws/ebs (the KMS creates it when first named). */
export function resolveKey(ctx: Ec2Context, requested: string | undefined): string {
  return requested ?? ctx.registry.getSetting('ebs_default_kms_key_id') ?? 'alias/aws/ebs';
}

export function getVolume(ctx: Ec2Context, id: string): VolumeRow {
  if (!/^vol-[0-9a-f]{17}$/.test(id)) throw Ec2Errors.invalidId('Volume', id);
  const v = ctx.registry.getVolume(id);
  if (!v || v.state === 'deleted') throw Ec2Errors.volumeNotFound(id);
  return v;
}

export function getSnapshot(ctx: Ec2Context, id: string): SnapshotRow {
  if (!/^snap-[0-9a-f]{17}$/.test(id)) throw Ec2Errors.invalidId('Snapshot', id);
  const s = ctx.registry.getSnapshot(id);
  if (!s) throw new ServiceError('InvalidSnapshot.NotFound', `The snapshot '${id}' does not exist.`);
  return s;
}

/** Multi-Attach, refused wherever a request turns it on (CreateVolume, ModifyVolume): a kmsvol volume has one card. */
export function refuseMultiAttach(req: { MultiAttachEnabled?: boolean }): void {
  if (req.MultiAttachEnabled)
    throw Ec2Errors.invalidParameter('Multi-Attach is not supported here: a kmsvol volume has one card, attached to this one instance.');
}
