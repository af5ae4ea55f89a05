import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../clock.js';
import { ServiceError } from '../errors.js';
import { ensureDir, openPrivate } from '../home.js';
import type { CardKmsClient } from '../kms/client/index.js';
import { lockExclusive } from '../native/index.js';
import type { Ec2Context } from '../volume/context.js';
import { getVolume } from '../volume/context.js';
import { Ec2Errors } from '../volume/errors.js';
import { imageFile } from '../volume/images.js';
import { readImageHeader } from '../volume/luks2.js';
import type { AttachmentRow, VolumeRow } from '../volume/registry.js';
import { upgradeOnAttach } from '../volume/upgrade.js';
import { attachmentShape } from '../volume/volumes.js';
import { callControl, cardError } from './control.js';
import { cardKmsClient, createCardGrant, retireCardGrant } from './grants.js';
import { releaseStaleLoop } from './loop.js';
import { recordedMountDev, releaseStaleMount, walkMountDir } from './paths.js';
import type { CardAttachment } from './runtime.js';
import { Card, lockPath, socketPath } from './runtime.js';
import type { CardSpec } from './spec.js';
import { CARD_SPEC_VERSION, cardEnvironment, serializeCardSpec } from './spec.js';
import { abortFuseConnection, killPending, processAlive } from './system.js';

/** The card's entry point: next to this module once compiled; from the sources (tests), the compiled one in dist/. */
const HERE = path.dirname(fileURLToPath(import.meta.url));
const CARD_MAIN = fs.existsSync(path.join(HERE, 'main.js')) ? path.join(HERE, 'main.js') : path.resolve(HERE, '../../dist/card/main.js');

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

function mountDirFor(ctx: Ec2Context, req: AttachRequest): string {
  return path.resolve(req.Device ?? path.join(ctx.home.runDir, req.VolumeId));
}

/**
 * A directory given to attach-volume --device, where the decrypted volume is
 * mounted as root: checked under the path rule (card/paths.ts) for an early
 * error only. The card, which acts, walks it again itself and mounts on the
 * descriptor its own walk holds.
 */
function checkMountDir(dir: string): void {
  const invalid = (why: string) => Ec2Errors.invalidParameter(`Value (${JSON.stringify(dir).slice(1, -1)}) for parameter device is invalid: ${why}`);
  if (dir.trim() === '') throw invalid('give the directory where the decrypted volume file should appear, for example --device /mnt/kmsvol.');
  // Precondition: the path means what the kernel would make of it. A '..' is resolved as text before the walk
  // (after a link, the kernel would go elsewhere), and a control character is ambiguous in the mount table.
  if (dir.split('/').includes('..')) throw invalid("a '..' component is not taken; give the directory's real path (realpath -m on it).");
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
  if (/[\x00-\x1f\x7f]/.test(dir)) throw invalid('it holds a control character (a newline, a tab...); give a path without one.');
  walkMountDir(path.resolve(dir), 'check');
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
    device: '',
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
    if (ctx.registry.getAttachment(v.volume_id)) throw Ec2Errors.volumeInUse(v.volume_id, ` (at ${a.device_name ?? a.device})`);
  }
  const now = ctx.registry.getVolume(v.volume_id)!;
  // Another attach may have claimed the volume between the two reads: that is VolumeInUse, as it would have been a moment later.
  const claimed = now.state === 'in-use' ? ctx.registry.getAttachment(v.volume_id) : undefined;
  if (claimed) throw Ec2Errors.volumeInUse(v.volume_id, ` (at ${claimed.device_name ?? claimed.device})`);
  if (now.state !== 'available') throw Ec2Errors.incorrectState(`The volume '${v.volume_id}' is '${now.state}'; only an available volume can be attached.`);
  return now;
}

/** An attach that failed after its claim: the claim is released (the volume is available again) and the cause is an event. */
function release(ctx: Ec2Context, v: VolumeRow, e: unknown): never {
  const a = ctx.registry.getAttachment(v.volume_id);
  // A card killed after it mounted (kill -9 or SIGTERM during attach) recorded its mount: it goes with the claim,
  // once the volume's lock shows that no card holds the volume any more.
  if (a?.state === 'attaching' && a.pid === process.pid && a.served_mnt != null) {
    const lockFd = openPrivate(lockPath(ctx.home, v.volume_id), 'a', true);
    try {
      const left = lockExclusive(lockFd) ? releaseStaleMount(a) : undefined;
      if (left) ctx.events.record(v.volume_id, 'attachVolume', 'mount-left-alone', left);
    } finally {
      fs.closeSync(lockFd);
    }
  }
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
 * The card's KMS grant for an encrypted volume and, through a remote KMS, the
 * card's own credentials (made after the claim, so a refused key fails the
 * attach, not the request).
 */
async function grantFor(ctx: Ec2Context, v: VolumeRow): Promise<{ grantToken?: string; card?: CardKmsClient }> {
  if (!v.encrypted) return {};
  const token = readImageHeader(imageFile(ctx.home, v)).token;
  const grantToken = await createCardGrant(ctx.kms, token);
  return { grantToken, card: await cardKmsClient(ctx.kms, token) };
}

/** Retire a card's grant once the card is gone; a KMS that cannot be reached is reported as an event, not a failed detach. */
async function retireGrant(ctx: Ec2Context, volumeId: string, grantToken: string | null | undefined): Promise<void> {
  if (!grantToken) return;
  try {
    await retireCardGrant(ctx.kms, grantToken);
  } catch (e) {
    ctx.events.record(
      volumeId,
      'detachVolume',
      'grant-not-retired',
      `${(e as Error).name}: ${(e as Error).message}. The grant allows only Decrypt of this volume's key by its card; the next attach reuses it, or revoke it with kmsvol kms revoke-grant.`,
    );
  }
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
  return { Attachment: attachmentShape(row, ctx.registry.instanceId()), done: runCard(ctx, req, v).catch((e) => release(ctx, v, e)) };
}

/**
 * Attach, waiting until the volume is usable (or with the card's error: the
 * KMS's own exception when the CMK is unusable). kmsvol's CLI and API wait;
 * EC2 answers `attaching` at once (startAttach).
 */
export async function attachVolume(ctx: Ec2Context, req: AttachRequest): Promise<CardAttachment> {
  return (await startAttach(ctx, req)).done;
}

/** Start the card as its own process; resolves once it serves the volume. */
async function runCard(ctx: Ec2Context, req: AttachRequest, v: VolumeRow): Promise<CardAttachment> {
  await upgradeOnAttach(ctx, v); // an image made before keyslots gets its keyslot (docs/format.md)
  const { grantToken, card } = await grantFor(ctx, v);
  card?.client.close();
  // The card logs (pino JSON lines) to run/<volume>.log.
  ensureDir(ctx.home.runDir);
  const logFile = path.join(ctx.home.runDir, `${v.volume_id}.log`);
  const logFd = openPrivate(logFile, 'a', true);
  // The card works in the caller's region and account, however the caller chose them (--region, AWS_REGION, the API).
  const spec: CardSpec = {
    version: CARD_SPEC_VERSION,
    home: ctx.home.root,
    rootKeyFile: ctx.home.rootKeyFile,
    volumeId: v.volume_id,
    mountDir: mountDirFor(ctx, req),
    loop: !!req.Loop,
    region: ctx.region,
    account: ctx.account,
    ...(ctx.clock === systemClock ? {} : { now: ctx.clock.now().toISOString() }),
    kms: card
      ? { kind: 'remote', ...(card.endpoint ? { endpoint: card.endpoint } : {}), region: card.region, credentials: card.credentials }
      : { kind: 'embedded' },
    ...(grantToken ? { grantToken } : {}),
  };
  // The spec goes on stdin; argv holds the volume id only as a label for ps, and the environment only CARD_ENV.
  const child = spawn(process.execPath, [CARD_MAIN, v.volume_id], {
    detached: true,
    stdio: ['pipe', logFd, logFd, 'pipe'],
    env: cardEnvironment(),
  });
  fs.closeSync(logFd);
  child.stdin!.on('error', () => undefined); // a card that died at once: its report (or its absence) says why
  child.stdin!.end(serializeCardSpec(spec));
  const tail = () => fs.readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join('\n');
  const ready = new Promise<{ ok: boolean; attachment?: CardAttachment; error?: { name: string; message: string } }>((resolve) => {
    let buf = '';
    const pipe = child.stdio[3] as NodeJS.ReadableStream;
    pipe.on('data', (d) => (buf += d));
    pipe.on('end', () => {
      try {
        resolve(JSON.parse(buf));
      } catch {
        resolve({ ok: false, error: { name: 'InternalError', message: `the card exited before it was ready; the end of ${logFile}:\n${tail()}` } });
      }
    });
  });
  // A card killed while it waits on its own FUSE mount cannot exit, nor report: abort its connection.
  const watchdog = setInterval(() => unstick(ctx, v.volume_id, child.pid!), 250);
  const r = await ready.finally(() => clearInterval(watchdog));
  if (!r.ok || !r.attachment) {
    // The grant is shared (by name) with a card that won a race for the volume's lock: leave it to that card,
    // unless what held the lock was a delete (the volume is gone, no card will retire it).
    const now = ctx.registry.getVolume(v.volume_id);
    const gone = !now || now.state === 'deleted' || now.state === 'deleting';
    if (r.error?.name !== 'VolumeInUse' || gone) await retireGrant(ctx, v.volume_id, grantToken);
    throw cardError({
      error: r.error ?? { name: 'InternalError', message: `the card reported neither an attachment nor an error; the end of ${logFile}:\n${tail()}` },
    });
  }
  // The card runs on: stop listening to it so this process can exit.
  child.unref();
  return { ...r.attachment, AttachTime: new Date(r.attachment.AttachTime), InstanceId: ctx.registry.instanceId() };
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
export async function startDetach(ctx: Ec2Context, req: { VolumeId: string; Force?: boolean; InstanceId?: string; Device?: string }): Promise<DetachStarted> {
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
 * The end of a detach, once the card has stopped serving: its grant is
 * retired, and only then is the volume available. The grant is the same by
 * name on every attach of a volume (CreateGrant is idempotent by Name), so a
 * volume shown available while its grant was still being retired could be
 * attached again, by any process, and the new card lose the grant to the
 * retirement. Whoever holds the volume's lock finishes (a reconcile in another
 * process may be doing it already): this waits until the attachment of the
 * card `pid` is gone.
 */
async function finishDetach(ctx: Ec2Context, v: VolumeRow, pid: number): Promise<void> {
  for (const end = Date.now() + 60_000; ctx.registry.getAttachment(v.volume_id)?.pid === pid; ) {
    const a = ctx.registry.getAttachment(v.volume_id)!;
    const lockFd = openPrivate(lockPath(ctx.home, v.volume_id), 'a', true);
    try {
      if (lockExclusive(lockFd)) return await cleanupLocked(ctx, v, a, 'detachVolume', '');
    } finally {
      fs.closeSync(lockFd);
    }
    if (Date.now() > end) throw Ec2Errors.incorrectState(`Volume '${v.volume_id}' is still detaching after 60 s; describe-volumes shows when it is available.`);
    await new Promise((r) => setTimeout(r, 20));
  }
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
  const accepted = a.device_name ? [a.device_name] : [a.device, a.mount_dir].filter(Boolean);
  if (req.Device !== undefined && !accepted.includes(req.Device))
    throw new ServiceError('InvalidAttachment.NotFound', `Volume '${v.volume_id}' is not attached at '${req.Device}'; it is attached at '${device}'.`);
}

/** Detach, waiting until the card has gone (kmsvol's CLI and API wait; EC2 answers `detaching` at once). */
export async function detachVolume(ctx: Ec2Context, req: { VolumeId: string; Force?: boolean; InstanceId?: string; Device?: string }) {
  const started = await startDetach(ctx, req);
  await started.done;
  return started.Attachment;
}

/** Waits for the card to exit: polled, first every 2 ms (a detached card exits within milliseconds), then less often. */
async function waitForExit(pid: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (let wait = 2; processAlive(pid); wait = Math.min(wait * 2, 25)) {
    if (Date.now() > end) throw new Error(`the card (pid ${pid}) did not exit within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, wait));
  }
}

/** A card that died took its key with it; clean up its stale mount, loop device and lock. */
/**
 * A card that was sent SIGKILL while it waited on a request to its own FUSE
 * mount (its killed workers will never answer, and the kernel waits
 * uninterruptibly) exits once its connection is aborted. Precondition: the
 * connection aborted is the one of the mount the card recorded, still at its
 * mount directory with the same unique id (card/paths.ts, recordedMountDev);
 * never one found by a device number alone, which another mount may have
 * taken since, nor for a pid that was reused.
 */
function unstick(ctx: Ec2Context, volumeId: string, pid: number): void {
  if (!killPending(pid)) return;
  const a = ctx.registry.getAttachment(volumeId);
  const dev = a ? recordedMountDev(a) : undefined;
  if (dev !== undefined && abortFuseConnection(dev))
    ctx.events.record(volumeId, 'detachVolume', 'connection-aborted', `the card (pid ${pid}) was killed while it waited on its own FUSE mount`);
}

export async function reconcile(ctx: Ec2Context, v: VolumeRow, a: AttachmentRow): Promise<void> {
  if (processAlive(a.pid) && killPending(a.pid)) {
    unstick(ctx, v.volume_id, a.pid);
    await waitForExit(a.pid, 5000).catch(() => undefined);
  }
  // An attach in progress is alive while the process attaching it is (its card may not hold the lock yet).
  if (a.state === 'attaching' && processAlive(a.pid)) return;
  if (processAlive(a.pid)) {
    // A live pid may be a reused one: the lock says whether a card still holds the volume.
    const fd = openPrivate(lockPath(ctx.home, v.volume_id), 'a', true);
    const held = !lockExclusive(fd);
    fs.closeSync(fd);
    if (held) return;
  }
  await cleanupStale(ctx, v, a, 'detachVolume', 'card process exited');
}

/**
 * Precondition: only whoever holds the volume's lock touches its socket and
 * run files. Cleanup takes the lock first and does nothing when a live card
 * (a new attach that won the race) holds it.
 */
async function cleanupStale(ctx: Ec2Context, v: VolumeRow, a: AttachmentRow, event: string, cause: string): Promise<void> {
  const lockFd = openPrivate(lockPath(ctx.home, v.volume_id), 'a', true);
  try {
    if (!lockExclusive(lockFd)) return;
    await cleanupLocked(ctx, v, a, event, cause);
  } finally {
    fs.closeSync(lockFd);
  }
}

async function cleanupLocked(ctx: Ec2Context, v: VolumeRow, a: AttachmentRow, event: string, cause: string): Promise<void> {
  // A dead card's loop device freed itself (autoclear) unless something still holds it open; it is
  // released only if it is still the card's, never by its number alone (card/loop.ts).
  releaseStaleLoop(a);
  // The dead card's FUSE mount, reached without following a link and released through a descriptor, only if it is the one recorded.
  const left = releaseStaleMount(a);
  if (left) ctx.events.record(v.volume_id, event, 'mount-left-alone', left);
  fs.rmSync(socketPath(ctx.home, v.volume_id), { force: true });
  // Precondition: the grant is retired before the volume is available (see finishDetach).
  await retireGrant(ctx, v.volume_id, a.grant_token);
  const released = ctx.registry.write(() => {
    // Another process may have finished this attachment already, and a new one begun.
    const now = ctx.registry.getAttachment(v.volume_id);
    if (now?.pid !== a.pid || now.attach_time !== a.attach_time) return false;
    ctx.registry.deleteAttachment(v.volume_id);
    ctx.registry.setVolumeState(v.volume_id, 'available');
    return true;
  });
  if (released) ctx.events.record(v.volume_id, event, 'available', cause);
}
