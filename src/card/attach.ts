import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ServiceError } from '../errors.js';
import { unmountStale } from '../fuse/adapter.js';
import { ensureDir, openPrivate } from '../home.js';
import { lockExclusive } from '../native/index.js';
import type { KmsClient } from '../kms/client/index.js';
import { Ec2Errors } from '../volume/errors.js';
import type { AttachmentRow, VolumeRow } from '../volume/registry.js';
import { readImageHeader } from '../volume/luks2.js';
import { getVolume, imageFile } from '../volume/volumes.js';
import type { Ec2Context } from '../volume/volumes.js';
import { callControl } from './control.js';
import { cardKmsClient, createCardGrant, retireCardGrant } from './grants.js';
import { Card, lockPath, socketPath } from './runtime.js';
import type { CardAttachment } from './runtime.js';
import { isMounted, losetupDetach, loopsFor, processAlive } from './system.js';

/** The card's entry point: next to this module once compiled; from the sources (tests), the compiled one in dist/. */
const HERE = path.dirname(fileURLToPath(import.meta.url));
const CARD_MAIN = fs.existsSync(path.join(HERE, 'main.js')) ? path.join(HERE, 'main.js') : path.resolve(HERE, '../../dist/card/main.js');

export interface AttachRequest {
  VolumeId: string;
  /** Directory where the decrypted volume file appears (default: the home's run directory). */
  Device?: string;
  Loop?: boolean;
}

function mountDirFor(ctx: Ec2Context, req: AttachRequest): string {
  return path.resolve(req.Device ?? path.join(ctx.home.runDir, req.VolumeId));
}

/** Record a failed attach as an EBS Volume Notification, whatever the cause, and rethrow. */
function attachFailed(ctx: Ec2Context, volumeId: string, e: unknown): never {
  const err = e instanceof Error ? e : new Error(String(e));
  if (err.name !== 'InvalidVolume.NotFound') {
    ctx.events.record(volumeId, 'attachVolume', 'failed', `${err.name}: ${err.message}`);
  }
  throw err;
}

/** The volume, if it can be attached, and (for an encrypted one) the card's new KMS grant and, through a remote KMS, the card's own credentials. */
async function precheck(ctx: Ec2Context, req: AttachRequest): Promise<{ v: VolumeRow; grantToken?: string; card?: { client: KmsClient; env: Record<string, string> } }> {
  const v = getVolume(ctx, req.VolumeId);
  const a = ctx.registry.getAttachment(v.volume_id);
  if (a) {
    await reconcile(ctx, v, a);
    if (ctx.registry.getAttachment(v.volume_id)) throw Ec2Errors.volumeInUse(v.volume_id, ` (at ${a.device})`);
  }
  if (!v.encrypted) return { v };
  try {
    const token = readImageHeader(imageFile(ctx.home, v)).token;
    const grantToken = await createCardGrant(ctx.kms, token);
    return { v, grantToken, card: await cardKmsClient(ctx.kms, token) };
  } catch (e) {
    return attachFailed(ctx, v.volume_id, e);
  }
}

/** Retire a card's grant once the card is gone; a KMS that cannot be reached is reported as an event, not a failed detach. */
async function retireGrant(ctx: Ec2Context, volumeId: string, grantToken: string | null | undefined): Promise<void> {
  if (!grantToken) return;
  try {
    await retireCardGrant(ctx.kms, grantToken);
  } catch (e) {
    ctx.events.record(volumeId, 'detachVolume', 'grant-not-retired', `${(e as Error).name}: ${(e as Error).message}. The grant allows only Decrypt of this volume's key by its card; the next attach reuses it, or revoke it with kmsvol kms revoke-grant.`);
  }
}

/**
 * Attach: start the card as its own process and return once the volume is
 * usable (or with the card's error: the KMS's own exception when the CMK is unusable).
 */
export async function attachVolume(ctx: Ec2Context, req: AttachRequest): Promise<CardAttachment> {
  const { v, grantToken, card } = await precheck(ctx, req);
  card?.client.close();
  // The card logs (pino JSON lines) to run/<volume>.log.
  ensureDir(ctx.home.runDir);
  const logFile = path.join(ctx.home.runDir, `${v.volume_id}.log`);
  const logFd = openPrivate(logFile, 'a', true);
  const child = spawn(process.execPath, [CARD_MAIN, ctx.home.root, v.volume_id, mountDirFor(ctx, req), req.Loop ? '1' : '0'], {
    detached: true,
    stdio: ['ignore', logFd, logFd, 'pipe'],
    // The card works in the caller's region and account, however the caller chose them (--region, AWS_REGION, the API).
    env: { ...process.env, ...card?.env, KMSVOL_REGION: ctx.region, KMSVOL_ACCOUNT_ID: ctx.account, KMSVOL_CARD_GRANT_TOKEN: grantToken ?? '' },
  });
  fs.closeSync(logFd);
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
  const r = await ready;
  if (!r.ok || !r.attachment) {
    // The grant is shared (by name) with a card that won a race for the volume's lock: leave it to that card,
    // unless what held the lock was a delete (the volume is gone, no card will retire it).
    const now = ctx.registry.getVolume(v.volume_id);
    const gone = !now || now.state === 'deleted' || now.state === 'deleting';
    if (r.error?.name !== 'VolumeInUse' || gone) await retireGrant(ctx, v.volume_id, grantToken);
    return attachFailed(ctx, v.volume_id, new ServiceError(r.error!.name, r.error!.message));
  }
  // The card runs on: stop listening to it so this process can exit.
  child.unref();
  return { ...r.attachment, AttachTime: new Date(r.attachment.AttachTime) };
}

/** Attach in this process (`--foreground`): resolves with the attachment once ready; `stopped` once detached and the grant retired. */
export async function attachForeground(ctx: Ec2Context, req: AttachRequest): Promise<{ attachment: CardAttachment; card: Card; stopped: Promise<void> }> {
  const { v, grantToken, card: own } = await precheck(ctx, req);
  const card = new Card({ home: ctx.home, volumeId: v.volume_id, mountDir: mountDirFor(ctx, req), loop: !!req.Loop, clock: ctx.clock, region: ctx.region, account: ctx.account, kms: own?.client ?? ctx.kms, grantToken });
  const release = () => own?.client.close();
  void card.stopped.then(release, release);
  try {
    const attachment = await card.start();
    return { attachment, card, stopped: card.stopped.then(() => retireGrant(ctx, v.volume_id, grantToken)) };
  } catch (e) {
    if ((e as Error).name !== 'VolumeInUse') await retireGrant(ctx, v.volume_id, grantToken);
    return attachFailed(ctx, v.volume_id, e);
  }
}

/** Detach: ask the card to drain, fsync, release the loop device, unmount and zeroize; `Force` handles a hung card. */
export async function detachVolume(ctx: Ec2Context, req: { VolumeId: string; Force?: boolean }) {
  const v = getVolume(ctx, req.VolumeId);
  const a = ctx.registry.getAttachment(v.volume_id);
  if (!a) throw Ec2Errors.notAttached(v.volume_id);
  const result = { AttachTime: new Date(a.attach_time), Device: a.device, InstanceId: 'local', State: 'detaching', VolumeId: v.volume_id, DeleteOnTermination: false };
  try {
    const reply = await callControl(socketPath(ctx.home, v.volume_id), { op: 'detach', force: !!req.Force }, req.Force ? 10_000 : 60_000);
    if (!reply.ok) throw new ServiceError(reply.error.name, reply.error.message);
    await waitForExit(a.pid, req.Force ? 10_000 : 60_000);
    await retireGrant(ctx, v.volume_id, a.grant_token);
  } catch (e) {
    if (!req.Force) {
      if (e instanceof ServiceError) throw e;
      // The card is gone or not answering: clean up if it died, else say what to do.
      await reconcile(ctx, v, a);
      if (ctx.registry.getAttachment(v.volume_id)) throw Ec2Errors.incorrectState(`The card of ${v.volume_id} (pid ${a.pid}) does not answer: ${(e as Error).message}. Use detach-volume --force.`);
      return result;
    }
    if (processAlive(a.pid)) process.kill(a.pid, 'SIGKILL');
    await waitForExit(a.pid, 10_000).catch(() => undefined);
    await cleanupStale(ctx, v, a, 'detachVolume', 'forced');
  }
  return result;
}

async function waitForExit(pid: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (processAlive(pid)) {
    if (Date.now() > end) throw new Error(`the card (pid ${pid}) did not exit within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A card that died took its key with it; clean up its stale mount, loop device and lock. */
export async function reconcile(ctx: Ec2Context, v: VolumeRow, a: AttachmentRow): Promise<void> {
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
  if (a.loop_device) await losetupDetach(a.loop_device).catch(() => undefined);
  for (const dev of await loopsFor(a.device)) await losetupDetach(dev).catch(() => undefined);
  if (isMounted(a.mount_dir)) await unmountStale(a.mount_dir);
  fs.rmSync(socketPath(ctx.home, v.volume_id), { force: true });
  await retireGrant(ctx, v.volume_id, a.grant_token);
  ctx.registry.write(() => {
    ctx.registry.deleteAttachment(v.volume_id);
    ctx.registry.setVolumeState(v.volume_id, 'available');
  });
  ctx.events.record(v.volume_id, event, 'available', cause);
}
