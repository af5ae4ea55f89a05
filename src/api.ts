import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { attachVolume } from './card/attach.js';
import { ec2Context } from './card/context.js';
import { detachVolume } from './card/detach.js';
import { viaEc2 } from './card/grants.js';
import { ManualClock } from './clock.js';
import { configuredAccount, configuredRegion, DEFAULT_REGION } from './config.js';
import type { Home } from './home.js';
import { openHome } from './home.js';
import { InProcessKmsClient } from './kms/client/index.js';
import { Kms } from './kms/kms.js';
import type { Ec2Context } from './volume/context.js';
import { EventLog } from './volume/events.js';
import type { Filter } from './volume/filters.js';
import { Registry } from './volume/registry.js';
import { copySnapshot, createSnapshot, deleteSnapshot } from './volume/snapshots.js';
import type { CreateVolumeRequest } from './volume/volumes.js';
import { createVolume, deleteVolume, describeVolumes } from './volume/volumes.js';

export interface KmsvolOptions {
  /** Home directory; a new temporary one (removed by close()) when omitted. */
  home?: string;
  /** The clock; a card started by attach reads the instant it showed at attach (in its spec). Default: now, movable. */
  clock?: ManualClock;
  /** The region and account, chosen as the CLI chooses them: default KMSVOL_REGION, else AWS_REGION, else `local`; KMSVOL_ACCOUNT_ID, else 000000000000. */
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
  readonly ctx: Ec2Context;
  private readonly temporary: boolean;
  private readonly registry: Registry;

  private constructor(dir: string, temporary: boolean, clock: ManualClock, region: string, account: string) {
    this.home = openHome(dir);
    this.temporary = temporary;
    this.clock = clock;
    this.kms = Kms.open({ home: this.home, clock, region, account });
    // The volume side calls the KMS through EC2, as EBS does.
    const client = new InProcessKmsClient(this.kms, { viaService: viaEc2(this.kms.region) }, false);
    this.registry = new Registry(this.home.registryDb);
    this.ctx = ec2Context({ home: this.home, registry: this.registry, kms: client, clock, region: this.kms.region, account: this.kms.account });
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
    return createVolume(this.ctx, req);
  }

  describeVolumes(req: { VolumeIds?: string[]; Filters?: Filter[] } = {}) {
    return describeVolumes(this.ctx, req);
  }

  deleteVolume(volumeId: string) {
    return deleteVolume(this.ctx, { VolumeId: volumeId });
  }

  /** Start a card for the volume; resolves with its Device (the decrypted file) and LoopDevice. */
  attachVolume(volumeId: string, opts: { loop?: boolean; device?: string } = {}) {
    this.kms.flushAudit();
    return attachVolume(this.ctx, { VolumeId: volumeId, Loop: opts.loop, Device: opts.device });
  }

  detachVolume(volumeId: string, opts: { force?: boolean } = {}) {
    return detachVolume(this.ctx, { VolumeId: volumeId, Force: opts.force });
  }

  createSnapshot(volumeId: string, description?: string) {
    return createSnapshot(this.ctx, { VolumeId: volumeId, Description: description });
  }

  copySnapshot(req: { SourceSnapshotId: string; Encrypted?: boolean; KmsKeyId?: string; Description?: string }) {
    return copySnapshot(this.ctx, req);
  }

  deleteSnapshot(snapshotId: string) {
    return deleteSnapshot(this.ctx, { SnapshotId: snapshotId });
  }

  events() {
    return EventLog.read(this.home.eventLog);
  }

  /** Force-detach anything still attached, close the stores, and remove a temporary home. */
  async close(): Promise<void> {
    for (const v of this.registry.listVolumes()) {
      if (this.registry.getAttachment(v.volume_id)) await this.detachVolume(v.volume_id, { force: true }).catch(() => undefined);
    }
    this.registry.close();
    this.kms.close();
    if (this.temporary) fs.rmSync(this.home.root, { recursive: true, force: true });
  }
}
