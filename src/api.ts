import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CardAttachment } from './card/runtime.js';
import { ManualClock } from './clock.js';
import { configuredAccount, configuredRegion, DEFAULT_REGION } from './config.js';
import { openEc2Context, viaEc2 } from './ec2/context.js';
import { invoke } from './ec2/invoke.js';
import type { Ec2OperationName } from './ec2/operations.js';
import type { Home } from './home.js';
import { openHome } from './home.js';
import { InProcessKmsClient } from './kms/client/index.js';
import { Kms } from './kms/kms.js';
import type { Ec2Context } from './volume/context.js';
import { EventLog } from './volume/events.js';
import type { Filter } from './volume/filters.js';
import type { createSnapshot } from './volume/snapshots.js';
import type { CreateVolumeRequest, createVolume, describeVolumes, volumeShape } from './volume/volumes.js';

export interface KmsvolOptions {
  /** Home directory; a new temporary one (removed by close()) when omitted. */
  home?: string;
  /** The clock; a card started by attach reads the instant it showed at attach (in its spec). Default: now, movable. */
  clock?: ManualClock;
  /** The region and account, chosen as the CLI chooses them: default KMSVOL_REGION, else the AWS CLI's region (AWS_REGION, AWS_DEFAULT_REGION, ~/.aws/config), else us-east-1; KMSVOL_ACCOUNT_ID, else 000000000000. */
  region?: string;
  account?: string;
}

/**
 * The programmatic API for integration tests of detach and reattach: a home
 * with the embedded KMS, volumes, real card processes, and a movable clock.
 * Errors are typed; `err.name` is AWS's exception name.
 *
 *   const kv = Kmsvol.open();
 *   const key = kv.kms.invoke('CreateKey', {}).KeyMetadata.KeyId;
 *   const vol = await kv.createVolume({ Size: 1, Encrypted: true, KmsKeyId: key });
 *   const { Device, LoopDevice } = await kv.attachVolume(vol.VolumeId, { loop: true });
 *   await kv.detachVolume(vol.VolumeId);
 *   kv.kms.invoke('DisableKey', { KeyId: key });
 *   await kv.attachVolume(vol.VolumeId);   // rejects: err.name === 'DisabledException'
 *   await kv.close();
 */
export class Kmsvol {
  readonly home: Home;
  readonly kms: Kms;
  readonly clock: ManualClock;
  readonly ctx: Ec2Context & { close(): void };
  private readonly temporary: boolean;

  private constructor(dir: string, temporary: boolean, clock: ManualClock, region: string, account: string) {
    this.home = openHome(dir);
    this.temporary = temporary;
    this.clock = clock;
    this.kms = Kms.open({ home: this.home, clock, region, account });
    // The volume side calls the KMS through EC2, as EBS does.
    const client = new InProcessKmsClient(this.kms, { viaService: viaEc2(this.kms.region) }, false);
    this.ctx = openEc2Context({ home: this.home, kms: client, clock, region: this.kms.region, account: this.kms.account });
  }

  /**
   * One EC2 operation through the registry's handler, in kmsvol's own form
   * (`local`), as the CLI runs it: the result once the work is done (the
   * volume available, the snapshot completed), or the answer when that
   * work has no result of its own (a detach).
   */
  private async call<T>(name: Ec2OperationName, req: object): Promise<T> {
    const { answer, done } = await invoke(this.ctx, name, req as Record<string, unknown>, { local: true });
    return ((await done) ?? answer) as T;
  }

  static open(opts: KmsvolOptions = {}): Kmsvol {
    const temporary = opts.home === undefined;
    const dir = opts.home ?? fs.mkdtempSync(path.join(os.tmpdir(), 'kmsvol-'));
    return new Kmsvol(
      dir,
      temporary,
      opts.clock ?? new ManualClock(new Date()),
      configuredRegion(opts.region) ?? DEFAULT_REGION,
      configuredAccount(opts.account),
    );
  }

  createVolume(req: CreateVolumeRequest) {
    return this.call<Awaited<ReturnType<typeof createVolume>>>('CreateVolume', req);
  }

  describeVolumes(req: { VolumeIds?: string[]; Filters?: Filter[] } = {}) {
    return this.call<Awaited<ReturnType<typeof describeVolumes>>>('DescribeVolumes', req);
  }

  deleteVolume(volumeId: string) {
    return this.call<Record<string, never>>('DeleteVolume', { VolumeId: volumeId });
  }

  /** Start a card for the volume; resolves with its Device (the decrypted file) and LoopDevice. */
  attachVolume(volumeId: string, opts: { loop?: boolean; device?: string } = {}) {
    this.kms.flushAudit();
    return this.call<CardAttachment>('AttachVolume', { VolumeId: volumeId, Loop: opts.loop, Device: opts.device });
  }

  detachVolume(volumeId: string, opts: { force?: boolean } = {}) {
    return this.call<ReturnType<typeof volumeShape>['Attachments'][number]>('DetachVolume', { VolumeId: volumeId, Force: opts.force });
  }

  createSnapshot(volumeId: string, description?: string) {
    return this.call<Awaited<ReturnType<typeof createSnapshot>>>('CreateSnapshot', { VolumeId: volumeId, Description: description });
  }

  copySnapshot(req: { SourceSnapshotId: string; Encrypted?: boolean; KmsKeyId?: string; Description?: string }) {
    return this.call<Awaited<ReturnType<typeof createSnapshot>>>('CopySnapshot', req);
  }

  deleteSnapshot(snapshotId: string) {
    return this.call<Record<string, never>>('DeleteSnapshot', { SnapshotId: snapshotId });
  }

  events() {
    return EventLog.read(this.home.eventLog);
  }

  /** Force-detach anything still attached, close the stores, and remove a temporary home. */
  async close(): Promise<void> {
    for (const v of this.ctx.registry.listVolumes()) {
      if (this.ctx.registry.getAttachment(v.volume_id)) await this.detachVolume(v.volume_id, { force: true }).catch(() => undefined);
    }
    this.ctx.close();
    this.kms.close();
    if (this.temporary) fs.rmSync(this.home.root, { recursive: true, force: true });
  }
}
