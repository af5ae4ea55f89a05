import { ServiceError } from '../errors.js';
import type { Ec2Context } from '../volume/context.js';
import { getVolume } from '../volume/context.js';
import { Ec2Errors } from '../volume/errors.js';
import type { AttachmentRow, VolumeRow } from '../volume/registry.js';
import { attachmentShape } from '../volume/volumes.js';
import { cleanupStale, finishDetach, reconcile, unstick, waitForExit } from './cleanup.js';
import { callControl, cardError } from './control.js';
import { socketPath } from './runtime.js';
import { processAlive } from './system.js';

export interface DetachRequest {
  VolumeId: string;
  Force?: boolean;
  InstanceId?: string;
  Device?: string;
}

export interface DetachStarted {
  /** The answer EC2 gives at once: the attachment in state `detaching`. */
  Attachment: ReturnType<typeof attachmentShape>;
  /** Settles once the card has gone (drained, fsynced, key zeroized) and its grant is retired. */
  done: Promise<void>;
}

/**
 * DetachVolume as EC2 does it: the card is asked to detach (a busy volume is
 * refused at once), the attachment is `detaching`, and the card's exit
 * follows. `Force` handles a hung or dead card.
 */
export async function startDetach(ctx: Ec2Context, req: DetachRequest): Promise<DetachStarted> {
  const v = getVolume(ctx, req.VolumeId);
  // A detach during an attach waits for the attach to finish (its card cannot be asked yet).
  let a = ctx.registry.getAttachment(v.volume_id);
  for (const end = Date.now() + 60_000; a?.state === 'attaching'; a = ctx.registry.getAttachment(v.volume_id)) {
    await reconcile(ctx, v, a);
    if (Date.now() > end) throw Ec2Errors.incorrectState(`Volume '${v.volume_id}' is still attaching after 60 s; detach it once it is attached.`);
    await new Promise((r) => setTimeout(r, 100));
  }
  checkDetach(ctx, v, a, req);
  const Attachment = { ...attachmentShape(a, ctx.registry.instanceId()), State: 'detaching' as const };
  const timeout = req.Force ? 10_000 : 60_000;
  const forced = async () => {
    if (processAlive(a!.pid)) process.kill(a!.pid, 'SIGKILL');
    await waitForExit(a!.pid, 1000).catch(() => unstick(ctx, v.volume_id, a!.pid));
    await waitForExit(a!.pid, 10_000).catch(() => undefined);
    // The row as the card left it (a card that stopped has released its loop device).
    const now = ctx.registry.getAttachment(v.volume_id);
    if (now?.pid === a!.pid) await cleanupStale(ctx, v, now, 'detachVolume', 'forced');
  };
  let reply: Awaited<ReturnType<typeof callControl>>;
  try {
    reply = await callControl(socketPath(ctx.home, v.volume_id), { op: 'detach', force: !!req.Force }, timeout);
  } catch (e) {
    if (req.Force) return { Attachment, done: forced() };
    // The card is gone or not answering: clean up if it died, else say what to do.
    await reconcile(ctx, v, a);
    if (ctx.registry.getAttachment(v.volume_id))
      throw Ec2Errors.incorrectState(`The card of ${v.volume_id} (pid ${a.pid}) does not answer: ${(e as Error).message}. Use detach-volume --force.`);
    return { Attachment, done: Promise.resolve() };
  }
  if (!reply.ok) {
    if (!req.Force) throw cardError(reply);
    return { Attachment, done: forced() };
  }
  ctx.registry.write(() => {
    if (ctx.registry.getAttachment(v.volume_id)?.pid === a!.pid) ctx.registry.setAttachmentState(v.volume_id, 'detaching');
  });
  const done = (async () => {
    try {
      await waitForExit(a.pid, timeout);
    } catch (e) {
      if (!req.Force) throw e;
      return forced();
    }
    await finishDetach(ctx, v, a.pid);
  })();
  return { Attachment, done };
}

/**
 * What a detach checks against the volume's attachment (also what a DryRun
 * checks). Precondition: an InstanceId or Device given must match the
 * attachment, as EC2 refuses them with InvalidAttachment.NotFound. The Device
 * is the attachment's as describe-volumes shows it (`/dev/sdf` through the EC2
 * API; the decrypted volume file for `kmsvol ec2 attach-volume`, which also
 * accepts the directory given to its --device).
 */
export function checkDetach(
  ctx: Ec2Context,
  v: VolumeRow,
  a: AttachmentRow | undefined,
  req: { InstanceId?: string; Device?: string },
): asserts a is AttachmentRow {
  if (!a) throw Ec2Errors.notAttached(v.volume_id);
  const instance = ctx.registry.instanceId();
  if (req.InstanceId !== undefined && req.InstanceId !== instance)
    throw new ServiceError(
      'InvalidAttachment.NotFound',
      `Volume '${v.volume_id}' is not attached to instance '${req.InstanceId}'; it is attached to ${instance}.`,
    );
  const device = attachmentShape(a, instance).Device;
  const accepted = a.device_name ? [a.device_name] : [a.volume_file, a.mount_dir].filter(Boolean);
  if (req.Device !== undefined && !accepted.includes(req.Device))
    throw new ServiceError('InvalidAttachment.NotFound', `Volume '${v.volume_id}' is not attached at '${req.Device}'; it is attached at '${device}'.`);
}

/** Detach, waiting until the card has gone (kmsvol's CLI and API wait; EC2 answers `detaching` at once). */
export async function detachVolume(ctx: Ec2Context, req: DetachRequest) {
  const started = await startDetach(ctx, req);
  await started.done;
  return started.Attachment;
}
