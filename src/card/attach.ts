import { ServiceError } from '../errors.js';
import type { CardKmsClient } from '../kms/client/index.js';
import type { Ec2Context } from '../volume/context.js';
import { getVolume } from '../volume/context.js';
import { Ec2Errors } from '../volume/errors.js';
import type { AttachmentRow, VolumeRow } from '../volume/registry.js';
import { attachmentShape } from '../volume/volumes.js';
import { finishDetach, reconcile, releaseClaimedMount } from './cleanup.js';
import { grantFor, retireGrant } from './grants.js';
import { checkMountDir, mountDirFor } from './mountdir.js';
import type { CardAttachment } from './runtime.js';
import { Card } from './runtime.js';
import { runCard } from './spawn.js';

/**
 * Attach and its checks. The other jobs of an attachment are apart: where
 * the volume is mounted (mountdir.ts, under the path rule of paths.ts), the
 * card's process (spawn.ts), detach (detach.ts), and the cleanup after a
 * dead card (cleanup.ts, the one place for it).
 */
export interface AttachRequest {
  VolumeId: string;
  /** Directory where the decrypted volume file appears (default: the home's run directory). */
  Device?: string;
  Loop?: boolean;
  /** The device name an EC2 caller asked for (`/dev/sdf`), shown as the attachment's Device. */
  DeviceName?: string;
  /** EC2's InstanceId: when given, it must be this host's. */
  InstanceId?: string;
}

/** Record a failed attach as an EBS Volume Notification, whatever the cause, and rethrow. */
function attachFailed(ctx: Ec2Context, volumeId: string, e: unknown): never {
  const err = e instanceof Error ? e : new Error(String(e));
  if (err.name !== 'InvalidVolume.NotFound') {
    ctx.events.record(volumeId, 'attachVolume', 'failed', `${err.name}: ${err.message}`);
  }
  throw err;
}

/**
 * The synchronous half of an attach, as EC2 checks it before answering
 * `attaching`: the volume exists and is available, and no attachment is
 * recorded for it; then one is, in state `attaching`, owned by this process.
 */
async function claim(ctx: Ec2Context, req: AttachRequest): Promise<{ v: VolumeRow; row: AttachmentRow }> {
  const v = await checkAttach(ctx, req);
  const row: AttachmentRow = {
    volume_id: v.volume_id,
    volume_file: '',
    mount_dir: mountDirFor(ctx, req),
    loop_device: null,
    attach_time: ctx.clock.now().getTime(),
    pid: process.pid,
    state: 'attaching',
    grant_token: null,
    device_name: req.DeviceName ?? null,
  };
  const won = ctx.registry.write(() => {
    if (!ctx.registry.claimAttachment(row)) return false;
    ctx.registry.setVolumeState(v.volume_id, 'in-use');
    return true;
  });
  if (!won) throw Ec2Errors.volumeInUse(v.volume_id, ' (another attach is in progress)');
  return { v, row };
}

/** What an attach checks before it records anything (also what a DryRun checks). */
export async function checkAttach(ctx: Ec2Context, req: AttachRequest): Promise<VolumeRow> {
  const v = getVolume(ctx, req.VolumeId);
  if (req.Device !== undefined) checkMountDir(req.Device);
  if (req.InstanceId !== undefined && req.InstanceId !== ctx.registry.instanceId()) {
    throw new ServiceError(
      'InvalidInstanceID.NotFound',
      `The instance ID '${req.InstanceId}' does not exist. This host is instance ${ctx.registry.instanceId()}.`,
    );
  }
  if (req.DeviceName !== undefined && !/^\/dev\/(sd[b-z]|xvd[b-z][a-z]?|sd[b-z][1-9]|nvme\d+n1|hd[a-z])$/.test(req.DeviceName)) {
    throw Ec2Errors.invalidParameter(
      `Value (${req.DeviceName}) for parameter device is invalid. ${req.DeviceName} is not a valid EBS device name; use a name such as /dev/sdf or /dev/xvdf.`,
    );
  }
  const a = ctx.registry.getAttachment(v.volume_id);
  if (a) {
    await reconcile(ctx, v, a);
    if (ctx.registry.getAttachment(v.volume_id)) throw Ec2Errors.volumeInUse(v.volume_id, ` (at ${a.device_name ?? a.volume_file})`);
  }
  const now = ctx.registry.getVolume(v.volume_id)!;
  // Another attach may have claimed the volume between the two reads: that is VolumeInUse, as it would have been a moment later.
  const claimed = now.state === 'in-use' ? ctx.registry.getAttachment(v.volume_id) : undefined;
  if (claimed) throw Ec2Errors.volumeInUse(v.volume_id, ` (at ${claimed.device_name ?? claimed.volume_file})`);
  if (now.state !== 'available') throw Ec2Errors.incorrectState(`The volume '${v.volume_id}' is '${now.state}'; only an available volume can be attached.`);
  return now;
}

/** An attach that failed after its claim: the claim is released (the volume is available again) and the cause is an event. */
function release(ctx: Ec2Context, v: VolumeRow, e: unknown): never {
  releaseClaimedMount(ctx, v);
  ctx.registry.write(() => {
    const a = ctx.registry.getAttachment(v.volume_id);
    if (a?.state === 'attaching' && a.pid === process.pid) {
      ctx.registry.deleteAttachment(v.volume_id);
      ctx.registry.setVolumeState(v.volume_id, 'available');
    }
  });
  return attachFailed(ctx, v.volume_id, e);
}

/**
 * Attach: start the card as its own process and return once the volume is
 * usable (or with the card's error: the KMS's own exception when the CMK is unusable).
 */
export interface AttachStarted {
  /** The answer EC2 gives at once: the attachment in state `attaching`. */
  Attachment: ReturnType<typeof attachmentShape>;
  /** Settles once the card serves the volume, or rejects with the card's error (the volume is available again, and an event says why). */
  done: Promise<CardAttachment>;
}

/** AttachVolume as EC2 does it: checked and recorded as `attaching` at once; the grant and the card follow. */
export async function startAttach(ctx: Ec2Context, req: AttachRequest): Promise<AttachStarted> {
  const { v, row } = await claim(ctx, req);
  const done = runCard(ctx, v, mountDirFor(ctx, req), !!req.Loop).catch((e) => release(ctx, v, e));
  return { Attachment: attachmentShape(row, ctx.registry.instanceId()), done };
}

/**
 * Attach, waiting until the volume is usable (or with the card's error: the
 * KMS's own exception when the CMK is unusable). kmsvol's CLI and API wait;
 * EC2 answers `attaching` at once (startAttach).
 */
export async function attachVolume(ctx: Ec2Context, req: AttachRequest): Promise<CardAttachment> {
  return (await startAttach(ctx, req)).done;
}

/** Attach in this process (`--foreground`): resolves with the attachment once ready; `stopped` once detached and the grant retired. */
export async function attachForeground(ctx: Ec2Context, req: AttachRequest): Promise<{ attachment: CardAttachment; card: Card; stopped: Promise<void> }> {
  const { v } = await claim(ctx, req);
  let grantToken: string | undefined;
  let own: CardKmsClient | undefined;
  try {
    ({ grantToken, card: own } = await grantFor(ctx, v));
  } catch (e) {
    return release(ctx, v, e);
  }
  const card = new Card({
    home: ctx.home,
    volumeId: v.volume_id,
    mountDir: mountDirFor(ctx, req),
    loop: !!req.Loop,
    clock: ctx.clock,
    region: ctx.region,
    account: ctx.account,
    kms: (caller) => (own?.client ?? ctx.kms).as(caller),
    grantToken,
    changeTracking: process.env.KMSVOL_CHANGE_TRACKING !== '0', // off for benchmarks only, as spawn.ts
  });
  const closeOwn = () => own?.client.close();
  void card.stopped.then(closeOwn, closeOwn);
  try {
    const attachment = await card.start();
    return { attachment, card, stopped: card.stopped.then(() => finishDetach(ctx, v, process.pid)) };
  } catch (e) {
    if ((e as Error).name !== 'VolumeInUse') await retireGrant(ctx, v.volume_id, grantToken);
    return release(ctx, v, e);
  }
}
