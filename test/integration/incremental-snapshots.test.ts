import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Kmsvol } from '../../src/api.js';
import { kmsvol } from '../helpers/cli.js';
import { onCleanup, tempHome } from '../helpers/home.js';
import { releaseLoopsUnder } from '../helpers/volumes.js';

/**
 * Incremental snapshots through a real card (issue 28): a volume is attached,
 * written with O_DIRECT at offsets chosen here, snapshotted, written again,
 * snapshotted again. This file computes on its own which 512 KiB blocks the
 * second writes touched; the second snapshot must read only those (its
 * event says how many), ListChangedBlocks (`kmsvol ebs`) must name exactly
 * those, the second snapshot must add exactly that many block files to the
 * store, and a volume made from the second snapshot must read back every byte.
 */
const BLOCK = 512 * 1024;
const MiB = 1024 * 1024;

function blocksOf(writes: [number, number][]): number[] {
  const out = new Set<number>();
  for (const [off, len] of writes) for (let b = Math.floor(off / BLOCK); b <= Math.floor((off + len - 1) / BLOCK); b++) out.add(b);
  return [...out].sort((a, b) => a - b);
}

/** Write random bytes at each (offset, length) and fsync the device; returns what was written, to read back later. */
function writeAt(dev: string, writes: [number, number][]): Map<number, Buffer> {
  const written = new Map<number, Buffer>();
  const fd = fs.openSync(dev, 'r+');
  try {
    for (const [off, len] of writes) {
      const buf = crypto.randomBytes(len);
      expect(fs.writeSync(fd, buf, 0, len, off)).toBe(len);
      written.set(off, buf);
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return written;
}

function blockFiles(home: string): number {
  const top = path.join(home, 'blocks');
  if (!fs.existsSync(top)) return 0;
  return fs.readdirSync(top).reduce((n, d) => n + fs.readdirSync(path.join(top, d)).filter((f) => /^[0-9a-f]{64}$/.test(f)).length, 0);
}

let kv: Kmsvol | undefined;
afterEach(async () => {
  await kv?.close();
  kv = undefined;
});

describe('incremental snapshots of an attached volume', () => {
  it('the second snapshot stores exactly the blocks written since the first; ListChangedBlocks names them; a volume from it reads every byte back', async () => {
    const home = tempHome('kmsvol-incr-');
    onCleanup(() => releaseLoopsUnder(home));
    kv = Kmsvol.open({ home });
    const key = kv.kms.invoke('CreateKey', {}).KeyMetadata.KeyId as string;
    const vol = (await kv.createVolume({ Size: 1, Encrypted: true, KmsKeyId: key })).VolumeId as string;
    const loop = (await kv.attachVolume(vol, { loop: true })).LoopDevice!;

    const FIRST: [number, number][] = [
      [0, 2 * MiB],
      [300 * MiB, 64 * 1024],
    ];
    // After the first snapshot: across the boundary of blocks 0 and 1, inside block 20, the last 4 KiB, 1.5 MiB from 700 MiB.
    const SECOND: [number, number][] = [
      [BLOCK - 4096, 8192],
      [10 * MiB + 12288, 4096],
      [1024 * MiB - 4096, 4096],
      [700 * MiB, 1536 * 1024],
    ];
    const w1 = writeAt(loop, FIRST);
    const s1 = (await kv.createSnapshot(vol)).SnapshotId as string;
    const afterFirst = blockFiles(home);
    expect(afterFirst).toBe(blocksOf(FIRST).length);

    const w2 = writeAt(loop, SECOND);
    const s2 = (await kv.createSnapshot(vol)).SnapshotId as string;
    expect(blockFiles(home) - afterFirst).toBe(blocksOf(SECOND).length);
    // Only the changed blocks were read (the card's change tracking), not every block with data.
    const done = (id: string) => kv!.events().find((e) => e.resources.some((r) => r.endsWith(`/${id}`)) && e.detail.result === 'succeeded')?.detail.cause;
    // A full snapshot reads every block the image has allocated: the card reserves the aligned 4 MiB around a write of
    // 256 KiB or more (so a stream lands in one extent), and those blocks read as zeros and are not stored.
    expect(done(s1)).toBe(`full: ${blocksOf([[0, 4 * MiB], FIRST[1]!]).length} blocks read`);
    expect(done(s2)).toBe(`incremental from ${s1}: ${blocksOf(SECOND).length} blocks read`);

    const changed = kmsvol(home, ['ebs', 'list-changed-blocks', '--first-snapshot-id', s1, '--second-snapshot-id', s2]);
    expect(changed.code, changed.stderr).toBe(0);
    expect(changed.json.ChangedBlocks.map((b: { BlockIndex: number }) => b.BlockIndex)).toEqual(blocksOf(SECOND));
    expect(changed.json.BlockSize).toBe(BLOCK);

    await kv.detachVolume(vol);
    // What each volume made from these snapshots must read: the first writes, then the second over them.
    const expected = new Map<number, Buffer>(w1);
    for (const [off, buf] of w2) {
      for (const [o1, b1] of expected) {
        const lo = Math.max(o1, off);
        const hi = Math.min(o1 + b1.length, off + buf.length);
        if (lo < hi) buf.copy(b1, lo - o1, lo - off, hi - off);
      }
      expected.set(off, buf);
    }
    const readsBack = async (snap: string) => {
      const copy = (await kv!.createVolume({ SnapshotId: snap } as never)).VolumeId as string;
      const dev = (await kv!.attachVolume(copy, { loop: true })).LoopDevice!;
      const fd = fs.openSync(dev, 'r');
      try {
        for (const [off, buf] of expected) {
          const got = Buffer.alloc(buf.length);
          fs.readSync(fd, got, 0, buf.length, off);
          expect(got.equals(buf), `${snap}: bytes at ${off}`).toBe(true);
        }
      } finally {
        fs.closeSync(fd);
      }
      return { copy, dev };
    };
    const { copy, dev } = await readsBack(s2);

    // The volume made from s2 has its own data key: its first snapshot cannot take s2's blocks (ciphertext under
    // another key) for the blocks it did not change, so it reads every block, and a volume from it reads back right.
    for (const [off, buf] of writeAt(dev, [[50 * MiB, 4096]])) expected.set(off, buf);
    const s3 = (await kv.createSnapshot(copy)).SnapshotId as string;
    expect(done(s3)).toMatch(/^full: \d+ blocks read$/);
    await kv.detachVolume(copy);
    await readsBack(s3);
  });
});
