import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Kmsvol } from '../../src/api.js';
import { changesPath } from '../../src/volume/changefile.js';
import type { Changes } from '../../src/volume/changes.js';
import { beginChanges } from '../../src/volume/changes.js';
import { onCleanup, tempHome } from '../helpers/home.js';
import { cardPids } from '../helpers/procs.js';
import { releaseLoopsUnder } from '../helpers/volumes.js';

/**
 * Change tracking (card/tracking.ts, volume/changes.ts) through a real card:
 * raw O_DIRECT writes with dd on the volume's loop device at offsets chosen
 * here, and beginChanges must name exactly the 512 KiB blocks this file
 * computes from those offsets, on its own.
 */
const BLOCK = 512 * 1024;
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** The blocks bytes [off, off + len) touch, computed here (not by kmsvol). */
function blocksOf(writes: [number, number][]): number[] {
  const out = new Set<number>();
  for (const [off, len] of writes) for (let b = Math.floor(off / BLOCK); b <= Math.floor((off + len - 1) / BLOCK); b++) out.add(b);
  return [...out].sort((a, b) => a - b);
}

/** Raw O_DIRECT writes of random bytes at each (offset, length), both multiples of 4096. */
function writeAt(dev: string, writes: [number, number][]): void {
  for (const [off, len] of writes) {
    execFileSync('dd', ['if=/dev/urandom', `of=${dev}`, 'bs=4096', `seek=${off / 4096}`, `count=${len / 4096}`, 'oflag=direct', 'conv=notrunc', 'status=none']);
  }
}

let kv: Kmsvol | undefined;
afterEach(async () => {
  await kv?.close();
  kv = undefined;
});

async function setup(sizeGiB = 1): Promise<{ kv: Kmsvol; vol: string }> {
  const home = tempHome('kmsvol-track-');
  onCleanup(() => releaseLoopsUnder(home));
  kv = Kmsvol.open({ home });
  const key = kv.kms.invoke('CreateKey', {}).KeyMetadata.KeyId as string;
  const vol = (await kv.createVolume({ Size: sizeGiB, Encrypted: true, KmsKeyId: key })).VolumeId as string;
  return { kv, vol };
}

async function attachLoop(kv: Kmsvol, vol: string): Promise<string> {
  const a = await kv.attachVolume(vol, { loop: true });
  return a.LoopDevice!;
}

/** beginChanges as a snapshot calls it: an attached volume quiesced around the take. */
async function begin(kv: Kmsvol, vol: string): Promise<Changes> {
  if (!kv.ctx.registry.getAttachment(vol)) return beginChanges(kv.ctx, vol);
  const thaw = await kv.ctx.card.quiesce(vol);
  try {
    return await beginChanges(kv.ctx, vol);
  } finally {
    await thaw();
  }
}

const sorted = (c: Changes) => (c.changed === 'all' ? 'all' : [...c.changed].sort((a, b) => a - b));

// Writes after the first snapshot: one straddling the 512 KiB boundary between blocks 0 and 1, one inside block 20,
// the volume's last 4 KiB, and 1.5 MiB from 100 MiB (blocks 200-202).
const AFTER: [number, number][] = [
  [BLOCK - 4096, 8192],
  [10 * MiB + 12288, 4096],
  [GiB - 4096, 4096],
  [100 * MiB, 1536 * 1024],
];

describe('change tracking: the blocks written since the last snapshot', () => {
  it('names exactly the blocks written after the base snapshot; abort keeps them, a snapshot clears them', async () => {
    const { kv, vol } = await setup();
    const dev = await attachLoop(kv, vol);
    // Before any snapshot there is no base: everything counts.
    writeAt(dev, [[3 * MiB, 65536]]);
    const first = await begin(kv, vol);
    expect([first.base, first.changed]).toEqual([null, 'all']);
    await first.abort();
    const s1 = (await kv.createSnapshot(vol)).SnapshotId;
    writeAt(dev, AFTER);
    const want = blocksOf(AFTER);
    expect(want).toEqual([0, 1, 20, 200, 201, 202, 2047]);
    const c = await begin(kv, vol);
    expect(c.base).toBe(s1);
    expect(c.blocks).toBe(2048);
    expect(sorted(c)).toEqual(want);
    // A failed snapshot (abort) leaves the blocks changed, with writes made meanwhile added.
    writeAt(dev, [[50 * MiB, 4096]]);
    await c.abort();
    const again = await begin(kv, vol);
    expect(sorted(again)).toEqual([...want, 100].sort((a, b) => a - b));
    await again.abort();
    // A snapshot advances the base: nothing is changed since it.
    const s2 = (await kv.createSnapshot(vol)).SnapshotId;
    const after = await begin(kv, vol);
    expect([after.base, sorted(after)]).toEqual([s2, []]);
    await after.abort();
  });

  it('keeps the bits across detach and reattach, and a detached snapshot clears them', async () => {
    const { kv, vol } = await setup();
    let dev = await attachLoop(kv, vol);
    const s1 = (await kv.createSnapshot(vol)).SnapshotId;
    writeAt(dev, AFTER);
    await kv.detachVolume(vol);
    const detached = await beginChanges(kv.ctx, vol);
    expect([detached.base, sorted(detached)]).toEqual([s1, blocksOf(AFTER)]);
    await detached.abort();
    dev = await attachLoop(kv, vol);
    const more: [number, number][] = [[700 * MiB + 4096, 4096]];
    writeAt(dev, more);
    const c = await begin(kv, vol);
    expect([c.base, sorted(c)]).toEqual([s1, blocksOf([...AFTER, ...more])]);
    await c.abort();
    await kv.detachVolume(vol);
    const s2 = (await kv.createSnapshot(vol)).SnapshotId;
    const cleared = await beginChanges(kv.ctx, vol);
    expect([cleared.base, sorted(cleared)]).toEqual([s2, []]);
    await cleared.abort();
  });

  it('a card killed with SIGKILL leaves the file in use: every block counts as changed', async () => {
    const { kv, vol } = await setup();
    const dev = await attachLoop(kv, vol);
    const s1 = (await kv.createSnapshot(vol)).SnapshotId;
    writeAt(dev, [[5 * MiB, 4096]]);
    for (const pid of cardPids(vol)) process.kill(pid, 'SIGKILL');
    await expect.poll(() => cardPids(vol), { timeout: 10_000 }).toEqual([]);
    expect((await kv.describeVolumes({ VolumeIds: [vol] })).Volumes[0]!.State).toBe('available'); // cleans up after the dead card
    const c = await beginChanges(kv.ctx, vol);
    expect([c.base, c.changed]).toEqual([s1, 'all']);
    await c.abort();
    // The next attach serves with 'all' still (never the stale bits), until a snapshot.
    const dev2 = await attachLoop(kv, vol);
    const live = await begin(kv, vol);
    expect([live.base, live.changed]).toEqual([s1, 'all']);
    await live.abort();
    const s2 = (await kv.createSnapshot(vol)).SnapshotId;
    const after = await begin(kv, vol);
    expect([after.base, sorted(after)]).toEqual([s2, []]);
    await after.abort();
    // Bits saved by a clean detach, then a card killed before it wrote anything (the image unchanged since the
    // file was marked in use): still 'all', as the card could have written and its bits are gone with it.
    writeAt(dev2, [[7 * MiB, 4096]]);
    await kv.detachVolume(vol);
    await attachLoop(kv, vol);
    for (const pid of cardPids(vol)) process.kill(pid, 'SIGKILL');
    await expect.poll(() => cardPids(vol), { timeout: 10_000 }).toEqual([]);
    await kv.describeVolumes({ VolumeIds: [vol] });
    const killed = await beginChanges(kv.ctx, vol);
    expect([killed.base, killed.changed]).toEqual([s2, 'all']);
    await killed.abort();
  });

  it('a corrupt, truncated or missing change file, or an image written outside kmsvol, gives all', async () => {
    const { kv, vol } = await setup();
    const dev = await attachLoop(kv, vol);
    await kv.createSnapshot(vol);
    writeAt(dev, [[0, 4096]]);
    await kv.detachVolume(vol);
    const file = changesPath(kv.home, vol);
    const good = fs.readFileSync(file);
    const check = async (what: string, want: number[] | 'all') => {
      const c = await beginChanges(kv.ctx, vol);
      expect(sorted(c), what).toEqual(want);
      await c.abort();
    };
    await check('intact', [0]);
    const flipped = Buffer.from(good);
    flipped[96 + 100] ^= 0x10; // a bit of the bitmap (block 804), not covered by a new CRC
    fs.writeFileSync(file, flipped);
    await check('a flipped bit', 'all');
    fs.writeFileSync(file, good.subarray(0, 96 + 10));
    await check('truncated', 'all');
    fs.rmSync(file);
    await check('missing', 'all');
    fs.writeFileSync(file, good, { mode: 0o600 });
    await check('restored', [0]);
    // A write to the image behind kmsvol's back (the same bytes, rewritten): its ctime moves.
    const image = path.join(kv.home.volumesDir, `${vol}.img`);
    const fd = fs.openSync(image, 'r+');
    const b = Buffer.alloc(4096);
    fs.readSync(fd, b, 0, 4096, 1 * MiB);
    fs.writeSync(fd, b, 0, 4096, 1 * MiB);
    fs.closeSync(fd);
    await check('image rewritten', 'all');
  });

  it('a volume created from a snapshot starts with that snapshot as its base and nothing changed', async () => {
    const { kv, vol } = await setup();
    const dev = await attachLoop(kv, vol);
    writeAt(dev, [[0, 65536]]);
    const s1 = (await kv.createSnapshot(vol)).SnapshotId;
    const v2 = (await kv.createVolume({ Size: 2, SnapshotId: s1 })).VolumeId as string;
    const c = await beginChanges(kv.ctx, v2);
    expect([c.base, sorted(c), c.blocks]).toEqual([s1, [], 4096]);
    await c.abort();
    const dev2 = await attachLoop(kv, v2);
    writeAt(dev2, [[GiB + 3 * BLOCK, 4096]]);
    const live = await begin(kv, v2);
    expect([live.base, sorted(live)]).toEqual([s1, [2051]]);
    await live.abort();
    // Deleting the volume removes its change file.
    await kv.detachVolume(v2);
    await kv.deleteVolume(v2);
    expect(fs.existsSync(changesPath(kv.home, v2))).toBe(false);
    // A base deleted since is no base: everything counts.
    await kv.deleteSnapshot(s1);
    const orphan = await begin(kv, vol);
    expect([orphan.base, orphan.changed]).toEqual([null, 'all']);
    await orphan.abort();
  });

  it('an attached volume that grows (ModifyVolume) tracks its new blocks', async () => {
    const { kv, vol } = await setup();
    const dev = await attachLoop(kv, vol);
    const s1 = (await kv.createSnapshot(vol)).SnapshotId;
    const { invoke } = await import('../../src/ec2/invoke.js');
    const { done } = await invoke(kv.ctx, 'ModifyVolume', { VolumeId: vol, Size: 2 }, { local: true });
    await done;
    await expect.poll(() => Number(execFileSync('blockdev', ['--getsize64', dev], { encoding: 'utf8' }).trim()), { timeout: 10_000 }).toBe(2 * GiB);
    writeAt(dev, [[GiB + 512 * MiB, 4096]]);
    const c = await begin(kv, vol);
    expect([c.base, c.blocks, sorted(c)]).toEqual([s1, 4096, [3072]]);
    await c.abort();
    await kv.detachVolume(vol);
    const detached = await beginChanges(kv.ctx, vol);
    expect([detached.base, detached.blocks, sorted(detached)]).toEqual([s1, 4096, [3072]]);
    await detached.abort();
  });

  it('snapshots taken at once: the base is one of them, and the next set is exactly what was written after', async () => {
    const { kv, vol } = await setup();
    const dev = await attachLoop(kv, vol);
    await kv.createSnapshot(vol);
    writeAt(dev, AFTER);
    const ids = (await Promise.all([kv.createSnapshot(vol), kv.createSnapshot(vol), kv.createSnapshot(vol)])).map((s) => s.SnapshotId);
    const later: [number, number][] = [[300 * MiB, 8192]];
    writeAt(dev, later);
    const c = await begin(kv, vol);
    expect(ids).toContain(c.base);
    expect(sorted(c)).toEqual(blocksOf(later));
    await c.abort();
  });

  it('a take whose commit comes after a clean detach: the taken bits are saved back and the old base stands', async () => {
    const { kv, vol } = await setup();
    const dev = await attachLoop(kv, vol);
    const s1 = (await kv.createSnapshot(vol)).SnapshotId;
    writeAt(dev, AFTER);
    const taken = await begin(kv, vol);
    expect(sorted(taken)).toEqual(blocksOf(AFTER));
    await kv.detachVolume(vol);
    const check = async () => {
      const c = await beginChanges(kv.ctx, vol);
      expect([c.base, sorted(c)]).toEqual([s1, blocksOf(AFTER)]);
      await c.abort();
    };
    await check();
    await taken.commit('snap-00000000000000000'); // its card is gone: nothing changes
    await check();
  });

  it('a take outside a freeze is refused (a write in flight would be lost to the next snapshot)', async () => {
    const { kv, vol } = await setup();
    await attachLoop(kv, vol);
    await expect(beginChanges(kv.ctx, vol)).rejects.toThrow('is not frozen');
  });

  it('KMSVOL_CHANGE_TRACKING=0 (benchmarks) keeps no bits: every snapshot reads all', async () => {
    const { kv, vol } = await setup();
    process.env.KMSVOL_CHANGE_TRACKING = '0';
    try {
      const dev = await attachLoop(kv, vol);
      const s1 = (await kv.createSnapshot(vol)).SnapshotId;
      writeAt(dev, [[0, 4096]]);
      const c = await begin(kv, vol);
      expect([c.base, c.changed]).toEqual([s1, 'all']);
      await c.abort();
    } finally {
      delete process.env.KMSVOL_CHANGE_TRACKING;
    }
  });
});
