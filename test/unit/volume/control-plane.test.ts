import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Kmsvol } from '../../../src/api.js';
import type { Ec2Context } from '../../../src/volume/context.js';
import { imageFile } from '../../../src/volume/images.js';
import { describeVolumesModifications, modifyVolume, planModification, startModifyVolume } from '../../../src/volume/modify.js';
import { GiB } from '../../../src/volume/offsets.js';
import type { ModificationRow } from '../../../src/volume/registry.js';
import { createVolume, deleteVolume, describeVolumes, startCreateVolume } from '../../../src/volume/volumes.js';
import { fileTimeout } from '../../helpers/timeouts.js';

// The slowest test took 275 ms (test/helpers/timeouts.ts).
fileTimeout(1350);

/**
 * The volume control plane without a card: the states a volume and a
 * modification go through, ModifyVolume's limits, and Describe's filters, on
 * a real registry and the in-process KMS in a temporary home. Where a card
 * would act (an attached volume's resize), the card layer's operation is
 * replaced by one that records or fails, a fault below the code under test.
 */
const open: Kmsvol[] = [];
const fakeAttachments: [Ec2Context, string][] = [];
afterEach(async () => {
  // No card holds these: they go before close(), which would force-detach them.
  for (const [ctx, id] of fakeAttachments.splice(0)) ctx.registry.write(() => ctx.registry.deleteAttachment(id));
  while (open.length) await open.pop()!.close();
});

/** A pid no process can have (above Linux's largest pid_max, 2^22): nothing is ever signalled for a fake attachment. */
const NO_PROCESS = 2 ** 22 + 1;

function plane(): { kv: Kmsvol; ctx: Ec2Context } {
  const kv = Kmsvol.open({ region: 'us-east-1' });
  open.push(kv);
  return { kv, ctx: kv.ctx };
}

async function volume(ctx: Ec2Context, req: Parameters<typeof createVolume>[1] = { Size: 1 }): Promise<string> {
  return (await createVolume(ctx, { AvailabilityZone: 'us-east-1a', ...req })).VolumeId;
}

/** An attachment as a live card records it (no card runs: reconcile is not asked, the card layer answers for it). */
function attached(ctx: Ec2Context, volumeId: string, resize: (id: string, bytes: number) => Promise<void>): Ec2Context {
  ctx.registry.write(() => {
    ctx.registry.putAttachment({
      volume_id: volumeId,
      volume_file: `/run/${volumeId}`,
      mount_dir: '/run',
      loop_device: null,
      attach_time: ctx.clock.now().getTime(),
      pid: NO_PROCESS,
      state: 'attached',
      grant_token: null,
    });
    ctx.registry.setVolumeState(volumeId, 'in-use');
  });
  fakeAttachments.push([ctx, volumeId]);
  return { ...ctx, reconcile: undefined, card: { ...ctx.card, resize } };
}

const errorOf = (fn: () => unknown): { name: string; message: string } => {
  try {
    fn();
  } catch (e) {
    return { name: (e as Error).name, message: (e as Error).message };
  }
  throw new Error('expected an error');
};

describe('a volume goes creating → available → (in-use) → deleted', () => {
  it('CreateVolume answers creating at once, then the volume is available with its image', async () => {
    const { ctx } = plane();
    const started = await startCreateVolume(ctx, { Size: 1, AvailabilityZone: 'us-east-1a' });
    expect(started.Volume.State).toBe('creating');
    const id = started.Volume.VolumeId;
    await started.done;
    expect(ctx.registry.getVolume(id)?.state).toBe('available');
    expect(fs.statSync(imageFile(ctx.home, ctx.registry.getVolume(id)!)).size).toBe(GiB);
  });

  it('DeleteVolume refuses an in-use volume (VolumeInUse), and removes an available one: gone from Describe, image gone', async () => {
    const { ctx } = plane();
    const id = await volume(ctx);
    const image = imageFile(ctx.home, ctx.registry.getVolume(id)!);
    const live = attached(ctx, id, async () => undefined);
    await expect(deleteVolume(live, { VolumeId: id })).rejects.toMatchObject({ name: 'VolumeInUse' });
    ctx.registry.write(() => {
      ctx.registry.deleteAttachment(id);
      ctx.registry.setVolumeState(id, 'available');
    });
    await deleteVolume(ctx, { VolumeId: id });
    expect(fs.existsSync(image)).toBe(false);
    await expect(describeVolumes(ctx, { VolumeIds: [id] })).rejects.toMatchObject({ name: 'InvalidVolume.NotFound' });
    await expect(deleteVolume(ctx, { VolumeId: id })).rejects.toMatchObject({ name: 'InvalidVolume.NotFound' });
  });
});

describe('ModifyVolume: its limits, checked before anything changes', () => {
  it('Precondition: volumes only grow, within the size range of its type (gp2 1-16384 GiB), to a known type, and a modification must change something', async () => {
    const { ctx } = plane();
    const id = await volume(ctx, { Size: 2, VolumeType: 'gp2' });
    expect(errorOf(() => planModification(ctx, { VolumeId: id, Size: 1 }))).toEqual({
      name: 'InvalidParameterValue',
      message: `New size cannot be smaller than existing size: ${id} is 2GiB; 1GiB was asked. Volumes only grow.`,
    });
    expect(errorOf(() => planModification(ctx, { VolumeId: id, Size: 16385 })).message).toBe(
      'Volume of 16385GiB is not in the supported size range 1-16384GiB for gp2 volumes. Choose a whole number of GiB in that range.',
    );
    expect(errorOf(() => planModification(ctx, { VolumeId: id, Size: 2.5 })).name).toBe('InvalidParameterValue');
    expect(errorOf(() => planModification(ctx, { VolumeId: id, VolumeType: 'gp9' })).message).toContain('Value (gp9) for parameter volumeType is invalid');
    expect(errorOf(() => planModification(ctx, { VolumeId: id, Size: 2, VolumeType: 'gp2' })).message).toContain('changes nothing');
    expect(errorOf(() => planModification(ctx, { VolumeId: id, MultiAttachEnabled: true })).message).toContain('Multi-Attach is not supported');
    expect(errorOf(() => planModification(ctx, {})).name).toBe('MissingParameter');
    // Nothing was recorded by the refusals.
    expect(ctx.registry.getModification(id)).toBeUndefined();
    expect(planModification(ctx, { VolumeId: id, Size: 16384 })).toMatchObject({ state: 'modifying', original_size: 2, target_size: 16384 });
  });

  it('Precondition: one modification at a time: a volume being modified (modifying or optimizing) is IncorrectModificationState', async () => {
    const { ctx } = plane();
    const id = await volume(ctx);
    const m = planModification(ctx, { VolumeId: id, Size: 2 });
    for (const state of ['modifying', 'optimizing'] as ModificationRow['state'][]) {
      ctx.registry.write(() => ctx.registry.putModification({ ...m, state }));
      expect(errorOf(() => planModification(ctx, { VolumeId: id, Size: 3 }))).toEqual({
        name: 'IncorrectModificationState',
        message: `Volume ${id} is already being modified (${state}); wait until the modification is completed.`,
      });
    }
    // Once completed (or failed), the next one is taken: kmsvol has no cooldown between modifications (EBS asks for six hours).
    for (const state of ['completed', 'failed'] as ModificationRow['state'][]) {
      ctx.registry.write(() => ctx.registry.putModification({ ...m, state }));
      expect(planModification(ctx, { VolumeId: id, Size: 3 }).target_size).toBe(3);
    }
  });

  it('a volume that is not available or in-use (creating, deleting, error) cannot be modified', async () => {
    const { ctx } = plane();
    const id = await volume(ctx);
    for (const state of ['creating', 'deleting', 'error'] as const) {
      ctx.registry.write(() => ctx.registry.setVolumeState(id, state));
      expect(errorOf(() => planModification(ctx, { VolumeId: id, Size: 2 }))).toEqual({
        name: 'IncorrectState',
        message: `The volume '${id}' is '${state}'; only an available or in-use volume can be modified.`,
      });
    }
  });

  it('a type change takes the new type’s IOPS and throughput defaults; a same-type change keeps them', async () => {
    const { ctx } = plane();
    const id = await volume(ctx, { Size: 100, VolumeType: 'gp3', Iops: 4000, Throughput: 250 });
    expect(planModification(ctx, { VolumeId: id, Size: 200 })).toMatchObject({ target_iops: 4000, target_throughput: 250 });
    expect(planModification(ctx, { VolumeId: id, VolumeType: 'gp2' })).toMatchObject({ target_type: 'gp2', target_iops: 300, target_throughput: null });
  });
});

describe('a modification goes modifying → completed, or → failed', () => {
  it('of an available volume: modifying at once, then completed; the image and the volume grew', async () => {
    const { ctx } = plane();
    const id = await volume(ctx);
    const started = startModifyVolume(ctx, { VolumeId: id, Size: 3 });
    expect(started.VolumeModification).toMatchObject({ ModificationState: 'modifying', OriginalSize: 1, TargetSize: 3, Progress: 0 });
    const done = await started.done;
    expect(done).toMatchObject({ ModificationState: 'completed', Progress: 100, TargetSize: 3 });
    expect(done.EndTime).toBeInstanceOf(Date);
    const v = ctx.registry.getVolume(id)!;
    expect(v.size).toBe(3);
    expect(fs.statSync(imageFile(ctx.home, v)).size).toBe(3 * GiB);
  });

  it('of an attached volume: its card is told the new payload size', async () => {
    const { ctx } = plane();
    const id = await volume(ctx);
    const told: [string, number][] = [];
    await modifyVolume(
      attached(ctx, id, async (vid, bytes) => void told.push([vid, bytes])),
      { VolumeId: id, Size: 2 },
    );
    expect(told).toEqual([[id, 2 * GiB]]);
    expect(ctx.registry.getVolume(id)?.size).toBe(2);
  });

  it('a card that fails the resize fails the modification: failed with the cause, the volume keeps its size, and the next one is taken', async () => {
    const { ctx } = plane();
    const id = await volume(ctx);
    const failing = attached(ctx, id, async () => {
      throw Object.assign(new Error('the card is gone'), { name: 'IncorrectState' });
    });
    await expect(modifyVolume(failing, { VolumeId: id, Size: 2 })).rejects.toMatchObject({ name: 'IncorrectState' });
    expect(ctx.registry.getModification(id)).toMatchObject({ state: 'failed', status_message: 'IncorrectState: the card is gone' });
    expect(ctx.registry.getVolume(id)?.size).toBe(1);
    expect(planModification(ctx, { VolumeId: id, Size: 2 }).state).toBe('modifying');
  });
});

describe('Describe filters over the control plane', () => {
  it('DescribeVolumes: status, size, volume-type, attachment.status and tag filters, wildcards, and every filter must hold', async () => {
    const { ctx } = plane();
    const a = await volume(ctx, { Size: 1, TagSpecifications: [{ ResourceType: 'volume', Tags: [{ Key: 'Name', Value: 'db-primary' }] }] });
    const b = await volume(ctx, { Size: 2, VolumeType: 'gp2', TagSpecifications: [{ ResourceType: 'volume', Tags: [{ Key: 'Name', Value: 'web' }] }] });
    const c = await volume(ctx, { Size: 2, VolumeType: 'gp3' });
    attached(ctx, c, async () => undefined);
    const ids = async (Filters: { Name: string; Values: string[] }[]) =>
      (await describeVolumes({ ...ctx, reconcile: undefined }, { Filters })).Volumes.map((v) => v.VolumeId).sort();
    expect(await ids([{ Name: 'status', Values: ['available'] }])).toEqual([a, b].sort());
    expect(await ids([{ Name: 'status', Values: ['in-use'] }])).toEqual([c]);
    expect(await ids([{ Name: 'attachment.status', Values: ['attached'] }])).toEqual([c]);
    expect(await ids([{ Name: 'size', Values: ['2'] }])).toEqual([b, c].sort());
    expect(
      await ids([
        { Name: 'size', Values: ['2'] },
        { Name: 'volume-type', Values: ['gp3'] },
      ]),
    ).toEqual([c]);
    expect(await ids([{ Name: 'tag:Name', Values: ['db-*'] }])).toEqual([a]);
    expect(await ids([{ Name: 'tag:Name', Values: ['w?b', 'nothing'] }])).toEqual([b]);
    expect(await ids([{ Name: 'tag-key', Values: ['Name'] }])).toEqual([a, b].sort());
    await expect(ids([{ Name: 'colour', Values: ['red'] }])).rejects.toMatchObject({
      name: 'InvalidParameterValue',
      message: expect.stringContaining("The filter 'colour' is invalid. Valid filters: volume-id, status"),
    });
    await expect(ids([{ Name: 'status', Values: [] }])).rejects.toMatchObject({
      message: "The filter 'status' has no values. Give at least one value (wildcards * and ? allowed).",
    });
  });

  it('DescribeVolumesModifications: by id (none yet: InvalidVolumeModification.NotFound), and filtered by state and target size', async () => {
    const { ctx } = plane();
    const a = await volume(ctx);
    const b = await volume(ctx);
    expect(errorOf(() => describeVolumesModifications(ctx, { VolumeIds: [a] }))).toEqual({
      name: 'InvalidVolumeModification.NotFound',
      message: `Modification for volume '${a}' does not exist.`,
    });
    await modifyVolume(ctx, { VolumeId: a, Size: 2 });
    await modifyVolume(ctx, { VolumeId: b, Size: 3 });
    const ids = (Filters: { Name: string; Values: string[] }[]) =>
      describeVolumesModifications(ctx, { Filters })
        .VolumesModifications.map((m) => m.VolumeId)
        .sort();
    expect(ids([{ Name: 'modification-state', Values: ['completed'] }])).toEqual([a, b].sort());
    expect(ids([{ Name: 'target-size', Values: ['3'] }])).toEqual([b]);
    expect(
      ids([
        { Name: 'original-size', Values: ['1'] },
        { Name: 'modification-state', Values: ['modifying'] },
      ]),
    ).toEqual([]);
  });
});
