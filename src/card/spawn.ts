import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { systemClock } from '../clock.js';
import { ensureDir, openPrivate } from '../home.js';
import { packageRoot } from '../root.js';
import type { Ec2Context } from '../volume/context.js';
import type { VolumeRow } from '../volume/registry.js';
import { upgradeOnAttach } from '../volume/upgrade.js';
import { unstick } from './cleanup.js';
import { cardError } from './control.js';
import { grantFor, retireGrant } from './grants.js';
import type { CardAttachment } from './runtime.js';
import type { CardSpec } from './spec.js';
import { CARD_SPEC_VERSION, cardEnvironment, serializeCardSpec } from './spec.js';

/** The card's entry point (the card bundle, or dist/card/main.js when it is stale), whether this module runs from dist/, from the sources (tests) or from the CLI bundle. */
const cardMain = () => path.join(packageRoot(), 'bin/card/main.js');

/**
 * Start the card as its own process, for volume `v` mounted at `mountDir`;
 * resolves once it serves the volume, or rejects with the card's error (the
 * KMS's own exception when the CMK is unusable).
 */
export async function runCard(ctx: Ec2Context, v: VolumeRow, mountDir: string, loop: boolean): Promise<CardAttachment> {
  // The card logs (pino JSON lines) to run/<volume>.log.
  ensureDir(ctx.home.runDir);
  const logFile = path.join(ctx.home.runDir, `${v.volume_id}.log`);
  const logFd = openPrivate(logFile, 'a', true);
  // The card starts first: Node and its bundle load while the grant is made, and it does nothing until its spec
  // arrives on stdin. Argv holds the volume id only as a label for ps, and the environment only CARD_ENV.
  const child = spawn(process.execPath, [cardMain(), v.volume_id], {
    detached: true,
    stdio: ['pipe', logFd, logFd, 'pipe'],
    env: cardEnvironment(),
  });
  fs.closeSync(logFd);
  child.stdin!.on('error', () => undefined); // a card that died at once: its report (or its absence) says why
  let grant: Awaited<ReturnType<typeof grantFor>>;
  try {
    await upgradeOnAttach(ctx, v); // an image made before keyslots gets its keyslot (docs/format.md)
    grant = await grantFor(ctx, v);
  } catch (e) {
    child.kill('SIGKILL'); // still waiting for its spec (our own child, not yet reaped: its pid is not reused)
    child.unref();
    throw e;
  }
  const { grantToken, card } = grant;
  card?.client.close();
  // The card works in the caller's region and account, however the caller chose them (--region, AWS_REGION, the API).
  const spec: CardSpec = {
    version: CARD_SPEC_VERSION,
    home: ctx.home.root,
    rootKeyFile: ctx.home.rootKeyFile,
    volumeId: v.volume_id,
    mountDir,
    loop,
    region: ctx.region,
    account: ctx.account,
    ...(ctx.clock === systemClock ? {} : { now: ctx.clock.now().toISOString() }),
    kms: card
      ? { kind: 'remote', ...(card.endpoint ? { endpoint: card.endpoint } : {}), region: card.region, credentials: card.credentials }
      : { kind: 'embedded' },
    ...(grantToken ? { grantToken } : {}),
    // KMSVOL_CHANGE_TRACKING=0 turns change tracking off, for benchmarks only (bench/change-tracking.mjs): every snapshot then reads every block.
    ...(process.env.KMSVOL_CHANGE_TRACKING === '0' ? { changeTracking: false as const } : {}),
  };
  // The spec goes on stdin.
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
